import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type SQLite from 'better-sqlite3';
import { openDatabase } from '../src/database.ts';
import { cachingStatements } from '../src/statement-cache.ts';

const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof SQLite;

/** A real in-memory database whose prepares are counted. */
function countedDatabase(): { sqlite: SQLite.Database; prepared: () => number } {
  const sqlite = new Sqlite(':memory:');
  sqlite.exec('CREATE TABLE t (a INTEGER)');
  sqlite.exec('INSERT INTO t VALUES (1), (2), (3)');
  let count = 0;
  const prepare = sqlite.prepare.bind(sqlite);
  sqlite.prepare = ((source: string) => {
    count++;
    return prepare(source);
  }) as typeof sqlite.prepare;
  return { sqlite, prepared: () => count };
}

describe('cachingStatements', () => {
  it('prepares one SQL text once and runs the same statement again', () => {
    const { sqlite, prepared } = countedDatabase();
    const db = cachingStatements(sqlite);
    const first = db.prepare('SELECT a FROM t ORDER BY a');
    const again = db.prepare('SELECT a FROM t ORDER BY a');
    assert.equal(again, first);
    assert.equal(prepared(), 1);
    assert.deepEqual(again.all([]), [{ a: 1 }, { a: 2 }, { a: 3 }]);
    db.prepare('SELECT a FROM t WHERE a = ?');
    assert.equal(prepared(), 2, 'another text is prepared');
    db.close();
    assert.equal(sqlite.open, false, 'closing closes the connection');
  });

  it('never hands out a statement an unfinished iteration holds', () => {
    const { sqlite, prepared } = countedDatabase();
    const db = cachingStatements(sqlite);
    const source = 'SELECT a FROM t ORDER BY a';
    const streaming = db.prepare(source);
    const rows = streaming.iterate([]);
    assert.deepEqual(rows.next().value, { a: 1 });
    const other = db.prepare(source);
    assert.notEqual(other, streaming, 'a busy statement is not reused');
    assert.equal(prepared(), 2);
    assert.deepEqual(other.all([]), [{ a: 1 }, { a: 2 }, { a: 3 }]);
    assert.deepEqual([...rows], [{ a: 2 }, { a: 3 }], 'the iteration goes on undisturbed');
    assert.equal(db.prepare(source), other, 'the newer statement is the one kept');
    assert.equal(prepared(), 2);
    db.close();
  });

  it('keeps at most its capacity, evicting the least recently used', () => {
    const { sqlite, prepared } = countedDatabase();
    const db = cachingStatements(sqlite, 2);
    const a = db.prepare('SELECT 1');
    db.prepare('SELECT 2');
    assert.equal(db.prepare('SELECT 1'), a, 'used again: now the most recent');
    db.prepare('SELECT 3');
    assert.equal(db.cached, 2);
    assert.equal(prepared(), 3);
    assert.equal(db.prepare('SELECT 1'), a, 'the recently used one stayed');
    db.prepare('SELECT 2');
    assert.equal(prepared(), 4, 'the least recently used one was evicted');
    assert.throws(() => cachingStatements(sqlite, 0), /capacity/);
    db.close();
  });

  it('a kept statement sees the schema as it is now (a migration adding or dropping a column)', () => {
    const { sqlite } = countedDatabase();
    const db = cachingStatements(sqlite);
    const source = 'SELECT * FROM t WHERE a = ?';
    assert.deepEqual(db.prepare(source).all([1]), [{ a: 1 }]);
    sqlite.exec("ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x'");
    assert.deepEqual(db.prepare(source).all([1]), [{ a: 1, b: 'x' }]);
    sqlite.exec('ALTER TABLE t DROP COLUMN b');
    assert.deepEqual(db.prepare(source).all([1]), [{ a: 1 }]);
    db.close();
  });
});

describe('openDatabase on SQLite, with statements kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'netpay-statements-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('answers queries, transactions and streams as before', async () => {
    interface Schema {
      items: { id: number; name: string };
    }
    const database = openDatabase<Schema>(`sqlite:${join(dir, 'items.db')}`);
    const { db } = database;
    try {
      await db.schema
        .createTable('items')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('name', 'text')
        .execute();
      for (let i = 1; i <= 5; i++)
        await db
          .insertInto('items')
          .values({ id: i, name: `n${i}` })
          .execute();
      const byId = (id: number) => db.selectFrom('items').select('name').where('id', '=', id).executeTakeFirst();
      assert.deepEqual(await byId(2), { name: 'n2' });
      assert.deepEqual(await byId(4), { name: 'n4' }, 'the kept statement takes new parameters');
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          await trx.updateTable('items').set({ name: 'changed' }).where('id', '=', 2).execute();
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.deepEqual(await byId(2), { name: 'n2' }, 'a rolled-back transaction left nothing');
      await db.transaction().execute(async (trx) => {
        await trx.updateTable('items').set({ name: 'changed' }).where('id', '=', 2).execute();
      });
      assert.deepEqual(await byId(2), { name: 'changed' });
      const streamed: string[] = [];
      for await (const row of db.selectFrom('items').select('name').orderBy('id').stream()) {
        streamed.push(row.name);
      }
      assert.deepEqual(streamed, ['n1', 'changed', 'n3', 'n4', 'n5']);
      assert.deepEqual(await byId(5), { name: 'n5' }, 'the streamed statement is free again');
    } finally {
      await database.close();
    }
  });
});
