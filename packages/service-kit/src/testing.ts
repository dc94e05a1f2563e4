import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { DatabaseEngine } from './database.ts';

/** A throwaway database for one test: its URL and how to drop it. */
export interface TestDatabase {
  engine: DatabaseEngine;
  url: string;
  drop(): Promise<void>;
}

/** The PostgreSQL server tests use; CI makes sure it is up. */
export const TEST_PG_URL = process.env.NETPAY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The engines every storage test runs on. Set NETPAY_TEST_ENGINES=sqlite to run one engine while
 * developing; CI runs both.
 */
export function testEngines(): DatabaseEngine[] {
  const wanted = (process.env.NETPAY_TEST_ENGINES ?? 'sqlite,postgres').split(',').map((s) => s.trim());
  return (['sqlite', 'postgres'] as const).filter((e) => wanted.includes(e));
}

/**
 * Makes a fresh database: a SQLite file in a temp folder, or a new PostgreSQL schema named
 * for this run, so concurrent runs never see each other's rows. `drop()` removes it.
 */
export async function createTestDatabase(engine: DatabaseEngine): Promise<TestDatabase> {
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'netpay-test-'));
    return {
      engine,
      url: `sqlite:${join(dir, 'test.db')}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const schema = `t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await client.end();
  }
  const url = new URL(TEST_PG_URL);
  url.searchParams.set('schema', schema);
  return {
    engine,
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: TEST_PG_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

/** The system catalogs every test schema's creation and drop leaves dead rows in. */
const BLOATED_CATALOGS = [
  'pg_attribute',
  'pg_class',
  'pg_type',
  'pg_depend',
  'pg_constraint',
  'pg_index',
  'pg_attrdef',
];

/**
 * Vacuums the test database's system catalogs, when PostgreSQL is among the test engines. A test run makes and
 * drops thousands of schemas (`createTestDatabase`); a server with autovacuum off (this workplace's machines ship
 * so) never reclaims their dead catalog rows: after a few runs a table listing scanned 470 MB of pg_attribute and
 * took seconds, and a test of it timed out. The test runner calls this after a run. Rejects when it cannot.
 */
export async function vacuumTestCatalogs(): Promise<void> {
  if (!testEngines().includes('postgres')) return;
  const client = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(`VACUUM ${BLOATED_CATALOGS.map((c) => `pg_catalog.${c}`).join(', ')}`);
  } finally {
    await client.end();
  }
}

/** A temp folder for a test's data, removed by the returned function. */
export function tempDir(prefix = 'netpay-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Debian's Chromium, which the browser tests drive through playwright-core (NETPAY_CHROMIUM overrides). */
export const CHROMIUM_PATH = process.env.NETPAY_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Launch options for headless Chromium on these machines: no sandbox (tests run as root), and no background
 * networking, which the closed network here would refuse many times a second.
 */
export const CHROMIUM_LAUNCH_OPTIONS = {
  executablePath: CHROMIUM_PATH,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
  ],
};

/**
 * Why a browser test cannot run here, or false when it can. A developer without Chromium gets a skip that says
 * so; under CI (CI=true, where .ci/run installs it) a missing browser is a failure, never a silent skip.
 */
export function browserTestSkip(): string | false {
  if (existsSync(CHROMIUM_PATH) || process.env.CI === 'true') return false;
  return `${CHROMIUM_PATH} is missing: apt-get install -y chromium to run the browser tests`;
}
