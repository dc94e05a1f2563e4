import type { HolderCertificate, PreviousHolder, ReleaseStatement, Touchstone } from '@netpay/protocol';
import type { ChainRecord, EpochRecord, PointRecord } from './spend-store.ts';
import type { ChainsTable, EpochWithHead, StoreContext } from './spend-store-schema.ts';

// Chains and their holder epochs at this vendor: the touchstone kept for the chain's life, and per epoch the holder
// certificate and its lease, the start (with the release it came from), the last point paid, the release this
// vendor signed and whether a later claim superseded it. The last point lives in the epoch's head
// (`netpay_epoch_heads`, the row a payment's compare-and-set changes); every read joins it, and every write that
// touches both rows does so in one transaction.

function point(index: number | null, payword: string | null): PointRecord | null {
  return index === null || payword === null ? null : { index: Number(index), payword };
}

function json<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

export function toEpoch(row: EpochWithHead): EpochRecord {
  return {
    chainId: row.chain_id,
    epoch: Number(row.epoch),
    holder: JSON.parse(row.holder) as HolderCertificate,
    leaseExpiresAtMs: Number(row.lease_expires_at_ms),
    previous: json<PreviousHolder>(row.previous),
    start: point(row.start_index, row.start_payword),
    startRelease: json<ReleaseStatement>(row.start_release),
    releaseReported: Number(row.start_release_reported) === 1,
    last: point(row.last_index, row.last_payword),
    lastResource: row.last_resource,
    release: json<ReleaseStatement>(row.release),
    superseded: Number(row.superseded) === 1,
    redeemed: point(row.redeemed_index, row.redeemed_payword),
    redeemedMinor: Number(row.redeemed_minor),
    rejectedMinor: Number(row.rejected_minor),
  };
}

export function toChain(row: ChainsTable): ChainRecord {
  return {
    chainId: row.chain_id,
    touchstone: JSON.parse(row.touchstone) as Touchstone,
    unit: Number(row.unit),
    length: Number(row.length),
    currency: row.currency,
    expiresAtMs: Number(row.expires_at_ms),
  };
}

