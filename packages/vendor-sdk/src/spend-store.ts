import type { HolderCertificate, PreviousHolder, ReleaseStatement, Touchstone } from '@netpay/protocol';
import { type Database, type DatabaseEngine, openDatabase, type SqliteConnection, sql } from '@netpay/service-kit';
import type { Kysely } from 'kysely';
import { HolderEpochs } from './holder-epochs.ts';
import { Entitlements, GroupCommitter, KnownEntitlements, sqliteCommit, type WriteResult } from './payment-journal.ts';
import { PG_BATCHES_IN_FLIGHT, PG_CUT_BATCH_AT, PgSpendJournal } from './pg-spend-journal.ts';
import { RedemptionBatches } from './redemption-batches.ts';
import { SessionWallets } from './session-wallets.ts';
import { migrateSpendStore, type Schema } from './spend-store-schema.ts';
import { WalCheckpointer } from './wal-checkpointer.ts';
import {
  DEFAULT_FSYNC_POLICY,
  type Disk,
  type Durability,
  type FsyncPolicy,
  fsyncPlaceOf,
  nodeDisk,
  WAIT_FOR_COMMIT,
  WalDurability,
} from './wal-durability.ts';

/** The durable state of one chain at this vendor (what the touchstone says). */
export interface ChainRecord {
  chainId: string;
  touchstone: Touchstone;
  unit: number;
  length: number;
  currency: string;
  expiresAtMs: number;
}

/** A chain point in wire form. */
export interface PointRecord {
  index: number;
  payword: string;
}

/**
 * One holder epoch of a chain at this vendor. `start` is null while the vendor still has to obtain its
 * predecessor's release; `last` then equals `start` until the first payment.
 */
export interface EpochRecord {
  chainId: string;
  epoch: number;
  holder: HolderCertificate;
  leaseExpiresAtMs: number;
  previous: PreviousHolder | null;
  start: PointRecord | null;
  /** The release this epoch started from, carried in its first redemption. */
  startRelease: ReleaseStatement | null;
  /**
   * §5 v1.1: the broker has been told `startRelease` (a checkpoint carrying it was answered). Until then every
   * checkpoint of the epoch carries it, so a restart still reports it.
   */
  releaseReported: boolean;
  last: PointRecord | null;
  lastResource: string | null;
  release: ReleaseStatement | null;
  /** A later claim took the chain without a release from this vendor (forced, or after a lost lease). */
  superseded: boolean;
  redeemed: PointRecord | null;
  redeemedMinor: number;
  rejectedMinor: number;
}

/** A payment to record with compare-and-set on the epoch's last index. */
export interface PaymentWrite {
  chainId: string;
  epoch: number;
  expectedLastIndex: number;
  index: number;
  payword: string;
  resource: string;
  amountMinor: number;
  atMs: number;
  /**
   * A server-side wallet's payment carries its session's purchase note, committed in the payment's own transaction
   * and only when its compare-and-set wins: a sale is never on record without the note that keeps the session from
   * paying for the resource again on another chain.
   */
  note?: PurchaseNote;
}

/** What a server-side wallet's payment writes besides itself: the session's purchase and the broker's spend note. */
export interface PurchaseNote {
  sessionHash: string;
  /** What was sold, for the customer's history (the article's title). */
  description: string;
}

/** A redemption batch: its idempotency key and body are stored before they are sent. */
export interface BatchRecord {
  key: string;
  body: string;
  status: 'pending' | 'done' | 'failed';
  response: string | null;
}

/** A redeemed range's outcome, written with its batch. */
export interface RedeemedItem {
  chainId: string;
  epoch: number;
  to: PointRecord;
  status: 'accepted' | 'rejected';
  amountMinor: number;
}

/**
 * A server-side wallet (§7 v1.1 connect): what a browser's anonymous session holds, found by a hash of the session
 * id (the store never sees the cookie itself). No seed: an allowance w_a on the connection's current chain, from
 * which the vendor derives every payword it may spend, and the refresh token that asks for the next one (sealed;
 * only the vendor's own key opens it).
 */
