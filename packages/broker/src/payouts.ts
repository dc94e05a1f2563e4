import { Money } from '@netpay/protocol';
import { type Clock, type DatabaseEngine, forUpdate, isUniqueViolation, rfc3339 } from '@netpay/service-kit';
import { type Bank, BankUnavailable } from './bank-port.ts';
import type { BrokerConfig } from './config.ts';
import { newId } from './ids.ts';
import { payoutEntryOf, vendorAccount } from './ledger.ts';
import { accountBalance, postEntry } from './ledger-store.ts';
import type { BrokerDb, BrokerSchema, BrokerTx, Queryable } from './schema.ts';
import { contested, epochEndKnown, settle } from './settlement.ts';
import { BROKER_VENDOR_ID } from './vendor-registry.ts';

export interface PayoutReport {
  paid: Array<{ payoutId: string; vendorId: string; amount: number }>;
  pending: Array<{ payoutId: string; vendorId: string; amount: number; reason: string }>;
  failed: Array<{ payoutId: string; vendorId: string; amount: number; reason: string }>;
  /** Credit not paid out yet because a take-back could still claim it (`settlement.ts`). */
  held: Array<{ vendorId: string; amount: number }>;
}

export interface PayoutDeps {
  db: BrokerDb;
  engine: DatabaseEngine;
  bank: Bank;
  clock: Clock;
  config: Pick<BrokerConfig, 'currency' | 'settlementWindowSeconds'>;
}

type PayoutRow = BrokerSchema['payouts'];

/**
 * Pays every vendor its settled credit. Safe to run from several hosts at once:
 *
 * - Per vendor, one transaction locks the vendor's account, computes what is payable (`settle`: balance − pending
 *   payouts − held) and records a `pending` payout. A partial unique index allows one pending payout per vendor,
 *   and the posting of a paid payout takes the same lock, so a slower run either sees the pending payout or the
 *   lowered balance, never neither.
 * - The payout's id is the bank's idempotency key, recorded before the bank is called: a crash or timeout never
 *   pays twice, and any run (this one or a later one) retries a pending payout under the same key.
 * - A payout turns `paid` (and is posted: vendor +amount / cash −amount) or `failed` only from `pending`, in one
 *   conditional update under the vendor's lock, so two runs that both got the bank's answer post it once.
 *
 * @example
 * const report = await runPayouts({ db, engine, bank, clock: systemClock, config });
 */
export async function runPayouts(deps: PayoutDeps): Promise<PayoutReport> {
  const report: PayoutReport = { paid: [], pending: [], failed: [], held: [] };

  const vendors = await deps.db
    .selectFrom('vendors')
    .select('id')
    .where('id', '!=', BROKER_VENDOR_ID)
    .orderBy('id')
    .execute();
  for (const { id: vendorId } of vendors) {
    const held = await recordPayableAsPending(deps, vendorId);
    if (held > 0) report.held.push({ vendorId, amount: held });
  }

  const pending = await deps.db
    .selectFrom('payouts')
    .selectAll()
    .where('status', '=', 'pending')
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  for (const payout of pending) await settleWithBank(deps, payout, report);
  return report;
}

/** Records a pending payout of what the vendor may be paid now, if anything; returns what is held back. */
async function recordPayableAsPending(deps: PayoutDeps, vendorId: string): Promise<number> {
  try {
    return await deps.db.transaction().execute(async (trx) => {
      if (!(await lockVendorAccount(trx, deps.engine, vendorId))) return 0; // never credited: nothing owed
      const now = deps.clock.now();
      const facts = await gatherSettlementFacts(trx, vendorId, now, deps.config.settlementWindowSeconds);
      const { held, payable } = settle({ ...facts, now, settlementWindowSeconds: deps.config.settlementWindowSeconds });
      // One pending payout per vendor: the next run pays what is left once this one is settled.
      if (facts.pendingCount > 0 || payable <= 0) return held;
      const at = rfc3339(now);
      await trx
        .insertInto('payouts')
        .values({
          id: newId('po'),
          vendor_id: vendorId,
          amount: payable,
          currency: deps.config.currency,
          status: 'pending',
          bank_payout_id: null,
          created_at: at,
          updated_at: at,
        })
        .execute();
      return held;
    });
  } catch (error) {
    // Another run (one that does not take the lock, e.g. an older version) recorded the vendor's pending payout.
    if (isUniqueViolation(error)) return 0;
    throw error;
  }
}

