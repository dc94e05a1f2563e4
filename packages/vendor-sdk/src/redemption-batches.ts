import type { BatchRecord, ChainRecord, EpochRecord, RedeemedItem, SpendTotals } from './spend-store.ts';
import type { StoreContext } from './spend-store-schema.ts';
import { toChain, toEpoch } from './holder-epochs.ts';

// Redemption (§7.3) at the vendor: which epochs have spent units not yet redeemed, the batches stored before they
// are sent (idempotency key and body), and what the broker answered, applied to the epochs with the batch's
// completion in one transaction.

/** The redemption records of the spend store. */
export class RedemptionBatches {
  readonly #db: StoreContext['db'];

  constructor(context: StoreContext) {
    this.#db = context.db;
  }

  async redeemable() {
    const rows = await this.#db
      .selectFrom('netpay_epochs')
      .innerJoin('netpay_chains', 'netpay_chains.chain_id', 'netpay_epochs.chain_id')
      .selectAll('netpay_epochs')
      .select([
        'netpay_chains.touchstone',
        'netpay_chains.unit',
        'netpay_chains.length',
        'netpay_chains.currency',
        'netpay_chains.expires_at_ms',
      ])
      .where('netpay_epochs.start_index', 'is not', null)
      .orderBy('netpay_epochs.chain_id')
      .orderBy('netpay_epochs.epoch')
      .execute();
    const out: { chain: ChainRecord; epoch: EpochRecord }[] = [];
    for (const row of rows) {
      const epoch = toEpoch(row);
      const from = epoch.redeemed ?? epoch.start;
      if (!from || !epoch.last || epoch.last.index <= from.index) continue;
      out.push({ chain: toChain(row), epoch });
    }
    return out;
  }

  async createBatch(key: string, body: string): Promise<void> {
    await this.#db
      .insertInto('netpay_redemption_batches')
      .values({ idempotency_key: key, body, status: 'pending', response: null, created_at_ms: Date.now() })
      .execute();
  }

  async pendingBatches(): Promise<BatchRecord[]> {
    const rows = await this.#db
      .selectFrom('netpay_redemption_batches')
      .selectAll()
      .where('status', '=', 'pending')
      .orderBy('created_at_ms')
      .execute();
    return rows.map((r) => ({
      key: r.idempotency_key,
      body: r.body,
      status: r.status as BatchRecord['status'],
      response: r.response,
    }));
  }

  async completeBatch(key: string, response: string, items: RedeemedItem[]): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      const marked = await trx
        .updateTable('netpay_redemption_batches')
        .set({ status: 'done', response })
        .where('idempotency_key', '=', key)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      if (Number(marked.numUpdatedRows) !== 1) return; // already applied
      for (const item of items) {
        const accepted = item.status === 'accepted';
        const row = await trx
          .selectFrom('netpay_epochs')
          .select(['redeemed_minor', 'rejected_minor', 'redeemed_index'])
          .where('chain_id', '=', item.chainId)
          .where('epoch', '=', item.epoch)
          .executeTakeFirst();
        if (!row) continue;
        if (row.redeemed_index !== null && Number(row.redeemed_index) >= item.to.index) continue;
        await trx
          .updateTable('netpay_epochs')
          .set({
            redeemed_index: item.to.index,
            redeemed_payword: item.to.payword,
            redeemed_minor: Number(row.redeemed_minor) + (accepted ? item.amountMinor : 0),
            rejected_minor: Number(row.rejected_minor) + (accepted ? 0 : item.amountMinor),
          })
          .where('chain_id', '=', item.chainId)
          .where('epoch', '=', item.epoch)
          .execute();
      }
    });
  }

  async failBatch(key: string, response: string): Promise<void> {
    await this.#db
      .updateTable('netpay_redemption_batches')
      .set({ status: 'failed', response })
      .where('idempotency_key', '=', key)
      .execute();
  }

  async totals(): Promise<SpendTotals> {
    const earned = await this.#db
      .selectFrom('netpay_payments')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('amount_minor'), eb.lit(0)).as('s'))
      .executeTakeFirstOrThrow();
    const epochs = await this.#db
      .selectFrom('netpay_epochs')
      .innerJoin('netpay_chains', 'netpay_chains.chain_id', 'netpay_epochs.chain_id')
      .select([
        'netpay_chains.unit',
        'netpay_epochs.start_index',
        'netpay_epochs.last_index',
        'netpay_epochs.redeemed_index',
        'netpay_epochs.redeemed_minor',
        'netpay_epochs.rejected_minor',
      ])
      .execute();
    let pending = 0;
    let redeemed = 0;
    let rejected = 0;
    for (const e of epochs) {
      redeemed += Number(e.redeemed_minor);
      rejected += Number(e.rejected_minor);
      if (e.start_index === null || e.last_index === null) continue;
      const from = Number(e.redeemed_index ?? e.start_index);
      pending += Math.max(0, Number(e.last_index) - from) * Number(e.unit);
    }
    return { earned: Number(earned.s), pending, redeemed, rejected };
  }
}
