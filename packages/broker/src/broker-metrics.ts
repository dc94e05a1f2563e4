import type { RedemptionResponse } from '@netpay/protocol';
import { ProtocolError } from '@netpay/protocol';
import type { Metrics } from '@netpay/service-kit';
import type { Logger } from 'pino';
import type { BrokerDb } from './schema.ts';

/** Where the broker learned a previous holder's release. */
export type ReleaseSource = 'checkpoint' | 'redemption';

/**
 * The broker's business metrics. Two kinds:
 * - events this process answers (claims, purchases and refunds by outcome, redemption items by status, releases
 *   learned), counted as they happen;
 * - money, read from the ledger when Prometheus scrapes: purchases, redemptions, take-backs, refunds, payouts and
 *   top-ups (count and amount by entry kind), amounts credited to vendors and fees, conflicts, payouts by status.
 *   The ledger is append-only and written once per real event, so these are exact: retries answered from an
 *   idempotency key do not count twice, and work done by other processes (`netpay admin payouts`, `reconcile`)
 *   counts too.
 */
export interface BrokerMetrics {
  claim(outcome: string): void;
  purchase(outcome: string): void;
  refund(outcome: string): void;
  releaseLearned(via: ReleaseSource, count?: number): void;
  redemptionAnswered(response: RedemptionResponse): void;
}

/** The outcome label of a failed call: its problem code, or `internal_error` for anything else. */
export function outcomeOf(error: unknown): string {
  return error instanceof ProtocolError ? error.code : 'internal_error';
}

/**
 * Runs `work`, counting `success` or the code of the problem it threw, and passes its answer or error on.
 *
 * @example
 * return counted((o) => metrics.claim(o), 'granted', () => claimChain(deps, chainId, vendorId, proof));
 */
export async function counted<T>(
  record: (outcome: string) => void,
  success: string,
  work: () => Promise<T>,
): Promise<T> {
  try {
    const result = await work();
    record(success);
    return result;
  } catch (error) {
    record(outcomeOf(error));
    throw error;
  }
}

interface LedgerSnapshot {
  entries: Array<{ kind: string; count: number; amount: number }>;
  vendorCredited: number;
  fees: number;
  conflicts: Array<{ kind: string; count: number; amount: number }>;
  payouts: Array<{ status: string; count: number; amount: number }>;
}

/**
 * Registers the broker's metrics on the service registry.
 *
 * @example
 * const metrics = brokerMetrics(app.metrics, deps.db, deps.logger);
 * metrics.claim('granted');
 */
