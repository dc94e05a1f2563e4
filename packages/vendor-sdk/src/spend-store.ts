import type { HolderCertificate, PreviousHolder, ReleaseStatement, Touchstone } from '@netpay/protocol';
import { type Database, type DatabaseEngine, migrateToLatestRetrying, openDatabase, sql } from '@netpay/service-kit';
import { type Kysely, type Migration, Migrator } from 'kysely';
import { PgSpendJournal } from './pg-spend-journal.ts';

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
 * recorded with group commit: every write that arrives while one transaction is being committed joins the next
 * one, each still compare-and-set on its epoch's last index, so one fsync serves many payments.
 */
export interface SpendStore {
  readonly engine: DatabaseEngine;
  loadChain(
    chainId: string,
  ): Promise<{ chain: ChainRecord; epochs: EpochRecord[]; entitlements: string[] } | undefined>;
  saveChain(chain: ChainRecord): Promise<void>;
  /** Inserts an epoch; false when it already exists (another process claimed first). */
  insertEpoch(epoch: EpochRecord): Promise<boolean>;
  getEpoch(chainId: string, epoch: number): Promise<EpochRecord | undefined>;
  updateLease(chainId: string, epoch: number, holder: HolderCertificate, leaseExpiresAtMs: number): Promise<void>;
  /** Sets a pending epoch's start (and last) once; false when it was already set. */
  setStart(chainId: string, epoch: number, start: PointRecord, startRelease: ReleaseStatement | null): Promise<boolean>;
  /** Records a payment durably; 'ok', or 'conflict' when the epoch's last index was not the expected one. */
  recordPayment(write: PaymentWrite): Promise<'ok' | 'conflict'>;
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
  createBatch(key: string, body: string): Promise<void>;
  pendingBatches(): Promise<BatchRecord[]>;
  completeBatch(key: string, response: string, items: RedeemedItem[]): Promise<void>;
  failBatch(key: string, response: string): Promise<void>;
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
  /** Spend notes of a chain not yet reported, up to `upToIndex`, oldest first (at most 100, as a request takes). */
  unreportedNotes(chainId: string, upToIndex: number): Promise<SpendNoteRecord[]>;
  /** Drops the notes of a chain up to an index the broker has acknowledged. */
  dropNotes(chainId: string, upToIndex: number): Promise<void>;
  close(): Promise<void>;
}

interface ChainsTable {
  chain_id: string;
  touchstone: string;
  unit: number;
  length: number;
  currency: string;
  expires_at_ms: number;
}

interface EpochsTable {
  chain_id: string;
  epoch: number;
  holder: string;
  lease_expires_at_ms: number;
  previous: string | null;
  start_index: number | null;
  start_payword: string | null;
  start_release: string | null;
  start_release_reported: number;
  last_index: number | null;
  last_payword: string | null;
  last_resource: string | null;
  release: string | null;
  superseded: number;
  redeemed_index: number | null;
  redeemed_payword: string | null;
  redeemed_minor: number;
  rejected_minor: number;
}

interface PaymentsTable {
  chain_id: string;
  epoch: number;
  idx: number;
  payword: string;
  resource: string;
  amount_minor: number;
  at_ms: number;
}

interface EntitlementsTable {
  chain_id: string;
  resource: string;
}

interface BatchesTable {
  idempotency_key: string;
  body: string;
  status: string;
  response: string | null;
  created_at_ms: number;
}

interface SessionWalletsTable {
  session_hash: string;
  chain_id: string;
  epoch: number;
  allowance_index: number;
  allowance_payword: string;
  allowance_expires_at_ms: number;
  refresh_token: string;
  balance_minor: number;
  balance_at_ms: number;
  auto_pay_max_minor: number;
  updated_at_ms: number;
}

interface WalletPurchasesTable {
  session_hash: string;
  resource: string;
  chain_id: string;
  idx: number;
  at_ms: number;
}

interface SpendNotesTable {
  chain_id: string;
  idx: number;
  amount_minor: number;
  description: string;
}

interface Schema {
  netpay_chains: ChainsTable;
  netpay_epochs: EpochsTable;
  netpay_payments: PaymentsTable;
  netpay_entitlements: EntitlementsTable;
  netpay_redemption_batches: BatchesTable;
  netpay_session_wallets: SessionWalletsTable;
  netpay_wallet_purchases: WalletPurchasesTable;
  netpay_spend_notes: SpendNotesTable;
}

