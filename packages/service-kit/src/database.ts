import { chmodSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type SQLite from 'better-sqlite3';
import {
  Kysely,
  type Migration,
  type MigrationResultSet,
  Migrator,
  PostgresAdapter,
  PostgresDialect,
  SqliteDialect,
  sql,
} from 'kysely';
import type pg from 'pg';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, touchPrivateFile } from './private-files.ts';

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
  prepare(source: string): { run(...params: unknown[]): { changes: number } };
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
    const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
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
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { db, engine: 'sqlite', url, sqlite, close: () => db.destroy() };
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
 * `migrateToLatest`, tried again when it failed only because another schema of the same database was dropped
 * while Kysely listed every table of the database. Its check for the bookkeeping tables resolves each listed
 * table by name: a schema dropped in between is "does not exist" (SQLSTATE 3F000), and a table dropped with it
 * is "relation does not exist" (42P01). That happens when test runs, each in its own schema, start and finish
 * beside each other; nothing has been migrated when it fails (a migration's own failure has status Error, and is
 * never retried).
 */
export async function migrateToLatestRetrying(migrator: Migrator): Promise<MigrationResultSet> {
  for (let attempt = 1; ; attempt++) {
    const outcome = await migrator.migrateToLatest();
    const code = (outcome.error as { code?: unknown } | undefined)?.code;
    const nothingRan = !outcome.results?.some((r) => r.status !== 'NotExecuted');
    const listingRaced = code === '3F000' || code === '42P01';
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
