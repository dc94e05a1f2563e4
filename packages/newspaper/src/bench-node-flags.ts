/**
 * The Node flags a process the benchmark starts needs: TypeScript through tsx, and the module resolution
 * conditions this process was started with (so a child resolves the workspace's packages as its parent does).
 */

/** The `--conditions` flags this process was started with, each as `--conditions=NAME`. */
export function parentConditions(): string[] {
  const conditions: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg.startsWith('--conditions=')) conditions.push(arg);
    else if (arg.startsWith('-C=')) conditions.push(`--conditions=${arg.slice(3)}`);
    else if ((arg === '--conditions' || arg === '-C') && argv[i + 1] !== undefined) {
      conditions.push(`--conditions=${argv[++i]}`);
    }
  }
  return conditions;
}

/**
 * `--import tsx`, the parent's `--conditions`, then `extra`.
 *
 * @example
 * spawn(process.execPath, [...childNodeFlags(['--expose-gc']), 'child.ts']);
 */
export function childNodeFlags(extra: readonly string[] = []): string[] {
  return ['--import', 'tsx', ...parentConditions(), ...extra];
}