const migrations: Record<string, Migration> = {
  '001_vendor_spend_store': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('netpay_chains')
        .ifNotExists()
        .addColumn('chain_id', 'text', (c) => c.primaryKey())
        .addColumn('touchstone', 'text', (c) => c.notNull())
        .addColumn('unit', 'bigint', (c) => c.notNull())
        .addColumn('length', 'integer', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('expires_at_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('netpay_epochs')
        .ifNotExists()
        .addColumn('chain_id', 'text', (c) => c.notNull().references('netpay_chains.chain_id'))
        .addColumn('epoch', 'bigint', (c) => c.notNull())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('lease_expires_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('previous', 'text')
        .addColumn('start_index', 'integer')
        .addColumn('start_payword', 'text')
        .addColumn('start_release', 'text')
        .addColumn('last_index', 'integer')
        .addColumn('last_payword', 'text')
        .addColumn('last_resource', 'text')
        .addColumn('release', 'text')
        .addColumn('superseded', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('redeemed_index', 'integer')
        .addColumn('redeemed_payword', 'text')
        .addColumn('redeemed_minor', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('rejected_minor', 'bigint', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('netpay_epochs_pk', ['chain_id', 'epoch'])
        .execute();
      // One row per spent index of a chain, across epochs: an index moves forward at one holder only.
      await db.schema
        .createTable('netpay_payments')
        .ifNotExists()
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('epoch', 'bigint', (c) => c.notNull())
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('payword', 'text', (c) => c.notNull())
        .addColumn('resource', 'text', (c) => c.notNull())
        .addColumn('amount_minor', 'bigint', (c) => c.notNull())
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('netpay_payments_pk', ['chain_id', 'idx'])
        .execute();
      await db.schema
        .createTable('netpay_entitlements')
        .ifNotExists()
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('resource', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('netpay_entitlements_pk', ['chain_id', 'resource'])
        .execute();
      await db.schema
        .createTable('netpay_redemption_batches')
        .ifNotExists()
        .addColumn('idempotency_key', 'text', (c) => c.primaryKey())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('response', 'text')
        .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('netpay_epochs_active')
        .ifNotExists()
        .on('netpay_epochs')
        .columns(['superseded', 'chain_id'])
        .execute();
    },
  },
  '002_server_wallets': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('netpay_server_wallets')
        .ifNotExists()
        .addColumn('session_hash', 'text', (c) => c.primaryKey())
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('seed', 'text', (c) => c.notNull())
        .addColumn('length', 'integer', (c) => c.notNull())
        .addColumn('updated_at_ms', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '003_release_reported': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('netpay_epochs')
        .addColumn('start_release_reported', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
  },
  // §7 v1.1: wallets hold allowances, never seeds. The seed table goes, with every seed in it; those sessions
  // connect again (one click).
  '004_allowance_wallets': {
    async up(db: Kysely<unknown>) {
      await db.schema.dropTable('netpay_server_wallets').ifExists().execute();
      await db.schema
        .createTable('netpay_session_wallets')
        .ifNotExists()
        .addColumn('session_hash', 'text', (c) => c.primaryKey())
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('epoch', 'bigint', (c) => c.notNull())
        .addColumn('allowance_index', 'integer', (c) => c.notNull())
        .addColumn('allowance_payword', 'text', (c) => c.notNull())
        .addColumn('allowance_expires_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('refresh_token', 'text', (c) => c.notNull())
        .addColumn('balance_minor', 'bigint', (c) => c.notNull())
        .addColumn('balance_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('auto_pay_max_minor', 'bigint', (c) => c.notNull())
        .addColumn('updated_at_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('netpay_wallet_purchases')
        .ifNotExists()
        .addColumn('session_hash', 'text', (c) => c.notNull())
        .addColumn('resource', 'text', (c) => c.notNull())
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('netpay_wallet_purchases_pk', ['session_hash', 'resource'])
        .execute();
      await db.schema
        .createTable('netpay_spend_notes')
        .ifNotExists()
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('amount_minor', 'bigint', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('netpay_spend_notes_pk', ['chain_id', 'idx'])
        .execute();
    },
  },
};

function point(index: number | null, payword: string | null): PointRecord | null {
  return index === null || payword === null ? null : { index: Number(index), payword };
}

function json<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

function toEpoch(row: EpochsTable): EpochRecord {
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

function toChain(row: ChainsTable): ChainRecord {
  return {
    chainId: row.chain_id,
    touchstone: JSON.parse(row.touchstone) as Touchstone,
    unit: Number(row.unit),
    length: Number(row.length),
    currency: row.currency,
    expiresAtMs: Number(row.expires_at_ms),
  };
}

interface Pending {
  write: PaymentWrite;
  resolve(result: 'ok' | 'conflict'): void;
  reject(error: unknown): void;
}

type WriteResult = 'ok' | 'conflict';

/** Commits one batch of payment writes in one transaction; each write is compare-and-set on its own. */
type CommitBatch = (batch: PaymentWrite[]) => Promise<WriteResult[]>;

/** The group commit of payments: one transaction per turn of the event loop, each write still CAS-checked. */
class GroupCommitter {
  #queue: Pending[] = [];
  #flushing = false;
  #scheduled = false;
  constructor(private readonly commit: CommitBatch) {}

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
    try {
      const results = await this.commit(batch.map((p) => p.write));
      for (const [i, p] of batch.entries()) p.resolve(results[i] as WriteResult);
    } catch (error) {
      for (const p of batch) p.reject(error);
    } finally {
      this.#flushing = false;
      if (this.#queue.length > 0) this.#schedule();
    }
  }
}

/** The portable batch commit, through Kysely (SQLite when the fast path must wait). */
function kyselyCommit(db: Kysely<Schema>): CommitBatch {
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
function sqliteCommit(sqlite: SQLiteHandle, fallback: CommitBatch): CommitBatch {
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

type SQLiteHandle = NonNullable<Database<Schema>['sqlite']>;

/**
 * Opens the spend store at a database URL (`sqlite:./data/vendor.db`, or `postgres://…`) and runs its migrations.
 *
 * @example
 * const store = await createSpendStore('sqlite:./data/daily-planet.db');
 */
export async function createSpendStore(url: string): Promise<SpendStore> {
  const database: Database<Schema> = openDatabase<Schema>(url);
  await migrateSpendStore(database.db as Kysely<unknown>, database.engine);
  return new KyselySpendStore(database);
}

/**
 * Runs the store's migrations with their own bookkeeping tables, so the SDK can share a database with the app
 * that embeds it. On PostgreSQL the bookkeeping is pinned to the current schema (Kysely otherwise sees migration
 * tables of every schema, and parallel stores in one database break each other).
 */
async function migrateSpendStore(db: Kysely<unknown>, engine: DatabaseEngine): Promise<void> {
  let schema: string | undefined;
  if (engine === 'postgres') {
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
    schema = rows[0]?.schema;
  }
  const migrator = new Migrator({
    db,
    migrationTableName: 'netpay_vendor_migration',
    migrationLockTableName: 'netpay_vendor_migration_lock',
    ...(schema ? { migrationTableSchema: schema } : {}),
    provider: { getMigrations: async () => migrations },
  });
  const { error, results } = await migrateToLatestRetrying(migrator);
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`spend store migration ${failed?.migrationName ?? ''} failed: ${String(error)}`, { cause: error });
  }
}

class KyselySpendStore implements SpendStore {
  readonly engine: DatabaseEngine;
  readonly #db: Kysely<Schema>;
  readonly #database: Database<Schema>;
  readonly #committer: GroupCommitter;
  readonly #journal: PgSpendJournal | undefined;

  constructor(database: Database<Schema>) {
    this.#database = database;
    this.#db = database.db;
    this.engine = database.engine;
    const portable = kyselyCommit(database.db);
    if (database.sqlite) {
      this.#committer = new GroupCommitter(sqliteCommit(database.sqlite, portable));
    } else {
      // PostgreSQL: one statement per batch instead of three awaited queries per payment.
      const journal = new PgSpendJournal(database.url);
      this.#journal = journal;
      this.#committer = new GroupCommitter((batch) => journal.commit(batch));
    }
  }

  async loadChain(chainId: string) {
    const row = await this.#db
      .selectFrom('netpay_chains')
      .selectAll()
      .where('chain_id', '=', chainId)
      .executeTakeFirst();
    if (!row) return undefined;
    const epochs = await this.#db
      .selectFrom('netpay_epochs')
      .selectAll()
      .where('chain_id', '=', chainId)
      .orderBy('epoch')
      .execute();
    const ents = await this.#db
      .selectFrom('netpay_entitlements')
      .select('resource')
      .where('chain_id', '=', chainId)
      .execute();
    return { chain: toChain(row), epochs: epochs.map(toEpoch), entitlements: ents.map((e) => e.resource) };
  }

  async saveChain(chain: ChainRecord): Promise<void> {
    await this.#db
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
      .execute();
  }

  async insertEpoch(e: EpochRecord): Promise<boolean> {
    const result = await this.#db
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
        last_index: e.last?.index ?? null,
        last_payword: e.last?.payword ?? null,
        last_resource: e.lastResource,
        release: e.release ? JSON.stringify(e.release) : null,
        superseded: e.superseded ? 1 : 0,
        redeemed_index: null,
        redeemed_payword: null,
        redeemed_minor: 0,
        rejected_minor: 0,
      })
      .onConflict((oc) => oc.columns(['chain_id', 'epoch']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async getEpoch(chainId: string, epoch: number): Promise<EpochRecord | undefined> {
    const row = await this.#db
      .selectFrom('netpay_epochs')
      .selectAll()
      .where('chain_id', '=', chainId)
      .where('epoch', '=', epoch)
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
    const result = await this.#db
      .updateTable('netpay_epochs')
      .set({
        start_index: start.index,
        start_payword: start.payword,
        start_release: startRelease ? JSON.stringify(startRelease) : null,
        last_index: start.index,
        last_payword: start.payword,
      })
      .where('chain_id', '=', chainId)
      .where('epoch', '=', epoch)
      .where('start_index', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  recordPayment(write: PaymentWrite): Promise<'ok' | 'conflict'> {
    return this.#committer.submit(write);
  }

  async setRelease(chainId: string, epoch: number, release: ReleaseStatement): Promise<ReleaseStatement | undefined> {
    await this.#db
      .updateTable('netpay_epochs')
      .set({ release: JSON.stringify(release) })
      .where('chain_id', '=', chainId)
      .where('epoch', '=', epoch)
      .where('last_index', '=', release.index)
      .where('release', 'is', null)
      .execute();
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
    const rows = await this.#db
      .selectFrom('netpay_epochs')
      .selectAll()
      .where('superseded', '=', 0)
      .where('release', 'is', null)
      .where('start_index', 'is not', null)
      .execute();
    return rows.map(toEpoch);
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

  async getServerWallet(sessionHash: string): Promise<ServerWalletRecord | undefined> {
    const row = await this.#db
      .selectFrom('netpay_session_wallets')
      .selectAll()
      .where('session_hash', '=', sessionHash)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      sessionHash: row.session_hash,
      chainId: row.chain_id,
      epoch: Number(row.epoch),
      allowance: {
        index: Number(row.allowance_index),
        payword: row.allowance_payword,
        expiresAtMs: Number(row.allowance_expires_at_ms),
      },
      refreshTokenSealed: row.refresh_token,
      balanceMinor: Number(row.balance_minor),
      balanceAtMs: Number(row.balance_at_ms),
      autoPayMaxMinor: Number(row.auto_pay_max_minor),
      updatedAtMs: Number(row.updated_at_ms),
    };
  }

  async putServerWallet(record: ServerWalletRecord): Promise<void> {
    const values = {
      session_hash: record.sessionHash,
      chain_id: record.chainId,
      epoch: record.epoch,
      allowance_index: record.allowance.index,
      allowance_payword: record.allowance.payword,
      allowance_expires_at_ms: record.allowance.expiresAtMs,
      refresh_token: record.refreshTokenSealed,
      balance_minor: record.balanceMinor,
      balance_at_ms: record.balanceAtMs,
      auto_pay_max_minor: record.autoPayMaxMinor,
      updated_at_ms: record.updatedAtMs,
    };
    const { session_hash: _key, ...update } = values;
    await this.#db
      .insertInto('netpay_session_wallets')
      .values(values)
      .onConflict((oc) => oc.column('session_hash').doUpdateSet(update))
      .execute();
  }

  async deleteServerWallet(sessionHash: string): Promise<void> {
    await this.#db.deleteFrom('netpay_session_wallets').where('session_hash', '=', sessionHash).execute();
  }

  async recordWalletPurchase(p: WalletPurchase): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await trx
        .insertInto('netpay_wallet_purchases')
        .values({ session_hash: p.sessionHash, resource: p.resource, chain_id: p.chainId, idx: p.index, at_ms: p.atMs })
        .onConflict((oc) => oc.columns(['session_hash', 'resource']).doNothing())
        .execute();
      await trx
        .insertInto('netpay_spend_notes')
        .values({ chain_id: p.chainId, idx: p.index, amount_minor: p.amountMinor, description: p.description })
        .onConflict((oc) => oc.columns(['chain_id', 'idx']).doNothing())
        .execute();
    });
  }

  async walletPurchases(sessionHash: string) {
    const rows = await this.#db
      .selectFrom('netpay_wallet_purchases')
      .select(['resource', 'chain_id', 'idx'])
      .where('session_hash', '=', sessionHash)
      .execute();
    return rows.map((r) => ({ resource: r.resource, chainId: r.chain_id, index: Number(r.idx) }));
  }

  async unreportedNotes(chainId: string, upToIndex: number): Promise<SpendNoteRecord[]> {
    const rows = await this.#db
      .selectFrom('netpay_spend_notes')
      .selectAll()
      .where('chain_id', '=', chainId)
      .where('idx', '<=', upToIndex)
      .orderBy('idx')
      .limit(100)
      .execute();
    return rows.map((r) => ({ index: Number(r.idx), amount: Number(r.amount_minor), description: r.description }));
  }

  async dropNotes(chainId: string, upToIndex: number): Promise<void> {
    await this.#db
      .deleteFrom('netpay_spend_notes')
      .where('chain_id', '=', chainId)
      .where('idx', '<=', upToIndex)
      .execute();
  }

  async close(): Promise<void> {
    await this.#journal?.close();
    await this.#database.close();
  }
}