/** Calls the bank for one pending payout and records its answer, once, whichever run gets there first. */
async function settleWithBank(deps: PayoutDeps, payout: PayoutRow, report: PayoutReport): Promise<void> {
  const ref = { payoutId: payout.id, vendorId: payout.vendor_id, amount: payout.amount };
  const result = await deps.bank
    .payout({ amount: payout.amount, currency: payout.currency, destination: `vendor:${payout.vendor_id}` }, payout.id)
    .catch((error: unknown) => {
      if (error instanceof BankUnavailable) return error;
      throw error;
    });
  if (result instanceof BankUnavailable) {
    report.pending.push({ ...ref, reason: result.message });
    return;
  }
  const at = rfc3339(deps.clock.now());
  const changed = await deps.db.transaction().execute(async (trx) => {
    await lockVendorAccount(trx, deps.engine, payout.vendor_id);
    const update = trx
      .updateTable('payouts')
      .where('id', '=', payout.id)
      .where('status', '=', 'pending')
      .set(
        result.ok
          ? { status: 'paid', bank_payout_id: result.payoutId, updated_at: at }
          : { status: 'failed', updated_at: at },
      );
    const { numUpdatedRows } = await update.executeTakeFirstOrThrow();
    if (numUpdatedRows !== 1n) return false; // another run recorded the bank's answer first
    if (result.ok)
      await postEntry(trx, payoutEntryOf(payout.id, payout.vendor_id, Money.of(payout.amount, payout.currency)), at);
    return true;
  });
  if (!changed) return;
  if (result.ok) report.paid.push(ref);
  else report.failed.push({ ...ref, reason: result.detail ?? result.code });
}

/**
 * Locks the vendor's account row for the rest of the transaction; false when the vendor has no account.
 * PostgreSQL: a row lock. SQLite: Kysely opens a deferred transaction, which reads a snapshot and fails (busy
 * snapshot) instead of waiting when another process wrote meanwhile; making the first statement a write takes
 * the database's write lock at once, waiting out the busy timeout, so everything read after it is current.
 */
async function lockVendorAccount(trx: BrokerTx, engine: DatabaseEngine, vendorId: string): Promise<boolean> {
  const id = vendorAccount(vendorId);
  if (forUpdate(engine)) {
    const row = await trx.selectFrom('accounts').select('id').where('id', '=', id).forUpdate().executeTakeFirst();
    return row !== undefined;
  }
  const { numUpdatedRows } = await trx
    .updateTable('accounts')
    .set((eb) => ({ kind: eb.ref('kind') }))
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  return numUpdatedRows > 0n;
}

/**
 * The vendor's balance, pending payouts and recent redeemed ranges with their epochs' ends, in ONE statement:
 * on PostgreSQL (read committed) each statement sees its own snapshot, and a redemption or take-back committed
 * between two reads would make the balance and the held ranges disagree. Ranges older than the window cannot be
 * held, so they are left out here (a superset of what `settle` holds); `settle` applies the rule.
 */
