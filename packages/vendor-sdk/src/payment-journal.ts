import type { SqliteConnection } from '@netpay/service-kit';
import type { PaymentWrite, PointRecord } from './spend-store.ts';
import type { StoreContext } from './spend-store-schema.ts';

// The payment journal (§6.3 step 4, record then serve): a payment is a compare-and-set on its epoch's last index
// plus an appended journal row, and the chain's entitlement to the resource when it is new (and, for a server-side
// wallet's payment, its session's purchase note), committed in groups so that one commit (and one fsync) serves every
// payment that arrived meanwhile.

export type WriteResult = 'ok' | 'conflict';

/**
 * Commits one batch of payment writes in one transaction, each with the result it would have had alone. It may
 * answer synchronously (SQLite, when it need not wait for a checkpoint), so that the fsync of the batch starts at once.
 */
export type CommitBatch = (batch: PaymentWrite[]) => WriteResult[] | Promise<WriteResult[]>;

interface Pending {
  write: PaymentWrite;
  resolve(result: WriteResult): void;
  reject(error: unknown): void;
}

/**
 * The longest a batch waits for more payments, while each event-loop turn still brings some. Measured side by side
 * (SQLite, fsync on the loop, 50 connections, one core): 42 payments a commit instead of 31, 1.02-1.06x the paid
 * throughput, 2.5 µs less CPU an answer. The wait ends at the first turn that brings nothing, and a payment alone in
 * its turn does not wait at all.
 */
export const GATHER_MS = 1;

/** How a group commit runs; the defaults are SQLite's. */
export interface GroupCommitOptions {
  /**
   * Batches committed and not yet durable at once. A batch never holds a chain another batch in flight holds: on a
   * pool of connections the later one could commit first and fail its compare-and-set for nothing, and a chain's
   * payments stay in order whatever the store.
   */
  maxInFlight?: number;
  /** The longest a batch waits for more payments (`GATHER_MS`); 0 commits what one turn brought. */
  gatherMs?: number;
  /**
   * A batch this long is committed at once, while a slot is free, instead of at the end of the turn that brought it:
   * the database works on it while the event loop still parses the turn's other requests. Only for a store whose
   * commit runs elsewhere (PostgreSQL); unset, a batch closes with its turn.
   */
  cutAt?: number;
  /** Hears of each batch once durable, for metrics; what it throws is dropped. */
  observe?: (batch: PaymentWrite[], results: WriteResult[], seconds: number) => void;
}

/**
 * The group commit of payments: one transaction per fsync, each write still CAS-checked.
 *
 * Up to `maxInFlight` batches are in flight, each from its commit until its fsync has ended. Payments that arrive
 * while every slot is taken wait for the next batch, which is committed, and its fsync started, the moment a slot
 * frees: *before* the batch just made durable is answered. So the disk works while the event loop writes the answers
 * and parses the next requests, instead of each waiting for the other (at 50 connections that wait was 18 % of a
 * loaded vendor's time), and a slow fsync does not hold up the batches behind it.
 */
export class GroupCommitter {
  #queue: Pending[] = [];
  /**
   * Queued payments the next batch could take (not of a chain in flight): what `cutAt` counts. Counting the whole
   * queue, payments held behind their chain's batch made every later submit cut a batch of one, each a walk of the
   * queue (20,000 payments queued on one chain in flight took 3.6 s instead of 35 ms).
   */
  #takeable = 0;
  #inFlight = 0;
  #scheduled = false;
  /** The queue's length at the last turn that gathered, and when the gathering began (performance.now()). */
  #gathered = 0;
  #firstAt = 0;
  readonly maxInFlight: number;
  readonly #gatherMs: number;
  readonly #cutAt: number;
  readonly #observe: GroupCommitOptions['observe'];

  constructor(
    private readonly commit: CommitBatch,
    /** Resolves once what was committed before the call is on disk (nothing is answered as paid before). */
    private readonly durable: () => Promise<void>,
    options: GroupCommitOptions = {},
  ) {
    this.maxInFlight = options.maxInFlight ?? 1;
    this.#gatherMs = options.gatherMs ?? GATHER_MS;
    this.#cutAt = options.cutAt ?? Number.POSITIVE_INFINITY;
    this.#observe = options.observe;
  }

  /** Chains of the batches in flight (only counted when more than one may be). */
  readonly #chainsInFlight = new Set<string>();

