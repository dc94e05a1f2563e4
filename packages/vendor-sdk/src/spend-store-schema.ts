import { type DatabaseEngine, migrateToLatestRetrying, sql } from '@netpay/service-kit';
import { type Kysely, type Migration, Migrator } from 'kysely';

// The spend store's tables and their migrations, one list for both engines. Each part of the store (holder epochs,
// the payment journal, redemption batches, session wallets) reads and writes its own tables through `Schema`.

export interface ChainsTable {
  chain_id: string;
  touchstone: string;
  unit: number;
  length: number;
  currency: string;
  expires_at_ms: number;
}

export interface EpochsTable {
  chain_id: string;
  epoch: number;
  holder: string;
  lease_expires_at_ms: number;
  previous: string | null;
  start_index: number | null;
  start_payword: string | null;
  start_release: string | null;
  start_release_reported: number;
  release: string | null;
  superseded: number;
  redeemed_index: number | null;
  redeemed_payword: string | null;
  redeemed_minor: number;
  rejected_minor: number;
}

/**
 * The head of an epoch: the last point paid, the resource it paid for, and whether the holder's release is stored
 * (1 once `netpay_epochs.release` is, in the same transaction). The payment's compare-and-set is on this row alone:
 * a narrow row many of which share a page, so a batch of payments rewrites a few pages instead of one wide epoch
 * row (holder certificate, releases) per chain.
 */
export interface EpochHeadsTable {
  chain_id: string;
  epoch: number;
  last_index: number | null;
  last_payword: string | null;
  last_resource: string | null;
  released: number;
}

/** An epoch row with its head, as every read of an epoch's state has it. */
export type EpochWithHead = EpochsTable & Pick<EpochHeadsTable, 'last_index' | 'last_payword' | 'last_resource'>;

/**
 * The payment journal: one row per payment, appended and never looked up by key (SQLite keys it by rowid alone), so
 * recording a payment touches the end of one table instead of a random page of an index. Nothing on the paid path
 * reads it: the epoch row holds the chain's state, `netpay_entitlements` what each chain bought, and totals come
 * from the epochs. Rows of settled redemption ranges are deleted (`RedemptionBatches.pruneJournal`).
 */
export interface PaymentJournalTable {
  chain_id: string;
  epoch: number;
  idx: number;
  payword: string;
  resource: string;
  amount_minor: number;
  at_ms: number;
}

/** What each chain bought here, with the point that bought it first (null only for a row older than that). */
export interface EntitlementsTable {
  chain_id: string;
  resource: string;
  idx: number | null;
  payword: string | null;
}

export interface BatchesTable {
  idempotency_key: string;
  body: string;
  status: string;
  response: string | null;
  created_at_ms: number;
}

