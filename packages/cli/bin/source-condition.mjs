// Module resolution hook of the netpay command run from its sources: workspace packages resolve to their TypeScript
// sources (the `netpay-source` condition of their exports) instead of their built dist/.
export async function resolve(specifier, context, nextResolve) {
  const conditions = context.conditions.includes('netpay-source')
    ? context.conditions
    : [...context.conditions, 'netpay-source'];
  return nextResolve(specifier, { ...context, conditions });
}
