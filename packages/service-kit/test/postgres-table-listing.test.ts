import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Kysely, Migrator, PostgresIntrospector, sql, type TableMetadata } from 'kysely';
import { openDatabase } from '../src/database.ts';
import { createTestDatabase, testEngines } from '../src/testing.ts';

/**
 * Kysely's migrator lists every table of the database before it migrates. Kysely's own PostgreSQL listing resolves
 * each listed column again by name after its catalog scan, so a schema dropped by another session in between failed
 * it with "schema … does not exist", "relation … does not exist" or "column "kept_gross" of relation "epochs" does
 * not exist" (the broker's migration failing in a CI run while other test runs dropped their schemas). A database
 * opened by openDatabase lists from one catalog snapshot: the same tables as Kysely's listing, and never an error.
 */
const skip = !testEngines().includes('postgres');

/** Other sessions make schemas with tables, add and drop columns, and drop the schemas, until stopped. */
function churnOtherSchemas(workers: number): { stop(): Promise<void> } {
  let stopped = false;
  const worker = async () => {
    while (!stopped) {
      const other = await createTestDatabase('postgres');
      const handle = openDatabase<never>(other.url);
      try {
        for (let i = 0; i < 6; i++) {
          await sql.raw(`create table t${i} (id serial primary key, a text, b bigint)`).execute(handle.db);
        }
        await sql.raw('alter table t0 add column kept_gross bigint not null default 0').execute(handle.db);
        await sql.raw('alter table t1 drop column b').execute(handle.db);
      } finally {
        await handle.close();
        await other.drop();
      }
    }
  };
  const running = Array.from({ length: workers }, worker);
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(running);
    },
  };
}

/** Kysely's own listing, tried again while it meets other test runs' drops; only this schema's tables. */
async function kyselyListing(db: Kysely<unknown>, schema: string): Promise<TableMetadata[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      const tables = await new PostgresIntrospector(db).getTables({ withInternalKyselyTables: true });
      return tables.filter((t) => t.schema === schema);
    } catch (error) {
      if (attempt >= 20) throw error;
    }
  }
}

test('the PostgreSQL table listing is Kysely’s listing', { skip }, async () => {
  const store = await createTestDatabase('postgres');
  const handle = openDatabase<unknown>(store.url);
  try {
    const schema = new URL(store.url).searchParams.get('schema') as string;
    await sql
      .raw(`create table things (
        id serial primary key, ident bigint generated always as identity, name text not null,
        score integer default 7, at timestamptz, tags text[])`)
      .execute(handle.db);
    await sql.raw(`comment on column things.name is 'what it is called'`).execute(handle.db);
    await sql.raw('alter table things drop column at').execute(handle.db);
    await sql.raw('create table kysely_migration (name text primary key)').execute(handle.db);
    await sql.raw('create view named as select id, name from things').execute(handle.db);

    const ours = await handle.db.introspection.getTables({ withInternalKyselyTables: true });
    const mine = ours.filter((t) => t.schema === schema);
    assert.deepEqual(mine, await kyselyListing(handle.db, schema));
    assert.deepEqual(
      mine.map((t) => t.name),
      ['kysely_migration', 'named', 'things'],
    );
    const things = mine.find((t) => t.name === 'things');
    assert.deepEqual(
      things?.columns.filter((c) => c.isAutoIncrementing).map((c) => c.name),
      ['id', 'ident'],
    );
    const withoutInternal = await handle.db.introspection.getTables();
    assert.ok(!withoutInternal.some((t) => t.schema === schema && t.name === 'kysely_migration'));
  } finally {
    await handle.close();
    await store.drop();
  }
});

test('listing tables and migrating never fail while other schemas are made, altered and dropped', {
  skip,
}, async () => {
  const churn = churnOtherSchemas(4);
  const failures: string[] = [];
  try {
    const store = await createTestDatabase('postgres');
    const handle = openDatabase<unknown>(store.url);
    try {
      for (let i = 0; i < 150; i++) {
        await handle.db.introspection.getTables({ withInternalKyselyTables: true }).catch((error: unknown) => {
          failures.push(`listing: ${String(error)}`);
        });
      }
    } finally {
      await handle.close();
      await store.drop();
    }
    // Kysely's migrator itself, without the retry migrate() adds: the listing must not fail on its first try.
    const migrateOnce = async () => {
      const mine = await createTestDatabase('postgres');
      const db = openDatabase<unknown>(mine.url);
      try {
        const schema = new URL(mine.url).searchParams.get('schema') as string;
        const migrator = new Migrator({
          db: db.db,
          migrationTableSchema: schema,
          provider: {
            getMigrations: async () => ({
              '0001': { up: async (d) => void (await sql`create table epochs (id integer)`.execute(d)) },
              '0002': {
                up: async (d) => {
                  await sql`alter table epochs add column kept_gross bigint not null default 0`.execute(d);
                  await sql`update epochs set kept_gross = 1`.execute(d);
                },
              },
            }),
          },
        });
        const { error, results } = await migrator.migrateToLatest();
        if (error) failures.push(`migration: ${String(error)}`);
        else
          assert.deepEqual(
            results?.map((r) => r.status),
            ['Success', 'Success'],
          );
      } finally {
        await db.close();
        await mine.drop();
      }
    };
    for (let round = 0; round < 10; round++) await Promise.all([migrateOnce(), migrateOnce(), migrateOnce()]);
  } finally {
    await churn.stop();
  }
  assert.deepEqual(failures, []);
});
