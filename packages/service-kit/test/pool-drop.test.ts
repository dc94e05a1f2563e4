import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { openDatabase, sql } from '../src/index.ts';
import { createTestDatabase, TEST_PG_URL, testEngines } from '../src/testing.ts';

// A service on PostgreSQL outlives the server dropping its idle connections (a restart, a failover): the pool
// reports it as an 'error' event, which unheard would end the process.

const skip = testEngines().includes('postgres') ? false : 'PostgreSQL is not among NETPAY_TEST_ENGINES';

describe('a PostgreSQL database whose idle connection the server drops', { skip }, () => {
  it('keeps the process alive and answers the next query on a new connection', async () => {
    const test = await createTestDatabase('postgres');
    const database = openDatabase(test.url);
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.prependListener('uncaughtException', onUncaught);
    try {
      const { rows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(database.db);
      const pid = rows[0]?.pid;
      assert.ok(pid);
      const admin = new pg.Client({ connectionString: TEST_PG_URL });
      await admin.connect();
      try {
        const { rows: killed } = await admin.query('SELECT pg_terminate_backend($1) AS ok', [pid]);
        assert.equal(killed[0]?.ok, true);
      } finally {
        await admin.end();
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(uncaught, []);
      const again = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(database.db);
      assert.notEqual(again.rows[0]?.pid, pid);
    } finally {
      process.removeListener('uncaughtException', onUncaught);
      await database.close();
      await test.drop();
    }
  });
});
