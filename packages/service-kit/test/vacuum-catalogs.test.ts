import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import pg from 'pg';
import { createTestDatabase, TEST_PG_URL, testEngines, vacuumTestCatalogs } from '../src/testing.ts';
import { freePort } from '../src/free-port.ts';

// The test runner vacuums the PostgreSQL test database's catalogs after each run (scripts/test.mjs): the schemas
// every run makes and drops leave dead catalog rows that this workplace's servers, with autovacuum off, never reclaim.

const skip = testEngines().includes('postgres') ? false : 'PostgreSQL is not among NETPAY_TEST_ENGINES';

async function vacuumCount(): Promise<number> {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      "SELECT vacuum_count AS n FROM pg_stat_sys_tables WHERE relname = 'pg_attribute'",
    );
    return Number(rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

describe('vacuumTestCatalogs', { skip }, () => {
  it('vacuums pg_attribute (where a dropped schema leaves its dead rows)', async () => {
    const db = await createTestDatabase('postgres');
    await db.drop();
    const before = await vacuumCount();
    await vacuumTestCatalogs();
    // The statistics collector may lag a moment behind the vacuum it counts.
    let after = await vacuumCount();
    for (let i = 0; i < 50 && after === before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await vacuumCount();
    }
    assert.ok(after > before, `vacuum_count stayed at ${before}`);
  });

  it('rejects, without hanging, when the server is not there (the runner then prints a note)', async () => {
    // TEST_PG_URL is read when the module loads: a process of its own, pointed at a port nobody listens on.
    const port = await freePort();
    const script = [
      "import { vacuumTestCatalogs } from '@netpay/service-kit/testing';",
      "await vacuumTestCatalogs().then(() => console.log('vacuumed'), (e) => console.log('rejected', e.code));",
    ].join('\n');
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--conditions=netpay-source', '--import', 'tsx', '--input-type=module', '--eval', script],
        {
          env: { ...process.env, NETPAY_TEST_PG_URL: `postgres://postgres@127.0.0.1:${port}/test` },
          timeout: 30_000,
        },
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      );
    });
    assert.equal(out.trim(), 'rejected ECONNREFUSED');
  });
});