export function brokerMetrics(metrics: Metrics, db: BrokerDb, logger: Logger): BrokerMetrics {
  const claims = metrics.counter({
    name: 'netpay_broker_claims_total',
    help: 'Chain claims answered, by outcome (granted, or the problem code)',
    labelNames: ['outcome'],
  });
  const purchases = metrics.counter({
    name: 'netpay_broker_coin_purchase_requests_total',
    help: 'Coin purchases answered, by outcome (created, or the problem code)',
    labelNames: ['outcome'],
  });
  const refunds = metrics.counter({
    name: 'netpay_broker_refund_requests_total',
    help: 'Coin refunds answered, by outcome (refunded, or the problem code)',
    labelNames: ['outcome'],
  });
  const releases = metrics.counter({
    name: 'netpay_broker_releases_learned_total',
    help: 'Releases vendors reported to the broker and it accepted, by how they came (checkpoint, redemption)',
    labelNames: ['via'],
  });
  const items = metrics.counter({
    name: 'netpay_broker_redemption_items_total',
    help: 'Redemption items answered, by status and rejection code (a replayed answer counts again)',
    labelNames: ['status', 'code'],
  });

  // prom-client starts every collector in the same tick of a scrape, so they all share the read in flight.
  let inFlight: Promise<LedgerSnapshot | undefined> | undefined;
  const snapshot = (): Promise<LedgerSnapshot | undefined> => {
    inFlight ??= readLedger(db)
      .catch((error: unknown) => {
        logger.warn({ err: error }, 'metrics: the ledger could not be read; keeping the last values');
        return undefined;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  const entries = metrics.counter({
    name: 'netpay_broker_ledger_entries_total',
    help: 'Ledger entries by kind (purchase, redemption, take_back, refund, payout, top_up)',
    labelNames: ['kind'],
    collect: async () => {
      const s = await snapshot();
      if (!s) return;
      entries.reset();
      for (const e of s.entries) entries.inc({ kind: e.kind }, e.count);
    },
  });
  const moved = metrics.counter({
    name: 'netpay_broker_ledger_amount_minor_total',
    help: 'Amount each kind of ledger entry moved (its debits), in minor units',
    labelNames: ['kind'],
    collect: async () => {
      const s = await snapshot();
      if (!s) return;
      moved.reset();
      for (const e of s.entries) moved.inc({ kind: e.kind }, e.amount);
    },
  });
  const credited = metrics.counter({
    name: 'netpay_broker_vendor_credited_minor_total',
    help: 'Amount redemptions credited to vendors after fees, in minor units (take-backs are counted apart)',
    collect: async () => {
      const s = await snapshot();
      if (!s) return;
      credited.reset();
      credited.inc(s.vendorCredited);
    },
  });
  const fees = metrics.counter({
    name: 'netpay_broker_fees_minor_total',
    help: 'Fees the broker charged on redemptions, in minor units',
    collect: async () => {
      const s = await snapshot();
      if (!s) return;
      fees.reset();
      fees.inc(s.fees);
    },
  });
  const conflicts = metrics.counter({
    name: 'netpay_broker_conflicts_total',
    help: 'Conflicts recorded (double spends across holders), by kind',
    labelNames: ['kind'],
    collect: async () => {
      const s = await snapshot();
      if (!s) return;
      conflicts.reset();
      for (const c of s.conflicts) conflicts.inc({ kind: c.kind }, c.count);
    },
  });
  const conflictAmount = metrics.counter({
    name: 'netpay_broker_conflict_amount_minor_total',
    help: 'Amount involved in recorded conflicts, by kind, in minor units',
    labelNames: ['kind'],
    collect: async () => {
      const s = await snapshot();
      if (!s) return;
      conflictAmount.reset();
      for (const c of s.conflicts) conflictAmount.inc({ kind: c.kind }, c.amount);
    },
  });
  const payouts = metrics.gauge({
    name: 'netpay_broker_payouts',
    help: 'Vendor payouts by status (pending, paid, failed)',
    labelNames: ['status'],
    collect: async () => {
      const s = await snapshot();
      if (!s) return;
      payouts.reset();
      for (const p of s.payouts) payouts.set({ status: p.status }, p.count);
    },
  });
  const payoutAmount = metrics.gauge({
    name: 'netpay_broker_payout_amount_minor',
    help: 'Amount of vendor payouts by status, in minor units',
    labelNames: ['status'],
    collect: async () => {
      const s = await snapshot();
      if (!s) return;
      payoutAmount.reset();
      for (const p of s.payouts) payoutAmount.set({ status: p.status }, p.amount);
    },
  });

  return {
    claim: (outcome) => claims.inc({ outcome }),
    purchase: (outcome) => purchases.inc({ outcome }),
    refund: (outcome) => refunds.inc({ outcome }),
    releaseLearned: (via, count = 1) => {
      if (count > 0) releases.inc({ via }, count);
    },
    redemptionAnswered: (response) => {
      for (const item of response.items) items.inc({ status: item.status, code: item.code ?? '' });
    },
  };
}

async function readLedger(db: BrokerDb): Promise<LedgerSnapshot> {
  const [counts, amounts, vendorRows, feeRows, conflictRows, payoutRows] = await Promise.all([
    db
      .selectFrom('ledger_entries')
      .select((eb) => ['kind', eb.fn.countAll<number | string>().as('n')])
      .groupBy('kind')
      .execute(),
    db
      .selectFrom('postings')
      .innerJoin('ledger_entries', 'ledger_entries.id', 'postings.entry_id')
      .where('postings.amount', '>', 0)
      .select((eb) => ['ledger_entries.kind', eb.fn.sum<number | string>('postings.amount').as('amount')])
      .groupBy('ledger_entries.kind')
      .execute(),
    db
      .selectFrom('postings')
      .innerJoin('ledger_entries', 'ledger_entries.id', 'postings.entry_id')
      .where('ledger_entries.kind', '=', 'redemption')
      .where('postings.account_id', 'like', 'vendor:%')
      .select((eb) => eb.fn.sum<number | string | null>('postings.amount').as('amount'))
      .executeTakeFirst(),
    db
      .selectFrom('postings')
      .innerJoin('ledger_entries', 'ledger_entries.id', 'postings.entry_id')
      .where('ledger_entries.kind', '=', 'redemption')
      .where('postings.account_id', '=', 'fees')
      .select((eb) => eb.fn.sum<number | string | null>('postings.amount').as('amount'))
      .executeTakeFirst(),
    db
      .selectFrom('conflicts')
      .select((eb) => [
        'kind',
        eb.fn.countAll<number | string>().as('n'),
        eb.fn.sum<number | string>('amount').as('amount'),
      ])
      .groupBy('kind')
      .execute(),
    db
      .selectFrom('payouts')
      .select((eb) => [
        'status',
        eb.fn.countAll<number | string>().as('n'),
        eb.fn.sum<number | string>('amount').as('amount'),
      ])
      .groupBy('status')
      .execute(),
  ]);
  const amountOf = new Map(amounts.map((a) => [a.kind, Number(a.amount)]));
  return {
    entries: counts.map((c) => ({ kind: c.kind, count: Number(c.n), amount: amountOf.get(c.kind) ?? 0 })),
    // Credit-normal accounts: what the broker owes a vendor or earned is a negative posting.
    vendorCredited: -Number(vendorRows?.amount ?? 0),
    fees: -Number(feeRows?.amount ?? 0),
    conflicts: conflictRows.map((c) => ({ kind: c.kind, count: Number(c.n), amount: Number(c.amount) })),
    payouts: payoutRows.map((p) => ({ status: p.status, count: Number(p.n), amount: Number(p.amount) })),
  };
}