  submit(write: PaymentWrite): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ write, resolve, reject });
      // (Chains in flight are only kept with more than one batch in flight: with one, everything queued is takeable.)
      if (!this.#chainsInFlight.has(write.chainId)) this.#takeable++;
      if (this.#takeable >= this.#cutAt && this.#inFlight < this.maxInFlight) this.#start();
      // What the cut left (payments of chains in flight) goes with the turn's end or the next batch's.
      if (this.#queue.length > 0) this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#inFlight >= this.maxInFlight || this.#scheduled) return;
    this.#scheduled = true;
    this.#gathered = this.#queue.length;
    this.#firstAt = performance.now();
    // setImmediate lets every request parsed in this I/O turn join the batch. If more than the first came in this
    // turn, more may be on their way: while each turn still brings payments the batch waits one more (up to
    // `gatherMs`), so that one commit and one fsync serve more of them.
    setImmediate(this.#gather);
  }

  readonly #gather = (): void => {
    const grew = this.#queue.length > this.#gathered;
    if (grew && this.#inFlight < this.maxInFlight && performance.now() - this.#firstAt < this.#gatherMs) {
      this.#gathered = this.#queue.length;
      setImmediate(this.#gather);
      return;
    }
    this.#scheduled = false;
    this.#start();
  };

  /** Commits what is queued and starts its fsync, unless every slot is taken (a batch's end starts the next). */
  #start(): void {
    if (this.#inFlight >= this.maxInFlight || this.#queue.length === 0) return;
    const batch = this.#take();
    if (batch.length === 0) return;
    this.#inFlight++;
    const started = performance.now();
    let committed: WriteResult[] | Promise<WriteResult[]>;
    try {
      committed = this.commit(batch.map((p) => p.write));
    } catch (error) {
      this.#failSoon(batch, started, error);
      return;
    }
    if (Array.isArray(committed)) this.#sync(batch, started, committed);
    else
      committed.then(
        (results) => this.#sync(batch, started, results),
        (error: unknown) => this.#end(batch, started, undefined, error),
      );
  }

  /** The queue, but for the payments of chains in flight (and every later one of theirs), which wait. */
  #take(): Pending[] {
    const queue = this.#queue;
    this.#queue = [];
    // What stays queued is held behind a batch in flight; its end takes it (and starts counting afresh).
    this.#takeable = 0;
    if (this.maxInFlight === 1) return queue;
    const batch: Pending[] = [];
    for (const p of queue) {
      if (this.#chainsInFlight.has(p.write.chainId)) this.#queue.push(p);
      else batch.push(p);
    }
    // Added after the split: two payments of one chain in this queue go together, in order, as one run.
    for (const p of batch) this.#chainsInFlight.add(p.write.chainId);
    return batch;
  }

  #sync(batch: Pending[], started: number, results: WriteResult[]): void {
    // A durability that throws instead of rejecting still answers the batch: thrown from here it would escape the
    // event loop (setImmediate) or a promise callback, and the batch would hold its slot and chains for good.
    let durable: Promise<void>;
    try {
      durable = this.durable();
    } catch (error) {
      this.#failSoon(batch, started, error);
      return;
    }
    durable.then(
      () => this.#end(batch, started, results, undefined),
      (error: unknown) => this.#end(batch, started, undefined, error),
    );
  }

  /**
   * A batch that failed before it reached the disk, answered a microtask later: `#end` starts the next batch before
   * it answers the one just made durable, and a failure thrown at once (SQLite's commit is synchronous) would
   * otherwise refuse a chain's later payment before its earlier one is answered as paid.
   */
  #failSoon(batch: Pending[], started: number, error: unknown): void {
    queueMicrotask(() => this.#end(batch, started, undefined, error));
  }

  #end(batch: Pending[], started: number, results: WriteResult[] | undefined, error: unknown): void {
    this.#inFlight--;
    if (this.maxInFlight > 1) for (const p of batch) this.#chainsInFlight.delete(p.write.chainId);
    // The next batch first (its commit and the start of its fsync), then this one's answers.
    this.#start();
    // Only with an observer: without one a batch's end costs no copy of its writes.
    if (results && this.#observe) {
      try {
        this.#observe(
          batch.map((p) => p.write),
          results,
          (performance.now() - started) / 1000,
        );
      } catch {
        // Metrics never fail a payment that is on disk.
      }
    }
    if (results) for (const [i, p] of batch.entries()) p.resolve(results[i] as WriteResult);
    else for (const p of batch) p.reject(error);
  }
}

/** Entitlements this store committed, remembered per chain up to this many chains (then forgotten at once). */
const KNOWN_ENTITLEMENTS = 10_000;

/**
 * The resource each chain last bought through this store. An entitlement is never deleted, so one committed here
 * exists for good: a payment of the same chain for the same resource (a reader paying per request, the bench's
 * route) skips the entitlement insert. Bounded: past `KNOWN_ENTITLEMENTS` chains it starts empty again, which only
 * costs inserts that find their row.
 */
export class KnownEntitlements {
  #last = new Map<string, string>();

  has(write: PaymentWrite): boolean {
    return this.#last.get(write.chainId) === write.resource;
  }

