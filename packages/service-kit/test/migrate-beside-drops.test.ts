import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { migrate, openDatabase } from '../src/database.ts';
import { createTestDatabase, testEngines } from '../src/testing.ts';

/**
 * Test runs live in their own PostgreSQL schemas of one database and start and finish beside each other. Kysely's
 * migrator lists every table of the database; a schema dropped meanwhile made that listing fail ("schema … does
 * not exist") and a migration fail for nothing. Here other schemas with tables are made and dropped in a loop while
 * fresh stores migrate: every migration succeeds.
 */
test('migrations succeed while other schemas of the database are made and dropped', {
  skip: !testEngines().includes('postgres'),
}, async () => {
  let stop = false;
  const churn = (async () => {
    while (!stop) {
      const other = await createTestDatabase('postgres');
      const handle = openDatabase<never>(other.url);
      for (let i = 0; i < 5; i++)
        await sql.raw(`create table t${i} (id serial primary key, x text)`).execute(handle.db);
      await handle.close();
      await other.drop();
    }
  })();
  try {
    for (let i = 0; i < 25; i++) {
      const mine = await createTestDatabase('postgres');
      const handle = openDatabase<unknown>(mine.url);
      try {
        await migrate(handle.db, {
          '0001': { up: async (db) => void (await db.schema.createTable('x').addColumn('id', 'integer').execute()) },
        });
        const tables = await handle.db.introspection.getTables().catch(() => []);
        assert.ok(Array.isArray(tables));
      } finally {
        await handle.close();
        await mine.drop();
      }
    }
  } finally {
    stop = true;
    await churn;
  }
});
