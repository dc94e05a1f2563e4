import { rfc3339, type Clock, systemClock } from '@netpay/service-kit';
import { type Bank, BankUnavailable } from './bank-port.ts';
import { newId } from './ids.ts';
import { payoutEntry, vendorAccount } from './ledger.ts';
import { accountBalance, postEntry } from './ledger-store.ts';
import type { BrokerDb, Queryable } from './schema.ts';
import { BROKER_VENDOR_ID } from './vendor-registry.ts';

export interface PayoutReport {
  paid: Array<{ payoutId: string; vendorId: string; amount: number }>;
  pending: Array<{ payoutId: string; vendorId: string; amount: number; reason: string }>;
  failed: Array<{ payoutId: string; vendorId: string; amount: number; reason: string }>;
}

/**
 * Pays every vendor the broker owes money. Each payout is recorded as `pending` (its id is the bank's
 * idempotency key) before the bank is called, so a crash or timeout never pays twice: the next run retries
 * the pending payout under the same key first. Paid payouts post vendor +amount / cash −amount.
 *
 * @example
 * const report = await runPayouts(db, bank);
 */
export async function runPayouts(
  db: BrokerDb,
  bank: Bank,
  options: { clock?: Clock; currency?: string } = {},
): Promise<PayoutReport> {
  const clock = options.clock ?? systemClock;
  const currency = options.currency ?? 'NZD';
  const report: PayoutReport = { paid: [], pending: [], failed: [] };

  const vendors = await db
    .selectFrom('vendors')
    .select('id')
    .where('id', '!=', BROKER_VENDOR_ID)
    .orderBy('id')
    .execute();
  for (const { id: vendorId } of vendors) {
    const pendingExisting = await db
      .selectFrom('payouts')
      .select('id')
      .where('vendor_id', '=', vendorId)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    if (pendingExisting) continue; // retried below
    const owed = await payable(db, vendorId);
    if (owed <= 0) continue;
    const at = rfc3339(clock.now());
    await db
      .insertInto('payouts')
      .values({
        id: newId('po'),
        vendor_id: vendorId,
        amount: owed,
        currency,
        status: 'pending',
        bank_payout_id: null,
        created_at: at,
        updated_at: at,
      })
      .execute();
  }

  const pending = await db
    .selectFrom('payouts')
    .selectAll()
    .where('status', '=', 'pending')
    .orderBy('created_at')
    .execute();
  for (const payout of pending) {
    let result: Awaited<ReturnType<Bank['payout']>>;
    try {
      result = await bank.payout(
        { amount: payout.amount, currency: payout.currency, destination: `vendor:${payout.vendor_id}` },
        payout.id,
      );
    } catch (error) {
      if (!(error instanceof BankUnavailable)) throw error;
      report.pending.push({
        payoutId: payout.id,
        vendorId: payout.vendor_id,
        amount: payout.amount,
        reason: error.message,
      });
      continue;
    }
    const at = rfc3339(clock.now());
    if (!result.ok) {
      await db.updateTable('payouts').set({ status: 'failed', updated_at: at }).where('id', '=', payout.id).execute();
      report.failed.push({
        payoutId: payout.id,
        vendorId: payout.vendor_id,
        amount: payout.amount,
        reason: result.detail ?? result.code,
      });
      continue;
    }
    await db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('payouts').select('status').where('id', '=', payout.id).executeTakeFirst();
      if (row?.status !== 'pending') return;
      await postEntry(trx, payoutEntry(payout.id, payout.vendor_id, payout.amount), at);
      await trx
        .updateTable('payouts')
        .set({ status: 'paid', bank_payout_id: result.payoutId, updated_at: at })
        .where('id', '=', payout.id)
        .execute();
    });
    report.paid.push({ payoutId: payout.id, vendorId: payout.vendor_id, amount: payout.amount });
  }
  return report;
}

/** What the broker owes a vendor now (its payable account, credit-positive). */
export async function payable(db: Queryable, vendorId: string): Promise<number> {
  return -(await accountBalance(db, vendorAccount(vendorId)));
}

/** §5 `GET {api}/vendor/account`. */
export async function vendorAccountView(db: Queryable, vendorId: string, currency: string) {
  const balance = await payable(db, vendorId);
  const sums = await db
    .selectFrom('payouts')
    .select(['status', (eb) => eb.fn.sum<number | string | null>('amount').as('total')])
    .where('vendor_id', '=', vendorId)
    .groupBy('status')
    .execute();
  const total = (status: string) => Number(sums.find((s) => s.status === status)?.total ?? 0);
  return { vendorId, balance, pending: total('pending'), paidOut: total('paid'), currency };
}