  /** Remembers the entitlements of committed writes (never of a transaction that may still roll back). */
  remember(writes: Iterable<PaymentWrite>): void {
    for (const w of writes) {
      if (this.#last.size >= KNOWN_ENTITLEMENTS && !this.#last.has(w.chainId)) this.#last.clear();
      this.#last.set(w.chainId, w.resource);
    }
  }
}

/**
 * Consecutive writes of one epoch (each expecting the index the one before it pays) from `from`: the run one
 * compare-and-set can commit, as indexes into the epoch's writes.
 */
export function runEnd(writes: readonly PaymentWrite[], from: number): number {
  let end = from;
  while (end + 1 < writes.length && writes[end + 1]?.expectedLastIndex === writes[end]?.index) end++;
  return end;
}

/**
 * The SQLite commit: the whole batch as one synchronous transaction of cached prepared statements. Writes of one
 * epoch keep their order; each run of consecutive ones is one compare-and-set from the first's expected index to
 * the last's index, so a run commits exactly when each write alone would have. When a run loses, its first write
 * is the conflict and the rest are tried again as a run of their own (another process may have paid that very
 * index), so every write still gets the answer it would have had alone.
 *
 * It shares Kysely's connection: while a Kysely transaction is open (it awaits between statements) the batch
 * waits for it, never nesting inside it.
 */
export function sqliteCommit(
  sqlite: SqliteConnection,
  known: KnownEntitlements,
  /** Throws when nothing may commit any more (a failed fsync): asked right before the transaction, after any wait. */
  writable: () => void = () => {},
): CommitBatch {
  const cas = sqlite.prepare(
    `UPDATE netpay_epoch_heads SET last_index = ?, last_payword = ?, last_resource = ?
     WHERE chain_id = ? AND epoch = ? AND last_index = ? AND released = 0`,
  );
  const journal = sqlite.prepare(
    `INSERT INTO netpay_payment_journal (chain_id, epoch, idx, payword, resource, amount_minor, at_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const entitle = sqlite.prepare(
    'INSERT INTO netpay_entitlements (chain_id, resource, idx, payword) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
  );
  const purchase = sqlite.prepare(
    `INSERT INTO netpay_wallet_purchases (session_hash, resource, chain_id, idx, at_ms) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT DO NOTHING`,
  );
  const spendNote = sqlite.prepare(
    `INSERT INTO netpay_spend_notes (chain_id, idx, amount_minor, description) VALUES (?, ?, ?, ?)
     ON CONFLICT DO NOTHING`,
  );
  const run = sqlite.transaction((batch: PaymentWrite[]): WriteResult[] => {
    const results: WriteResult[] = new Array(batch.length);
    for (const positions of byEpoch(batch)) {
      const writes = positions.map((i) => batch[i] as PaymentWrite);
      const entitled = new Set<string>();
      let from = 0;
      while (from < writes.length) {
        const end = runEnd(writes, from);
        const first = writes[from] as PaymentWrite;
        const tail = writes[end] as PaymentWrite;
        const won =
          cas.run(tail.index, tail.payword, tail.resource, first.chainId, first.epoch, first.expectedLastIndex)
            .changes === 1;
        if (!won) {
          results[positions[from] as number] = 'conflict';
          from += 1;
          continue;
        }
        for (let k = from; k <= end; k++) {
          const w = writes[k] as PaymentWrite;
          journal.run(w.chainId, w.epoch, w.index, w.payword, w.resource, w.amountMinor, w.atMs);
          if (!known.has(w) && !entitled.has(w.resource)) {
            entitle.run(w.chainId, w.resource, w.index, w.payword);
            entitled.add(w.resource);
          }
          if (w.note) {
            purchase.run(w.note.sessionHash, w.resource, w.chainId, w.index, w.atMs);
            spendNote.run(w.chainId, w.index, w.amountMinor, w.note.description);
          }
          results[positions[k] as number] = 'ok';
        }
        from = end + 1;
      }
    }
    return results;
  });
  const commitNow = (batch: PaymentWrite[]): WriteResult[] => {
    writable();
    const results = run.immediate(batch);
    known.remember(batch.filter((_, i) => results[i] === 'ok'));
    return results;
  };
  return (batch) => {
    if (!sqlite.inTransaction) return commitNow(batch);
    return (async () => {
      while (sqlite.inTransaction) await new Promise((resolve) => setImmediate(resolve));
      return commitNow(batch);
    })();
  };
}

/** The positions of a batch's writes grouped by epoch, each group in the order the writes came. */
function byEpoch(batch: readonly PaymentWrite[]): number[][] {
  const groups = new Map<string, number[]>();
  for (const [i, w] of batch.entries()) {
    const key = `${w.epoch}:${w.chainId}`;
    const group = groups.get(key);
    if (group) group.push(i);
    else groups.set(key, [i]);
  }
  return [...groups.values()];
}

/** Reads of what chains bought. */
export class Entitlements {
  readonly #db: StoreContext['db'];

  constructor(context: StoreContext) {
    this.#db = context.db;
  }

  /** The point that first bought `resource` with the chain, if it did. */
  async entitlement(chainId: string, resource: string): Promise<PointRecord | undefined> {
    const row = await this.#db
      .selectFrom('netpay_entitlements')
      .select(['idx', 'payword'])
      .where('chain_id', '=', chainId)
      .where('resource', '=', resource)
      .executeTakeFirst();
    if (!row || row.idx === null || row.payword === null) return undefined;
    return { index: Number(row.idx), payword: row.payword };
  }
}
