import type { BatchRecord, ChainRecord, EpochRecord, RedeemedItem, SpendTotals } from './spend-store.ts';
import { sql } from '@netpay/service-kit';
import { epochsWithHeads, toChain, toEpoch } from './holder-epochs.ts';
import type { StoreContext } from './spend-store-schema.ts';

/** Journal rows (by rowid) one SQLite pruning statement looks at, a few milliseconds of the event loop. */
const PRUNE_SLICE = 20_000;

// Redemption (§7.3) at the vendor: which epochs have spent units not yet redeemed, the batches stored before they
// are sent (idempotency key and body), what the broker answered, applied to the epochs with the batch's completion
// in one transaction, and the journal rows it settled, pruned after the run.

/** The redemption records of the spend store. */
export class RedemptionBatches {
  readonly #db: StoreContext['db'];
  readonly #engine: StoreContext['engine'];

  constructor(context: StoreContext) {
    this.#db = context.db;
    this.#engine = context.engine;
  }

  /** Epochs with units spent past their redeemed point (or start), with their chains; nothing else is read. */
  async redeemable(): Promise<{ chain: ChainRecord; epoch: EpochRecord }[]> {
    const rows = await epochsWithHeads(this.#db)
      .innerJoin('netpay_chains', 'netpay_chains.chain_id', 'e.chain_id')
      .select([
        'netpay_chains.touchstone',
        'netpay_chains.unit',
        'netpay_chains.length',
        'netpay_chains.currency',
        'netpay_chains.expires_at_ms',
      ])
      .where('e.start_index', 'is not', null)
      .where(sql<boolean>`h.last_index > coalesce(e.redeemed_index, e.start_index)`)
      .orderBy('e.chain_id')
      .orderBy('e.epoch')
      .execute();
    return rows.map((row) => ({ chain: toChain(row), epoch: toEpoch(row) }));
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

  /**
   * Takes (or keeps) the job's lock for `holder` until `untilMs`: true when no other holder has it now. One statement,
   * so two processes asking at once cannot both win.
   */
  async claimJob(name: string, holder: string, nowMs: number, untilMs: number): Promise<boolean> {
    const result = await this.#db
      .insertInto('netpay_job_locks')
      .values({ name, holder, expires_at_ms: untilMs })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ holder, expires_at_ms: untilMs })
          .where((eb) =>
            eb.or([eb('netpay_job_locks.expires_at_ms', '<=', nowMs), eb('netpay_job_locks.holder', '=', holder)]),
          ),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** Lets the job's lock go, if `holder` still has it. */
  async releaseJob(name: string, holder: string): Promise<void> {
    await this.#db
      .updateTable('netpay_job_locks')
      .set({ expires_at_ms: 0 })
      .where('name', '=', name)
      .where('holder', '=', holder)
      .execute();
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
        // One conditional update per range: a range at or below the redeemed point was applied already.
        await trx
          .updateTable('netpay_epochs')
          .set((eb) => ({
            redeemed_index: item.to.index,
            redeemed_payword: item.to.payword,
            redeemed_minor: eb('redeemed_minor', '+', accepted ? item.amountMinor : 0),
            rejected_minor: eb('rejected_minor', '+', accepted ? 0 : item.amountMinor),
          }))
          .where('chain_id', '=', item.chainId)
          .where('epoch', '=', item.epoch)
          .where((eb) => eb.or([eb('redeemed_index', 'is', null), eb('redeemed_index', '<', item.to.index)]))
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

  /**
   * Totals from the epochs alone (one row each, never the journal): an epoch earned (last − start) × unit, and is
   * owed (last − redeemed point) × unit; what the broker answered is summed per epoch as it is applied.
   */
  async totals(): Promise<SpendTotals> {
    const { rows } = await sql<{ earned: unknown; pending: unknown; redeemed: unknown; rejected: unknown }>`
      SELECT
        COALESCE(SUM(CASE WHEN h.last_index > e.start_index
                          THEN (h.last_index - e.start_index) * c.unit ELSE 0 END), 0) AS earned,
        COALESCE(SUM(CASE WHEN h.last_index > COALESCE(e.redeemed_index, e.start_index)
                          THEN (h.last_index - COALESCE(e.redeemed_index, e.start_index)) * c.unit ELSE 0 END), 0)
          AS pending,
        COALESCE(SUM(e.redeemed_minor), 0) AS redeemed,
        COALESCE(SUM(e.rejected_minor), 0) AS rejected
      FROM netpay_epochs e JOIN netpay_chains c ON c.chain_id = e.chain_id
      JOIN netpay_epoch_heads h ON h.chain_id = e.chain_id AND h.epoch = e.epoch`.execute(this.#db);
    const row = rows[0];
    return {
      earned: Number(row?.earned ?? 0),
      pending: Number(row?.pending ?? 0),
      redeemed: Number(row?.redeemed ?? 0),
      rejected: Number(row?.rejected ?? 0),
    };
  }

  /**
   * Deletes the journal rows of settled ranges: every payment at or below its epoch's redeemed point, whether the
   * broker accepted the range or refused it for good (its answer stays with the batch). One pass over the journal
   * after a redemption run, not one per batch: the journal has no key to find a range by (it is append-only, so a
   * payment costs no index update). On SQLite the pass goes in slices of rowids with the event loop free between
   * them. Returns how many rows went.
   */
  async pruneJournal(): Promise<number> {
    if (this.#engine === 'postgres') {
      const result = await sql`
        DELETE FROM netpay_payment_journal j USING netpay_epochs e
         WHERE e.chain_id = j.chain_id AND e.epoch = j.epoch AND j.idx <= e.redeemed_index`.execute(this.#db);
      return Number(result.numAffectedRows ?? 0n);
    }
    const { rows } = await sql<{ low: number | null; high: number | null }>`
      SELECT MIN(rowid) AS low, MAX(rowid) AS high FROM netpay_payment_journal`.execute(this.#db);
    const low = rows[0]?.low;
    const high = rows[0]?.high;
    if (low === null || low === undefined || high === null || high === undefined) return 0;
    let deleted = 0;
    for (let from = Number(low); from <= Number(high); from += PRUNE_SLICE) {
      const result = await sql`
        DELETE FROM netpay_payment_journal WHERE rowid IN (
          SELECT j.rowid FROM netpay_payment_journal j
            JOIN netpay_epochs e ON e.chain_id = j.chain_id AND e.epoch = j.epoch
           WHERE j.rowid >= ${from} AND j.rowid < ${from + PRUNE_SLICE} AND j.idx <= e.redeemed_index)`.execute(
        this.#db,
      );
      deleted += Number(result.numAffectedRows ?? 0n);
      await new Promise((resolve) => setImmediate(resolve));
    }
    return deleted;
  }
}
