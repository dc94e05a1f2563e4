import { chmodSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type SQLite from 'better-sqlite3';
import {
  type ColumnMetadata,
  type DatabaseIntrospector,
  type DatabaseMetadata,
  type DatabaseMetadataOptions,
  DEFAULT_MIGRATION_LOCK_TABLE,
  DEFAULT_MIGRATION_TABLE,
  Kysely,
  type Migration,
  type MigrationResultSet,
  Migrator,
  PostgresAdapter,
  PostgresDialect,
  PostgresIntrospector,
  type SchemaMetadata,
  SqliteDialect,
  sql,
  type TableMetadata,
} from 'kysely';
import type pg from 'pg';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, touchPrivateFile } from './private-files.ts';
import { cachingStatements } from './statement-cache.ts';

/** Which engine a database URL names; the code above the adapters treats both alike. */
export type DatabaseEngine = 'sqlite' | 'postgres';

export interface Database<Schema> {
  readonly db: Kysely<Schema>;
  readonly engine: DatabaseEngine;
  readonly url: string;
  /**
   * The SQLite handle itself, for the few hot paths (a vendor's payment journal) that run a whole group
   * commit as one synchronous transaction of prepared statements; undefined on PostgreSQL.
   */
  readonly sqlite?: SqliteConnection;
  close(): Promise<void>;
}

/**
 * What the hot paths use of a better-sqlite3 connection, by shape, so the types of a package built on this one
 * (the vendor SDK) never need better-sqlite3's.
 */
export interface SqliteConnection {
  prepare(source: string): { run(...params: unknown[]): { changes: number }; get(...params: unknown[]): unknown };
  transaction<Args extends unknown[], Result>(
    fn: (...args: Args) => Result,
  ): { (...args: Args): Result; immediate(...args: Args): Result };
  readonly inTransaction: boolean;
}

// The engines are optional peers of the vendor SDK: a vendor on PostgreSQL never installs a native SQLite build and
// one on SQLite never installs pg, so each is loaded on the first URL that names it, not when this module loads.
const requireEngine = createRequire(import.meta.url);

function loadEngine<T>(name: 'better-sqlite3' | 'pg', scheme: string): T {
  try {
    return requireEngine(name) as T;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND' && e.message.includes(`'${name}'`)) {
      throw new Error(`install ${name} to use a ${scheme} database (npm install ${name})`, { cause: error });
    }
    throw error;
  }
}

let postgresEngine: typeof pg | undefined;

function loadPostgres(): typeof pg {
  if (postgresEngine) return postgresEngine;
  const engine = loadEngine<typeof pg>('pg', 'postgres:');
  // BIGINT and NUMERIC come back from pg as strings; money is BIGINT, and every amount we
  // store fits a safe integer, so parse strictly and refuse anything that does not.
  const PG_INT8 = 20;
  engine.types.setTypeParser(PG_INT8, (text: string) => {
    const value = Number(text);
    if (!Number.isSafeInteger(value)) throw new Error(`BIGINT out of safe range: ${text}`);
    return value;
  });
  postgresEngine = engine;
  return engine;
}

/**
 * Opens a database by URL: `sqlite:./data/broker.db` (or a bare path) for the embedded default,
 * `postgres://user@host:port/db?schema=name` for PostgreSQL. The `schema` parameter sets the
 * search path, which is how tests give every run its own namespace.
 *
 * @example
 * const { db, close } = openDatabase<MySchema>('sqlite:./data/bank.db');
 */