export interface ServerWalletRecord {
  sessionHash: string;
  chainId: string;
  epoch: number;
  allowance: { index: number; payword: string; expiresAtMs: number };
  /** The connection's refresh token, sealed with a key derived from the vendor's signing key. */
  refreshTokenSealed: string;
  /** The customer's NetPay balance in the broker's last answer, and when that answer came. */
  balanceMinor: number;
  balanceAtMs: number;
  /** Prices up to this are paid without asking (the customer's setting, from the broker). */
  autoPayMaxMinor: number;
  updatedAtMs: number;
}

/** A sale from a server-side wallet: the session's entitlement and the note the broker's history will show. */
export interface WalletPurchase {
  sessionHash: string;
  resource: string;
  chainId: string;
  index: number;
  amountMinor: number;
  /** What was sold, for the customer's history (the article's title). */
  description: string;
  atMs: number;
}

/** A spend note not yet reported to the broker (§7 v1.1 `notes`). */
export interface SpendNoteRecord {
  index: number;
  amount: number;
  description: string;
}

/** Local totals for `account()`. */
export interface SpendTotals {
  earned: number;
  pending: number;
  redeemed: number;
  rejected: number;
}

/**
 * The vendor's durable memory: chains, epochs, payments, entitlements and redemption batches. Payments are
 * recorded with group commit: every write that arrives while one transaction is being committed (and made durable)
 * joins the next one, each still compare-and-set on its epoch's last index, so one fsync serves many payments.
 * Every mutating method resolves only once its write is on disk; a read may see a write whose fsync still runs.
 */