export interface SessionWalletsTable {
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

export interface WalletPurchasesTable {
  session_hash: string;
  resource: string;
  chain_id: string;
  idx: number;
  at_ms: number;
}

export interface SpendNotesTable {
  chain_id: string;
  idx: number;
  amount_minor: number;
  description: string;
}

/** A job that one process of a vendor fleet runs at a time (the redemption run), held until `expires_at_ms`. */
export interface JobLocksTable {
  name: string;
  holder: string;
  expires_at_ms: number;
}

export interface Schema {
  netpay_job_locks: JobLocksTable;
  netpay_chains: ChainsTable;
  netpay_epochs: EpochsTable;
  netpay_epoch_heads: EpochHeadsTable;
  netpay_payment_journal: PaymentJournalTable;
  netpay_entitlements: EntitlementsTable;
  netpay_redemption_batches: BatchesTable;
  netpay_session_wallets: SessionWalletsTable;
  netpay_wallet_purchases: WalletPurchasesTable;
  netpay_spend_notes: SpendNotesTable;
}

/** The store's migrations in order, by name. */
export const migrations: Record<string, Migration> = {
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
  // A payment was three index updates (the epoch, a (chain_id, idx) key of the journal, the entitlement): the
  // journal's key was most of SQLite's cost per payment and nothing looks a payment up by it. The journal becomes
  // append-only; entitlements learn the point that bought them, from the journal they had until now.
  '005_append_only_journal': {
    async up(db: Kysely<unknown>) {
      // PostgreSQL runs a migration in a transaction; SQLite does not (Kysely has no transactional DDL there), and a
      // process stopped while this copies a large journal left part of it done. So on SQLite it runs in a
      // transaction of its own, does nothing when the old table is gone (done, not yet recorded), and repeats what
      // a stopped run did (the journal is written by nothing else before this migration is recorded).
      const ownTransaction = !db.getExecutor().adapter.supportsTransactionalDdl;
      if (!ownTransaction) return appendOnlyJournal(db, false);
      await sql`BEGIN IMMEDIATE`.execute(db);
      try {
        const { rows } =
          await sql`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'netpay_payments'`.execute(db);
        if (rows.length > 0) await appendOnlyJournal(db, true);
        await sql`COMMIT`.execute(db);
      } catch (error) {
        await sql`ROLLBACK`.execute(db);
        throw error;
      }
    },
  },
  // A payment rewrote its epoch's whole row (holder certificate, start release, release: hundreds of bytes), so a
  // batch of payments on n chains wrote about n pages to the WAL. The columns a payment changes move to a narrow
  // table of their own (measured: SQLite's and the fsync's CPU per payment 12.5-13.9 -> 7.2-7.4 µs).
  // Vendor fleets: two processes redeeming the same epochs at once each recorded the other's ranges as refused, so
  // the vendor's own books overstated what the broker refused (the broker paid each unit once all the same).
  '007_job_locks': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('netpay_job_locks')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('expires_at_ms', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '006_epoch_heads': {
    async up(db: Kysely<unknown>) {
      // As in 005: SQLite runs it in a transaction of its own, and a run whose work committed but was not recorded
      // finds the epochs without their last columns and does nothing.
      if (db.getExecutor().adapter.supportsTransactionalDdl) {
        // A process still on the old code (a rolling upgrade) could commit a payment to the epoch row between the
        // copy and the drop, a payment the head would never see: its writes wait for this transaction instead, then
        // fail on the dropped columns (refused, never lost).
        await sql`LOCK TABLE netpay_epochs IN SHARE ROW EXCLUSIVE MODE`.execute(db);
        return epochHeads(db);
      }
      await sql`BEGIN IMMEDIATE`.execute(db);
      try {
        const { rows } = await sql<{ name: string }>`
          SELECT name FROM pragma_table_info('netpay_epochs') WHERE name = 'last_index'`.execute(db);
        if (rows.length > 0) await epochHeads(db);
        await sql`COMMIT`.execute(db);
      } catch (error) {
        await sql`ROLLBACK`.execute(db);
        throw error;
      }
    },
  },
};

/** Migration 006: every epoch's head from its row, then the columns leave the epoch row. */
async function epochHeads(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('netpay_epoch_heads')
    .addColumn('chain_id', 'text', (c) => c.notNull())
    .addColumn('epoch', 'bigint', (c) => c.notNull())
    .addColumn('last_index', 'integer')
    .addColumn('last_payword', 'text')
    .addColumn('last_resource', 'text')
    .addColumn('released', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('netpay_epoch_heads_pk', ['chain_id', 'epoch'])
    .execute();
  await sql`INSERT INTO netpay_epoch_heads (chain_id, epoch, last_index, last_payword, last_resource, released)
      SELECT chain_id, epoch, last_index, last_payword, last_resource, CASE WHEN release IS NULL THEN 0 ELSE 1 END
        FROM netpay_epochs`.execute(db);
  for (const column of ['last_index', 'last_payword', 'last_resource']) {
    await db.schema.alterTable('netpay_epochs').dropColumn(column).execute();
  }
}

/** Migration 005; `again` on SQLite, where an earlier run may have stopped part way. */
async function appendOnlyJournal(db: Kysely<unknown>, again: boolean): Promise<void> {
  await db.schema
    .createTable('netpay_payment_journal')
    .ifNotExists()
    .addColumn('chain_id', 'text', (c) => c.notNull())
    .addColumn('epoch', 'bigint', (c) => c.notNull())
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('payword', 'text', (c) => c.notNull())
    .addColumn('resource', 'text', (c) => c.notNull())
    .addColumn('amount_minor', 'bigint', (c) => c.notNull())
    .addColumn('at_ms', 'bigint', (c) => c.notNull())
    .execute();
  if (again) await sql`DELETE FROM netpay_payment_journal`.execute(db);
  await sql`INSERT INTO netpay_payment_journal (chain_id, epoch, idx, payword, resource, amount_minor, at_ms)
      SELECT chain_id, epoch, idx, payword, resource, amount_minor, at_ms FROM netpay_payments
      ORDER BY at_ms, chain_id, idx`.execute(db);
  const { rows: columns } = again
    ? await sql<{ name: string }>`SELECT name FROM pragma_table_info('netpay_entitlements')`.execute(db)
    : { rows: [] };
  const has = (name: string) => columns.some((c) => c.name === name);
  if (!has('idx')) await db.schema.alterTable('netpay_entitlements').addColumn('idx', 'integer').execute();
  if (!has('payword')) await db.schema.alterTable('netpay_entitlements').addColumn('payword', 'text').execute();
  await sql`UPDATE netpay_entitlements SET
        idx = (SELECT MIN(p.idx) FROM netpay_payments p
                WHERE p.chain_id = netpay_entitlements.chain_id AND p.resource = netpay_entitlements.resource),
        payword = (SELECT p.payword FROM netpay_payments p
                    WHERE p.chain_id = netpay_entitlements.chain_id AND p.resource = netpay_entitlements.resource
                    ORDER BY p.idx LIMIT 1)`.execute(db);
  await db.schema.dropTable('netpay_payments').execute();
}

/**
 * Runs the store's migrations with their own bookkeeping tables, so the SDK can share a database with the app
 * that embeds it. On PostgreSQL the bookkeeping is pinned to the current schema (Kysely otherwise sees migration
 * tables of every schema, and parallel stores in one database break each other).
 */
export async function migrateSpendStore(
  db: Kysely<unknown>,
  engine: DatabaseEngine,
  list: Record<string, Migration> = migrations,
): Promise<void> {
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
    provider: { getMigrations: async () => list },
  });
  const { error, results } = await migrateToLatestRetrying(migrator);
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`spend store migration ${failed?.migrationName ?? ''} failed: ${String(error)}`, { cause: error });
  }
}

/** What every part of the store is built on: the database, its engine. */
export interface StoreContext {
  readonly db: Kysely<Schema>;
  readonly engine: DatabaseEngine;
}