export function openDatabase<Schema>(url: string): Database<Schema> {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const parsed = new URL(url);
    const schema = parsed.searchParams.get('schema');
    parsed.searchParams.delete('schema');
    if (schema !== null && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new Error(`invalid schema name in database URL: ${schema}`);
    }
    const pool = new (loadPostgres().Pool)({
      connectionString: parsed.toString(),
      max: Number(process.env.NETPAY_PG_POOL_MAX ?? 10),
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    // An idle connection the server drops (a restart, a failover, pg_terminate_backend) is an 'error' event of the
    // pool; unheard it would end the process. The pool has already let the connection go and the next query opens
    // a new one; a query on a connection that drops is answered by its own error.
    pool.on('error', () => {});
    const db = new Kysely<Schema>({ dialect: new SnapshotIntrospectedPostgresDialect({ pool }) });
    return { db, engine: 'postgres', url, close: () => db.destroy() };
  }
  const Engine = loadEngine<typeof SQLite>('better-sqlite3', 'sqlite:');
  const path = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : url;
  if (path !== ':memory:') makePrivateDatabaseFile(path);
  const sqlite = new Engine(path);
  // WAL lets the operator CLI read while a service writes; the busy timeout makes a second
  // process wait for the writer instead of failing at once.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${sqliteSynchronous()}`);
  sqlite.pragma('busy_timeout = 10000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: cachingStatements(sqlite) }) });
  return { db, engine: 'sqlite', url, sqlite, close: () => db.destroy() };
}

/**
 * PostgreSQL with a table listing that cannot fail because another schema of the database changes meanwhile. Kysely's
 * migrator lists every table of the database before it migrates (to learn whether its bookkeeping tables exist), and
 * Kysely's own listing resolves every listed column again by name, outside the query's snapshot
 * (`has_schema_privilege(name)`, `pg_get_serial_sequence('schema.table', column)`): a schema, table or column
 * dropped by another session between the catalog scan and that lookup fails the whole listing with "schema … does
 * not exist" (3F000), "relation … does not exist" (42P01) or "column … of relation … does not exist" (42703). Test
 * runs, each in its own schema of one database, drop their schemas while others migrate; so can a migration of a
 * fleet's store running beside another process's listing.
 */
class SnapshotIntrospectedPostgresDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SnapshotPostgresIntrospector(db);
  }
}

interface CatalogColumn {
  column: string;
  not_null: boolean;
  has_default: boolean;
  table: string;
  table_type: string;
  schema: string;
  type: string;
  type_schema: string;
  column_description: string | null;
  auto_incrementing: boolean;
}

/**
 * Kysely's PostgreSQL listing (same rows, same order, same metadata) made of catalog reads under the query's one
 * snapshot: the schema privilege is asked by oid (a schema gone since is NULL, so left out, never an error), and a
 * column is auto-incrementing when a sequence is bound to it in pg_depend, which is where pg_get_serial_sequence
 * looks after resolving the names.
 */
class SnapshotPostgresIntrospector implements DatabaseIntrospector {
  readonly #db: Kysely<unknown>;

  constructor(db: Kysely<unknown>) {
    this.#db = db;
  }