/** Inserts a chain's record unless it is stored; whether it was new. */
async function insertChain(db: StoreContext['db'], chain: ChainRecord): Promise<boolean> {
  const result = await db
    .insertInto('netpay_chains')
    .values({
      chain_id: chain.chainId,
      touchstone: JSON.stringify(chain.touchstone),
      unit: chain.unit,
      length: chain.length,
      currency: chain.currency,
      expires_at_ms: chain.expiresAtMs,
    })
    .onConflict((oc) => oc.column('chain_id').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

/** Inserts an epoch and its head inside `trx`; false when the epoch exists (another process claimed first). */
async function insertEpochIn(trx: StoreContext['db'], e: EpochRecord): Promise<boolean> {
  const result = await trx
    .insertInto('netpay_epochs')
    .values({
      chain_id: e.chainId,
      epoch: e.epoch,
      holder: JSON.stringify(e.holder),
      lease_expires_at_ms: e.leaseExpiresAtMs,
      previous: e.previous ? JSON.stringify(e.previous) : null,
      start_index: e.start?.index ?? null,
      start_payword: e.start?.payword ?? null,
      start_release: e.startRelease ? JSON.stringify(e.startRelease) : null,
      start_release_reported: e.releaseReported ? 1 : 0,
      release: e.release ? JSON.stringify(e.release) : null,
      superseded: e.superseded ? 1 : 0,
      redeemed_index: null,
      redeemed_payword: null,
      redeemed_minor: 0,
      rejected_minor: 0,
    })
    .onConflict((oc) => oc.columns(['chain_id', 'epoch']).doNothing())
    .executeTakeFirst();
  if (Number(result.numInsertedOrUpdatedRows ?? 0n) !== 1) return false;
  // The epoch is new, so is its head (heads are made here and by migration 006 only).
  await trx
    .insertInto('netpay_epoch_heads')
    .values({
      chain_id: e.chainId,
      epoch: e.epoch,
      last_index: e.last?.index ?? null,
      last_payword: e.last?.payword ?? null,
      last_resource: e.lastResource,
      released: e.release ? 1 : 0,
    })
    .execute();
  return true;
}

/** Epoch rows with their heads' columns, as `toEpoch` reads them. */
export function epochsWithHeads(db: StoreContext['db']) {
  return db
    .selectFrom('netpay_epochs as e')
    .innerJoin('netpay_epoch_heads as h', (join) =>
      join.onRef('h.chain_id', '=', 'e.chain_id').onRef('h.epoch', '=', 'e.epoch'),
    )
    .selectAll('e')
    .select(['h.last_index', 'h.last_payword', 'h.last_resource']);
}

/** The chain and epoch records of the spend store. */
export class HolderEpochs {
  readonly #db: StoreContext['db'];

  constructor(context: StoreContext) {
    this.#db = context.db;
  }

  async loadChain(chainId: string) {
    const row = await this.#db
      .selectFrom('netpay_chains')
      .selectAll()
      .where('chain_id', '=', chainId)
      .executeTakeFirst();
    if (!row) return undefined;
    const epochs = await epochsWithHeads(this.#db).where('e.chain_id', '=', chainId).orderBy('e.epoch').execute();
    const ents = await this.#db
      .selectFrom('netpay_entitlements')
      .select('resource')
      .where('chain_id', '=', chainId)
      .execute();
    return { chain: toChain(row), epochs: epochs.map(toEpoch), entitlements: ents.map((e) => e.resource) };
  }

  async saveChain(chain: ChainRecord): Promise<void> {
    await insertChain(this.#db, chain);
  }

  /**
   * A chain never stored here, with its first epoch: one transaction, so a reader's first payment waits for one
   * commit (and one fsync) fewer. False, with nothing written, when the chain is stored already (another process of
   * this vendor has it: the caller loads it and goes the usual way).
   */
  async insertFirstEpoch(chain: ChainRecord, e: EpochRecord): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      if (!(await insertChain(trx, chain))) return false;
      return insertEpochIn(trx, e);
    });
  }

  async insertEpoch(e: EpochRecord): Promise<boolean> {
    return this.#db.transaction().execute((trx) => insertEpochIn(trx, e));
  }

  async getEpoch(chainId: string, epoch: number): Promise<EpochRecord | undefined> {
    const row = await epochsWithHeads(this.#db)
      .where('e.chain_id', '=', chainId)
      .where('e.epoch', '=', epoch)
      .executeTakeFirst();
    return row ? toEpoch(row) : undefined;
  }

  async updateLease(chainId: string, epoch: number, holder: HolderCertificate, leaseExpiresAtMs: number) {
    await this.#db
      .updateTable('netpay_epochs')
      .set({ holder: JSON.stringify(holder), lease_expires_at_ms: leaseExpiresAtMs })
      .where('chain_id', '=', chainId)
      .where('epoch', '=', epoch)
      .where('lease_expires_at_ms', '<=', leaseExpiresAtMs)
      .execute();
  }

  async setStart(chainId: string, epoch: number, start: PointRecord, startRelease: ReleaseStatement | null) {
    return this.#db.transaction().execute(async (trx) => {
      const result = await trx
        .updateTable('netpay_epochs')
        .set({
          start_index: start.index,
          start_payword: start.payword,
          start_release: startRelease ? JSON.stringify(startRelease) : null,
        })
        .where('chain_id', '=', chainId)
        .where('epoch', '=', epoch)
        .where('start_index', 'is', null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      // No payment moves a head without a start, so the head is still empty here.
      const head = await trx
        .updateTable('netpay_epoch_heads')
        .set({ last_index: start.index, last_payword: start.payword })
        .where('chain_id', '=', chainId)
        .where('epoch', '=', epoch)
        .where('last_index', 'is', null)
        .executeTakeFirst();
      if (Number(head.numUpdatedRows) !== 1) throw new Error(`epoch ${chainId}/${epoch}: head moved before its start`);
      return true;
    });
  }

  /**
   * Stores the release only while the epoch's last index is the one it signs: the head is marked released in the
   * same compare-and-set, so no payment commits past it afterwards (a payment's CAS asks `released = 0`), and a
   * payment another process committed first makes this store nothing.
   */
  async setRelease(chainId: string, epoch: number, release: ReleaseStatement): Promise<ReleaseStatement | undefined> {
    await this.#db.transaction().execute(async (trx) => {
      const head = await trx
        .updateTable('netpay_epoch_heads')
        .set({ released: 1 })
        .where('chain_id', '=', chainId)
        .where('epoch', '=', epoch)
        .where('last_index', '=', release.index)
        .where('released', '=', 0)
        .executeTakeFirst();
      if (Number(head.numUpdatedRows) !== 1) return;
      const stored = await trx
        .updateTable('netpay_epochs')
        .set({ release: JSON.stringify(release) })
        .where('chain_id', '=', chainId)
        .where('epoch', '=', epoch)
        .where('release', 'is', null)
        .executeTakeFirst();
      if (Number(stored.numUpdatedRows) !== 1)
        throw new Error(`epoch ${chainId}/${epoch}: released head, stored release`);
    });
    const stored = await this.getEpoch(chainId, epoch);
    if (!stored) throw new Error(`epoch ${chainId}/${epoch} vanished`);
    return stored.release ?? undefined;
  }

  async markSuperseded(chainId: string, epoch: number): Promise<void> {
    await this.#db
      .updateTable('netpay_epochs')
      .set({ superseded: 1 })
      .where('chain_id', '=', chainId)
      .where('epoch', '=', epoch)
      .execute();
  }

  async markReleaseReported(chainId: string, epoch: number): Promise<void> {
    await this.#db
      .updateTable('netpay_epochs')
      .set({ start_release_reported: 1 })
      .where('chain_id', '=', chainId)
      .where('epoch', '=', epoch)
      .execute();
  }

  async activeEpochs(): Promise<EpochRecord[]> {
    const rows = await epochsWithHeads(this.#db)
      .where('e.superseded', '=', 0)
      .where('e.release', 'is', null)
      .where('e.start_index', 'is not', null)
      .execute();
    return rows.map(toEpoch);
  }
}