async function gatherSettlementFacts(trx: BrokerTx, vendorId: string, now: Date, windowSeconds: number) {
  const windowStart = rfc3339(new Date(now.getTime() - windowSeconds * 1000));
  const rows = await trx
    .selectFrom('vendors as v')
    .leftJoin('redeemed_ranges as r', (join) =>
      join.onRef('r.vendor_id', '=', 'v.id').on((eb) =>
        eb.or([
          eb('r.created_at', '>', windowStart),
          // A contested range is held whatever its age (settlement.ts): read it however old.
          eb.exists(
            eb
              .selectFrom('epochs as x')
              .select('x.epoch')
              .whereRef('x.chain_id', '=', 'r.chain_id')
              .where('x.epoch', '=', eb('r.epoch', '+', 1))
              .where('x.start_index', 'is', null)
              .where('x.claim_index', 'is not', null)
              .where('x.claim_index', '<=', eb.ref('r.kept_to')),
          ),
        ]),
      ),
    )
    .leftJoin('epochs as e', (join) => join.onRef('e.chain_id', '=', 'r.chain_id').onRef('e.epoch', '=', 'r.epoch'))
    .leftJoin('epochs as n', (join) =>
      join.onRef('n.chain_id', '=', 'r.chain_id').on('n.epoch', '=', (eb) => eb('r.epoch', '+', 1)),
    )
    .leftJoin('chains as c', 'c.chain_id', 'r.chain_id')
    .where('v.id', '=', vendorId)
    .select((eb) => [
      eb
        .selectFrom('postings')
        .select((s) => s.fn.sum<number | string | null>('amount').as('sum'))
        .where('account_id', '=', vendorAccount(vendorId))
        .as('balance'),
      eb
        .selectFrom('payouts')
        .select((s) => s.fn.sum<number | string | null>('amount').as('sum'))
        .where('vendor_id', '=', vendorId)
        .where('status', '=', 'pending')
        .as('pending_sum'),
      eb
        .selectFrom('payouts')
        .select((s) => s.fn.countAll<number | string>().as('n'))
        .where('vendor_id', '=', vendorId)
        .where('status', '=', 'pending')
        .as('pending_count'),
      'r.id as range_id',
      'r.gross',
      'r.fee',
      'r.taken_back_gross',
      'r.taken_back_fee',
      'r.created_at',
      'r.kept_to',
      'n.start_index as next_start',
      'n.claim_index as next_claim',
      'e.release_index',
      'e.forced_bound',
      'c.status as chain_status',
    ])
    .execute();
  const first = rows[0];
  return {
    // The account is credit-normal: its debit-positive sum is minus what the broker owes.
    balance: -Number(first?.balance ?? 0),
    pendingPayouts: Number(first?.pending_sum ?? 0),
    pendingCount: Number(first?.pending_count ?? 0),
    credits: rows.flatMap((row) =>
      row.range_id === null
        ? []
        : [
            {
              gross: Number(row.gross),
              fee: Number(row.fee),
              takenBackGross: Number(row.taken_back_gross),
              takenBackFee: Number(row.taken_back_fee),
              createdAt: String(row.created_at),
              contested: contested({ keptTo: row.kept_to, nextStart: row.next_start, nextClaim: row.next_claim }),
              epochEndKnown: epochEndKnown({
                releaseIndex: row.release_index,
                forcedBound: row.forced_bound,
                chainStatus: row.chain_status,
              }),
            },
          ],
    ),
  };
}

/** The vendor's ledger balance, credit-positive: what the broker owes it, settled or not. */
export async function vendorBalance(db: Queryable, vendorId: string): Promise<number> {
  return -(await accountBalance(db, vendorAccount(vendorId)));
}

/** §5 `GET {api}/vendor/account`. */
export async function vendorAccountView(db: Queryable, vendorId: string, currency: string) {
  const balance = await vendorBalance(db, vendorId);
  const sums = await db
    .selectFrom('payouts')
    .select(['status', (eb) => eb.fn.sum<number | string | null>('amount').as('total')])
    .where('vendor_id', '=', vendorId)
    .groupBy('status')
    .execute();
  const total = (status: string) => Number(sums.find((s) => s.status === status)?.total ?? 0);
  return { vendorId, balance, pending: total('pending'), paidOut: total('paid'), currency };
}