  getSchemas(): Promise<SchemaMetadata[]> {
    return new PostgresIntrospector(this.#db).getSchemas();
  }

  async getTables(options: DatabaseMetadataOptions = { withInternalKyselyTables: false }): Promise<TableMetadata[]> {
    const internal = options.withInternalKyselyTables
      ? sql``
      : sql`and c.relname not in (${DEFAULT_MIGRATION_TABLE}, ${DEFAULT_MIGRATION_LOCK_TABLE})`;
    const { rows } = await sql<CatalogColumn>`
      select a.attname as column, a.attnotnull as not_null, a.atthasdef as has_default, c.relname as table,
        c.relkind as table_type, ns.nspname as schema, typ.typname as type, dtns.nspname as type_schema,
        col_description(a.attrelid, a.attnum) as column_description,
        exists (
          select 1 from pg_catalog.pg_depend d join pg_catalog.pg_class seq on seq.oid = d.objid
          where d.classid = 'pg_catalog.pg_class'::regclass and d.refclassid = 'pg_catalog.pg_class'::regclass
            and d.refobjid = c.oid and d.refobjsubid = a.attnum and d.deptype in ('a', 'i') and seq.relkind = 'S'
        ) as auto_incrementing
      from pg_catalog.pg_attribute a
        join pg_catalog.pg_class c on a.attrelid = c.oid
        join pg_catalog.pg_namespace ns on c.relnamespace = ns.oid
        join pg_catalog.pg_type typ on a.atttypid = typ.oid
        join pg_catalog.pg_namespace dtns on typ.typnamespace = dtns.oid
      where c.relkind in ('r', 'v', 'p') and ns.nspname !~ '^pg_' and ns.nspname <> 'information_schema'
        and ns.nspname <> 'crdb_internal' and has_schema_privilege(ns.oid, 'USAGE')
        and a.attnum >= 0 and not a.attisdropped ${internal}
      order by ns.nspname, c.relname, a.attnum`.execute(this.#db);
    return tablesOf(rows);
  }

  async getMetadata(options?: DatabaseMetadataOptions): Promise<DatabaseMetadata> {
    return { tables: await this.getTables(options) };
  }
}

/** Groups catalog rows (ordered by schema, table, column number) into tables, as Kysely's listing does. */
function tablesOf(rows: readonly CatalogColumn[]): TableMetadata[] {
  const tables = new Map<string, { table: TableMetadata; columns: ColumnMetadata[] }>();
  for (const row of rows) {
    const key = JSON.stringify([row.schema, row.table]);
    let entry = tables.get(key);
    if (!entry) {
      const columns: ColumnMetadata[] = [];
      entry = {
        table: { columns, isView: row.table_type === 'v', name: row.table, schema: row.schema },
        columns,
      };
      tables.set(key, entry);
    }
    entry.columns.push({
      comment: row.column_description ?? undefined,
      dataType: row.type,
      dataTypeSchema: row.type_schema,
      hasDefaultValue: row.has_default,
      isAutoIncrementing: row.auto_incrementing,
      isNullable: !row.not_null,
      name: row.column,
    });
  }
  return [...tables.values()].map((entry) => entry.table);
}

/**
 * The database file exists, mode 0600, before SQLite opens it: SQLite gives its -wal and -shm files the mode of
 * the database file, so they are private too. A folder made here is 0700; an existing one is left as it is (it
 * may be the caller's working folder). Files left 0644 by an older version are tightened.
 */
function makePrivateDatabaseFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
  touchPrivateFile(path);
  for (const side of [`${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    try {
      chmodSync(side, PRIVATE_FILE_MODE);
    } catch (error) {
      // Absent, or removed by another process closing the database: nothing to tighten.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/**
 * FULL (the default): a commit is on disk before the caller answers, so an acknowledged payment survives a power
 * cut. NETPAY_SQLITE_SYNCHRONOUS=NORMAL keeps WAL commits safe from a process crash but not from power loss; it
 * exists to measure what the fsync costs, not as a recommendation.
 */
function sqliteSynchronous(): 'FULL' | 'NORMAL' | 'EXTRA' {
  const wanted = process.env.NETPAY_SQLITE_SYNCHRONOUS ?? 'FULL';
  if (wanted !== 'FULL' && wanted !== 'NORMAL' && wanted !== 'EXTRA') {
    throw new Error(`NETPAY_SQLITE_SYNCHRONOUS must be FULL, NORMAL or EXTRA, not ${wanted}`);
  }
  return wanted;
}

/**
 * Applies the named migrations in key order; the same list serves both engines. On PostgreSQL the
 * migration bookkeeping tables are pinned to the connection's current schema: Kysely otherwise
 * finds another schema's `kysely_migration*` tables and skips creating its own, which breaks
 * concurrent test runs that each live in their own schema.
 */
export async function migrate(db: Kysely<unknown>, migrations: Record<string, Migration>): Promise<void> {
  const schema = await currentPostgresSchema(db);
  const migrator = new Migrator({
    db,
    ...(schema ? { migrationTableSchema: schema } : {}),
    provider: { getMigrations: async () => migrations },
  });
  const { error, results } = await migrateToLatestRetrying(migrator);
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${String(error)}`, { cause: error });
  }
}

/**
 * `migrateToLatest`, tried again when it failed only because Kysely's listing of every table of the database met a
 * schema, table or column dropped meanwhile by another session (SQLSTATE 3F000, 42P01 or 42703; nothing has been
 * migrated then: a migration's own failure has status Error, and is never retried). A database opened here lists
 * tables without that race (SnapshotIntrospectedPostgresDialect); the retry is for a Kysely made elsewhere, with
 * Kysely's own listing.
 */
export async function migrateToLatestRetrying(migrator: Migrator): Promise<MigrationResultSet> {
  for (let attempt = 1; ; attempt++) {
    const outcome = await migrator.migrateToLatest();
    const code = (outcome.error as { code?: unknown } | undefined)?.code;
    const nothingRan = !outcome.results?.some((r) => r.status !== 'NotExecuted');
    const listingRaced = code === '3F000' || code === '42P01' || code === '42703';
    if (!listingRaced || !nothingRan || attempt >= 20) return outcome;
    await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
  }
}

async function currentPostgresSchema(db: Kysely<unknown>): Promise<string | undefined> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return undefined;
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  return rows[0]?.schema;
}

/**
 * Row-locking read inside a transaction. PostgreSQL takes a row lock; SQLite needs none because
 * Kysely runs one SQLite transaction at a time per process and WAL serialises writers across processes.
 */
export function forUpdate(engine: DatabaseEngine): boolean {
  return engine === 'postgres';
}

/** True when an error is a unique-constraint violation on either engine. */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | null;
  if (!e) return false;
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** True when PostgreSQL aborted a transaction that may simply be retried. */
export function isRetryableTransactionError(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === '40001' || code === '40P01' || code === 'SQLITE_BUSY';
}

export { sql };