export interface SpendStore {
  readonly engine: DatabaseEngine;
  loadChain(
    chainId: string,
  ): Promise<{ chain: ChainRecord; epochs: EpochRecord[]; entitlements: string[] } | undefined>;
  saveChain(chain: ChainRecord): Promise<void>;
  /** Inserts an epoch; false when it already exists (another process claimed first). */
  insertEpoch(epoch: EpochRecord): Promise<boolean>;
  /**
   * Saves a chain never stored here with its first epoch, in one commit (a reader's first payment waits for one
   * fsync fewer); false, with nothing written, when the chain is stored already.
   */
  insertFirstEpoch(chain: ChainRecord, epoch: EpochRecord): Promise<boolean>;
  getEpoch(chainId: string, epoch: number): Promise<EpochRecord | undefined>;
  updateLease(chainId: string, epoch: number, holder: HolderCertificate, leaseExpiresAtMs: number): Promise<void>;
  /** Sets a pending epoch's start (and last) once; false when it was already set. */
  setStart(chainId: string, epoch: number, start: PointRecord, startRelease: ReleaseStatement | null): Promise<boolean>;
  /** Records a payment durably; 'ok', or 'conflict' when the epoch's last index was not the expected one. */
  recordPayment(write: PaymentWrite): Promise<'ok' | 'conflict'>;
  /**
   * The point that first bought `resource` with the chain (recorded with that payment), or undefined when the chain
   * never bought it here. One indexed read, for a re-read the vendor no longer has in memory.
   */
  entitlement(chainId: string, resource: string): Promise<PointRecord | undefined>;
  /**
   * Stores the epoch's release once, only while the epoch's durable last index is the one it signs, and returns
   * the stored release (the first writer wins); undefined when another process advanced the epoch meanwhile (sign
   * again at the new last index).
   */
  setRelease(chainId: string, epoch: number, release: ReleaseStatement): Promise<ReleaseStatement | undefined>;
  markSuperseded(chainId: string, epoch: number): Promise<void>;
  /** Notes that the broker was told the epoch's start release (accepted, or refused for good). */
  markReleaseReported(chainId: string, epoch: number): Promise<void>;
  /** Epochs that are neither released nor superseded (lease renewal). */
  activeEpochs(): Promise<EpochRecord[]>;
  /** Epochs with spent units not yet redeemed, with their chains. */
  redeemable(): Promise<{ chain: ChainRecord; epoch: EpochRecord }[]>;
  /**
   * Takes the lock of a job one process of a vendor fleet runs at a time (the redemption run) for `holder` until
   * `untilMs`, or keeps it; false while another holder has it.
   */
  claimJob(name: string, holder: string, nowMs: number, untilMs: number): Promise<boolean>;
  /** Lets a job's lock go if `holder` has it. */
  releaseJob(name: string, holder: string): Promise<void>;
  createBatch(key: string, body: string): Promise<void>;
  pendingBatches(): Promise<BatchRecord[]>;
  completeBatch(key: string, response: string, items: RedeemedItem[]): Promise<void>;
  failBatch(key: string, response: string): Promise<void>;
  /**
   * Deletes the payment journal's rows of settled redemption ranges (at or below each epoch's redeemed point);
   * returns how many. The redemption job runs it after each run.
   */
  pruneJournal(): Promise<number>;
  /** Earned, pending, redeemed and rejected, from the epochs alone (never a sum over the payment journal). */
  totals(): Promise<SpendTotals>;
  /** The wallet of a session (by the hash of its id), one indexed read. */
  getServerWallet(sessionHash: string): Promise<ServerWalletRecord | undefined>;
  /** Attaches (or replaces) a session's wallet. */
  putServerWallet(record: ServerWalletRecord): Promise<void>;
  /** Forgets a session's wallet (its connection was revoked); what the session bought stays its own. */
  deleteServerWallet(sessionHash: string): Promise<void>;
  /** Records a sale from a session's wallet: its entitlement, and the spend note for the broker. */
  recordWalletPurchase(purchase: WalletPurchase): Promise<void>;
  /** What a session bought with its wallets: each resource with the chain and index that paid it. */
  walletPurchases(sessionHash: string): Promise<{ resource: string; chainId: string; index: number }[]>;
  /**
   * Gives a session (`to`) what another bought (`from`), for its re-reads; spend notes are not touched (each sale
   * is reported once). A connect moves the browser to a new session id and keeps what it had bought.
   */
  copyWalletPurchases(from: string, to: string): Promise<void>;
  /** Spend notes of a chain not yet reported, up to `upToIndex`, oldest first (at most 100, as a request takes). */
  unreportedNotes(chainId: string, upToIndex: number): Promise<SpendNoteRecord[]>;
  /** Drops the notes of a chain up to an index the broker has acknowledged. */
  dropNotes(chainId: string, upToIndex: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * What the store tells an operator's metrics as it works. Called on the event loop where the work ends; each method
 * only counts (a throw is caught and dropped: metrics never fail a payment).
 */
export interface SpendStoreObserver {
  /**
   * One group commit of payments, durable: each write with its result (`ok` committed and charged, `conflict` not),
   * and the seconds from the start of its commit to durable.
   */
  committed?(writes: readonly PaymentWrite[], results: readonly WriteResult[], seconds: number): void;
  /** One fsync of the SQLite WAL: where it ran (the event loop or the threadpool) and how long it took. */
  fsynced?(place: 'loop' | 'threadpool', seconds: number): void;
}

/** How the store is opened; the defaults are what production uses. */
export interface SpendStoreOptions {
  /** Hears of commits and fsyncs, for metrics. */
  observer?: SpendStoreObserver;
  /** The disk the SQLite WAL is fsynced through (a test slows it down or watches it). */
  disk?: Disk;
  /**
   * Where the SQLite WAL's fsyncs run and what counts as fast (`wal-durability.ts`); the place defaults to
   * NETPAY_SQLITE_FSYNC (`auto`, `loop` or `threadpool`), `auto` when unset.
   */
  fsync?: Partial<FsyncPolicy>;
  /** At most how often the SQLite checkpoint worker is asked to checkpoint while writes go on. */
  checkpointIntervalMs?: number;
  /** Frames in the SQLite WAL past which a payment batch waits for a complete checkpoint (the WAL restarts). */
  walRestartFrames?: number;
}

/**
 * Opens the spend store at a database URL (`sqlite:./data/vendor.db`, or `postgres://…`) and runs its migrations.
 *
 * SQLite commits are made durable by the store (`wal-durability.ts`): the database runs with `synchronous = NORMAL`
 * and the store fsyncs the WAL before any write resolves, once for each group of commits: on the event loop while
 * the disk's fsyncs are fast, on libuv's threadpool when they are not (NETPAY_SQLITE_FSYNC). NETPAY_SQLITE_SYNCHRONOUS
 * set to FULL or EXTRA makes SQLite fsync inside each commit instead, on the event loop (the old way, for the bench
 * to compare); set to NORMAL nothing is fsynced at all (safe from a process crash, not from a power cut: only to
 * measure what durability costs).
 *
 * @example
 * const store = await createSpendStore('sqlite:./data/daily-planet.db');
 */
export async function createSpendStore(url: string, options: SpendStoreOptions = {}): Promise<SpendStore> {
  const database: Database<Schema> = openDatabase<Schema>(url);
  try {
    await migrateSpendStore(database.db as Kysely<unknown>, database.engine);
    const durability = await durabilityOf(database, options);
    return new KyselySpendStore(database, durability, options.observer);
  } catch (error) {
    await database.close();
    throw error;
  }
}

/**
 * The SQLite database's stamp, for reads that need no fsync of their own: this connection's total changes and the
 * data version, which moves when another connection (another process on the file) commits. Undefined while a
 * transaction is open here: changes it counts are not committed yet, and their commit would not move the stamp.
 */
function databaseStamp(sqlite: SqliteConnection): () => string | undefined {
  const changes = sqlite.prepare('SELECT total_changes() AS n');
  const version = sqlite.prepare('PRAGMA data_version');
  return () => {
    if (sqlite.inTransaction) return undefined;
    const n = (changes.get() as { n: number }).n;
    const v = (version.get() as { data_version: number }).data_version;
    return `${n}:${v}`;
  };
}

async function durabilityOf(database: Database<Schema>, options: SpendStoreOptions): Promise<Durability> {
  // PostgreSQL's commit is durable when it returns; so is SQLite's when the operator chose its synchronous mode.
  if (!database.sqlite || process.env.NETPAY_SQLITE_SYNCHRONOUS !== undefined) return WAIT_FOR_COMMIT;
  const path = database.url.startsWith('sqlite:') ? database.url.slice('sqlite:'.length) : database.url;
  if (path === ':memory:') return WAIT_FOR_COMMIT;
  const policy: FsyncPolicy = {
    ...DEFAULT_FSYNC_POLICY,
    place: fsyncPlaceOf(process.env.NETPAY_SQLITE_FSYNC),
    ...options.fsync,
  };
  const pragma = async (statement: string) => {
    await sql.raw(statement).execute(database.db);
  };
  await pragma('PRAGMA synchronous = NORMAL');
  const checkpointer = await WalCheckpointer.start(
    path,
    pragma,
    options.checkpointIntervalMs,
    options.walRestartFrames,
  );
  try {
    const wal = await WalDurability.open(path, {
      disk: options.disk ?? nodeDisk,
      synced: () => checkpointer.written(),
      policy,
      // WalDurability drops what it throws.
      fsynced: options.observer?.fsynced?.bind(options.observer),
      stamp: databaseStamp(database.sqlite),
    });
    return {
      durable: () => wal.durable(),
      durableRead: () => wal.durableRead(),
      writable: () => wal.writable(),
      readable: () => wal.readable(),
      beforeCommit: () => checkpointer.beforeCommit(),
      async close() {
        await wal.close();
        await checkpointer.close();
      },
    };
  } catch (error) {
    await checkpointer.close();
    throw error;
  }
}

/** The store as one object over its parts, each the records of one part of the protocol. */
class KyselySpendStore implements SpendStore {
  readonly engine: DatabaseEngine;
  readonly #database: Database<Schema>;
  readonly #epochs: HolderEpochs;
  readonly #redemption: RedemptionBatches;
  readonly #wallets: SessionWallets;
  readonly #entitlements: Entitlements;
  readonly #committer: GroupCommitter;
  readonly #journal: PgSpendJournal | undefined;
  readonly #durability: Durability;

  constructor(database: Database<Schema>, durability: Durability, observer: SpendStoreObserver | undefined) {
    this.#database = database;
    this.#durability = durability;
    this.engine = database.engine;
    const context = { db: database.db, engine: database.engine };
    this.#epochs = new HolderEpochs(context);
    this.#redemption = new RedemptionBatches(context);
    this.#wallets = new SessionWallets(context);
    this.#entitlements = new Entitlements(context);
    const known = new KnownEntitlements();
    // The committer drops what the observer throws.
    const committed = observer?.committed?.bind(observer);
    if (database.sqlite) {
      // The store is asked whether it may still write right before each transaction, after any wait for a
      // checkpoint or for a Kysely transaction on the shared connection (an fsync may fail meanwhile).
      const commit = sqliteCommit(database.sqlite, known, () => durability.writable());
      this.#committer = new GroupCommitter(
        (batch) => {
          // Synchronous unless the WAL must be checkpointed first, so the batch's fsync can start at once.
          const checkpoint = durability.beforeCommit?.();
          return checkpoint ? checkpoint.then(() => commit(batch)) : commit(batch);
        },
        () => durability.durable(),
        { observe: committed },
      );
    } else {
      // PostgreSQL: one statement per batch instead of three awaited queries per payment.
      const journal = new PgSpendJournal(database.url, known);
      this.#journal = journal;
      this.#committer = new GroupCommitter(
        (batch) => journal.commit(batch),
        () => durability.durable(),
        { maxInFlight: PG_BATCHES_IN_FLIGHT, cutAt: PG_CUT_BATCH_AT, observe: committed },
      );
    }
  }

