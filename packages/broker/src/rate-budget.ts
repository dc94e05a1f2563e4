import { sql } from '@netpay/service-kit';
import type { BrokerDeps } from './deps.ts';
import type { Queryable } from './schema.ts';

/**
 * A budget that must hold for a whole broker fleet (one customer's coin purchases, say), kept in the shared store:
 * `capacity` at once, refilling at `perSecond`. In-process token buckets would give each of N processes a budget
 * of its own, N times the intended one.
 *
 * The rule is GCRA, a token bucket written as one number per key: the theoretical arrival time `tat` of the next
 * request once the bucket is full again. Taking `cost` moves it `cost` intervals past max(tat, now), and is
 * allowed while that leaves it no more than `capacity` intervals ahead of now. One number makes the check and
 * the take a single atomic upsert on both engines, with no read-modify-write between processes.
 */
export interface RateBudget {
  capacity: number;
  perSecond: number;
}

export type BudgetOutcome = { ok: true } | { ok: false; retryAfterSeconds: number };

/** The budget in whole microseconds: one interval per token, and how far ahead of now `tat` may run. */
export function budgetTerms(limit: RateBudget, cost = 1): { costUs: number; toleranceUs: number } {
  if (!(Number.isSafeInteger(limit.capacity) && limit.capacity >= 1)) throw new Error('capacity must be 1 or more');
  if (!(Number.isFinite(limit.perSecond) && limit.perSecond > 0)) throw new Error('perSecond must be positive');
  if (!(Number.isSafeInteger(cost) && cost >= 1 && cost <= limit.capacity)) throw new Error('cost must be 1..capacity');
  // Rounded up: a budget is never more generous than configured.
  const intervalUs = Math.ceil(1_000_000 / limit.perSecond);
  return { costUs: intervalUs * cost, toleranceUs: intervalUs * limit.capacity };
}

/**
 * The pure rule (what the statement in {@link takeBudget} computes): whether a take at `nowUs` is allowed with the
 * stored `tatUs` (undefined: never taken, a full bucket), the new tat, and when a refused take could succeed.
 */
export function admit(
  tatUs: number | undefined,
  nowUs: number,
  terms: { costUs: number; toleranceUs: number },
): { ok: true; tatUs: number } | { ok: false; retryAfterSeconds: number } {
  const next = Math.max(tatUs ?? nowUs, nowUs) + terms.costUs;
  if (next - nowUs <= terms.toleranceUs) return { ok: true, tatUs: next };
  return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((next - nowUs - terms.toleranceUs) / 1_000_000)) };
}

/**
 * Takes `cost` from `subject`'s `budget` in one statement (an upsert whose update only happens while the rule
 * allows it), so concurrent takes from any number of processes never pass the budget together. One row per
 * (budget, subject): subjects are accounts, so the table is no larger than the accounts it limits.
 *
 * @example
 * const taken = await takeBudget(db, 'coin_purchase', customerId, { capacity: 120, perSecond: 5 }, clock.now());
 * if (!taken.ok) reply.header('retry-after', String(taken.retryAfterSeconds));
 */
export async function takeBudget(
  db: Queryable,
  budget: string,
  subject: string,
  limit: RateBudget,
  now: Date,
  cost = 1,
): Promise<BudgetOutcome> {
  const terms = budgetTerms(limit, cost);
  const nowUs = now.getTime() * 1000;
  const base = sql<number>`case when rate_budgets.tat_us > ${nowUs} then rate_budgets.tat_us else ${nowUs} end`;
  const taken = await db
    .insertInto('rate_budgets')
    .values({ budget, subject, tat_us: nowUs + terms.costUs })
    .onConflict((oc) =>
      oc
        .columns(['budget', 'subject'])
        .doUpdateSet({ tat_us: sql<number>`${base} + ${terms.costUs}` })
        .where(sql<number>`${base} + ${terms.costUs} - ${nowUs}`, '<=', terms.toleranceUs),
    )
    .returning('tat_us')
    .executeTakeFirst();
  if (taken) return { ok: true };
  // Refused: nothing was written. The wait is read afterwards; it is advice, not part of the decision.
  const row = await db
    .selectFrom('rate_budgets')
    .select('tat_us')
    .where('budget', '=', budget)
    .where('subject', '=', subject)
    .executeTakeFirst();
  const verdict = admit(row ? Number(row.tat_us) : undefined, nowUs, terms);
  return { ok: false, retryAfterSeconds: verdict.ok ? 1 : verdict.retryAfterSeconds };
}

/** One customer's coin purchases and top-ups, by the API and the pages alike: one budget per customer. */
export const COIN_PURCHASE_BUDGET = 'coin_purchase';

/** Takes one purchase from the customer's budget (`rateLimits.coinPurchasesPerCustomer`). */
export function takePurchaseBudget(
  deps: Pick<BrokerDeps, 'db' | 'clock' | 'config'>,
  customerId: string,
): Promise<BudgetOutcome> {
  const [capacity, perSecond] = deps.config.rateLimits.coinPurchasesPerCustomer;
  return takeBudget(deps.db, COIN_PURCHASE_BUDGET, customerId, { capacity, perSecond }, deps.clock.now());
}
