import type { Database } from '@netpay/service-kit';
import type { Kysely } from 'kysely';
import type { PaymentWrite } from './spend-store.ts';
import type { Schema } from './spend-store-schema.ts';

// The payment journal (§6.3 step 4, record then serve): each payment is a compare-and-set on its epoch's last
// index plus a journal row and the chain's entitlement to the resource, committed in groups so that one commit
// serves every payment that arrived meanwhile.

interface Pending {
  write: PaymentWrite;
  resolve(result: 'ok' | 'conflict'): void;
  reject(error: unknown): void;
}

type WriteResult = 'ok' | 'conflict';

/** Commits one batch of payment writes in one transaction; each write is compare-and-set on its own. */
export type CommitBatch = (batch: PaymentWrite[]) => Promise<WriteResult[]>;

/** The group commit of payments: one transaction per turn of the event loop, each write still CAS-checked. */
export class GroupCommitter {
  #queue: Pending[] = [];
  #flushing = false;
  #scheduled = false;
  constructor(
    private readonly commit: CommitBatch,
    /** Resolves once what was committed before the call is on disk (nothing is answered as paid before). */
    private readonly durable: () => Promise<void>,
  ) {}

  submit(write: PaymentWrite): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ write, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#flushing || this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate lets every request parsed in this I/O turn join the batch.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#flushing || this.#queue.length === 0) return;
    this.#flushing = true;
    const batch = this.#queue;
    this.#queue = [];
    let results: WriteResult[];
    try {
      results = await this.commit(batch.map((p) => p.write));
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    } finally {
      // The next batch may commit while this one's fsync runs; it then waits for the fsync after it.
      this.#flushing = false;
      if (this.#queue.length > 0) this.#schedule();
    }
    try {
      await this.durable();
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    for (const [i, p] of batch.entries()) p.resolve(results[i] as WriteResult);
  }
}

/** The portable batch commit, through Kysely (SQLite when the fast path must wait). */
export function kyselyCommit(db: Kysely<Schema>): CommitBatch {
  return (batch) =>
    db.transaction().execute(async (trx) => {
      const out: WriteResult[] = [];
      for (const w of batch) {
        const updated = await trx
          .updateTable('netpay_epochs')
          .set({ last_index: w.index, last_payword: w.payword, last_resource: w.resource })
          .where('chain_id', '=', w.chainId)
          .where('epoch', '=', w.epoch)
          .where('last_index', '=', w.expectedLastIndex)
          .where('release', 'is', null)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) !== 1) {
          out.push('conflict');
          continue;
        }
        await trx
          .insertInto('netpay_payments')
          .values({
            chain_id: w.chainId,
            epoch: w.epoch,
            idx: w.index,
            payword: w.payword,
            resource: w.resource,
            amount_minor: w.amountMinor,
            at_ms: w.atMs,
          })
          .onConflict((oc) => oc.doNothing())
          .execute();
        await trx
          .insertInto('netpay_entitlements')
          .values({ chain_id: w.chainId, resource: w.resource })
          .onConflict((oc) => oc.doNothing())
          .execute();
        out.push('ok');
      }
      return out;
    });
}

/**
 * The SQLite fast path: the whole batch as one synchronous transaction of cached prepared statements. Building
 * and preparing three Kysely queries per payment cost more than the payment itself; this keeps a paid request
 * close to a free one. It shares Kysely's connection, so while a Kysely transaction is open (it awaits between
 * statements) the batch goes through Kysely instead, never nesting inside another transaction.
 */
export function sqliteCommit(sqlite: SQLiteHandle, fallback: CommitBatch): CommitBatch {
  const cas = sqlite.prepare(
    `UPDATE netpay_epochs SET last_index = ?, last_payword = ?, last_resource = ?
     WHERE chain_id = ? AND epoch = ? AND last_index = ? AND release IS NULL`,
  );
  const payment = sqlite.prepare(
    `INSERT INTO netpay_payments (chain_id, epoch, idx, payword, resource, amount_minor, at_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  );
  const entitlement = sqlite.prepare(
    'INSERT INTO netpay_entitlements (chain_id, resource) VALUES (?, ?) ON CONFLICT DO NOTHING',
  );
  const run = sqlite.transaction((batch: PaymentWrite[]): WriteResult[] =>
    batch.map((w) => {
      const updated = cas.run(w.index, w.payword, w.resource, w.chainId, w.epoch, w.expectedLastIndex);
      if (updated.changes !== 1) return 'conflict';
      payment.run(w.chainId, w.epoch, w.index, w.payword, w.resource, w.amountMinor, w.atMs);
      entitlement.run(w.chainId, w.resource);
      return 'ok';
    }),
  );
  return async (batch) => (sqlite.inTransaction ? fallback(batch) : run.immediate(batch));
}

export type SQLiteHandle = NonNullable<Database<Schema>['sqlite']>;