  loadChain(chainId: string) {
    return this.#read(() => this.#epochs.loadChain(chainId));
  }
  saveChain(chain: ChainRecord) {
    return this.#written(() => this.#epochs.saveChain(chain));
  }
  insertEpoch(epoch: EpochRecord) {
    return this.#written(() => this.#epochs.insertEpoch(epoch));
  }
  insertFirstEpoch(chain: ChainRecord, epoch: EpochRecord) {
    return this.#written(() => this.#epochs.insertFirstEpoch(chain, epoch));
  }
  getEpoch(chainId: string, epoch: number) {
    return this.#read(() => this.#epochs.getEpoch(chainId, epoch));
  }
  updateLease(chainId: string, epoch: number, holder: HolderCertificate, leaseExpiresAtMs: number) {
    return this.#written(() => this.#epochs.updateLease(chainId, epoch, holder, leaseExpiresAtMs));
  }
  setStart(chainId: string, epoch: number, start: PointRecord, startRelease: ReleaseStatement | null) {
    return this.#written(() => this.#epochs.setStart(chainId, epoch, start, startRelease));
  }
  recordPayment(write: PaymentWrite): Promise<'ok' | 'conflict'> {
    return this.#committer.submit(write);
  }
  entitlement(chainId: string, resource: string) {
    return this.#read(() => this.#entitlements.entitlement(chainId, resource));
  }
  setRelease(chainId: string, epoch: number, release: ReleaseStatement) {
    return this.#written(() => this.#epochs.setRelease(chainId, epoch, release));
  }
  markSuperseded(chainId: string, epoch: number) {
    return this.#written(() => this.#epochs.markSuperseded(chainId, epoch));
  }
  markReleaseReported(chainId: string, epoch: number) {
    return this.#written(() => this.#epochs.markReleaseReported(chainId, epoch));
  }
  activeEpochs() {
    return this.#read(() => this.#epochs.activeEpochs());
  }
  redeemable() {
    return this.#read(() => this.#redemption.redeemable());
  }
  claimJob(name: string, holder: string, nowMs: number, untilMs: number) {
    return this.#written(() => this.#redemption.claimJob(name, holder, nowMs, untilMs));
  }
  releaseJob(name: string, holder: string) {
    return this.#written(() => this.#redemption.releaseJob(name, holder));
  }
  createBatch(key: string, body: string) {
    return this.#written(() => this.#redemption.createBatch(key, body));
  }
  pendingBatches() {
    return this.#read(() => this.#redemption.pendingBatches());
  }
  completeBatch(key: string, response: string, items: RedeemedItem[]) {
    return this.#written(() => this.#redemption.completeBatch(key, response, items));
  }
  failBatch(key: string, response: string) {
    return this.#written(() => this.#redemption.failBatch(key, response));
  }
  pruneJournal() {
    return this.#written(() => this.#redemption.pruneJournal());
  }
  totals() {
    return this.#read(() => this.#redemption.totals());
  }
  getServerWallet(sessionHash: string) {
    return this.#read(() => this.#wallets.getServerWallet(sessionHash));
  }
  putServerWallet(record: ServerWalletRecord) {
    return this.#written(() => this.#wallets.putServerWallet(record));
  }
  deleteServerWallet(sessionHash: string) {
    return this.#written(() => this.#wallets.deleteServerWallet(sessionHash));
  }
  recordWalletPurchase(purchase: WalletPurchase) {
    return this.#written(() => this.#wallets.recordWalletPurchase(purchase));
  }
  walletPurchases(sessionHash: string) {
    return this.#read(() => this.#wallets.walletPurchases(sessionHash));
  }
  copyWalletPurchases(from: string, to: string) {
    return this.#written(() => this.#wallets.copyWalletPurchases(from, to));
  }
  unreportedNotes(chainId: string, upToIndex: number) {
    return this.#read(() => this.#wallets.unreportedNotes(chainId, upToIndex));
  }
  dropNotes(chainId: string, upToIndex: number) {
    return this.#written(() => this.#wallets.dropNotes(chainId, upToIndex));
  }

  /**
   * Every read resolves only once what it read is durable: it may hold a commit whose fsync is still running (a
   * batch committed while the one before it was answered, or another process's on the same file), and what a read
   * decides must not rest on a commit a power cut or a failed fsync could take back: a retry served free, a purchase
   * served again, a checkpoint or a release the broker would take, a range redeemed. An fsync that began after the
   * read covers every commit it saw (the -wal file is one file, whichever process wrote it). The reads are off the
   * payment's path (a chain or a session not in memory, an entitlement bought long ago, the jobs): each costs an
   * fdatasync on the loop when the disk is fast, or joins the next round of the threadpool's. On PostgreSQL what a
   * read sees is committed, so durable, already. After a failed fsync nothing is read at all
   * (`Durability.readable` throws before any query).
   */
  async #read<T>(read: () => Promise<T>): Promise<T> {
    this.#durability.readable?.();
    const result = await read();
    const durability = this.#durability;
    await (durability.durableRead ? durability.durableRead() : durability.durable());
    return result;
  }

  /** Every mutating method resolves only once its write is durable, whether or not it changed a row. */
  async #written<T>(write: () => Promise<T>): Promise<T> {
    this.#durability.writable();
    const result = await write();
    await this.#durability.durable();
    return result;
  }

  async close(): Promise<void> {
    await this.#journal?.close();
    await this.#durability.close();
    await this.#database.close();
  }
}
