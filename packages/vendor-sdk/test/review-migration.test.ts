import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { openDatabase, sql } from '@netpay/service-kit';
import { createTestDatabase } from '@netpay/service-kit/testing';
import type { Kysely, Migration } from 'kysely';
import { createSpendStore, type SpendStore } from '../src/spend-store.ts';
import { migrateSpendStore, migrations } from '../src/spend-store-schema.ts';
import { fillStoreAt004 } from './store-at-004.ts';

// SQLite runs a migration outside a transaction (Kysely has no transactional DDL there), so a vendor stopped while
// migration 005 copies a large journal (a supervisor's start timeout) leaves part of it done. PostgreSQL runs each
// migration in a transaction, so this is SQLite's case alone.

const chain = PaywordChain.generate(10);
const chainId = chain.chainIdB64;

const before = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < '005'));
const full = migrations['005_append_only_journal'] as Migration;

/** Migration 005 cut off after `steps` of its statements, as a process killed there leaves it. */
function stoppedAfter(steps: number): Migration {
  return {
    async up(db: Kysely<unknown>) {
      const statements = [
        () =>
          db.schema
            .createTable('netpay_payment_journal')
            .addColumn('chain_id', 'text', (c) => c.notNull())
            .addColumn('epoch', 'bigint', (c) => c.notNull())
            .addColumn('idx', 'integer', (c) => c.notNull())
            .addColumn('payword', 'text', (c) => c.notNull())
            .addColumn('resource', 'text', (c) => c.notNull())
            .addColumn('amount_minor', 'bigint', (c) => c.notNull())
            .addColumn('at_ms', 'bigint', (c) => c.notNull())
            .execute(),
        () =>
          sql`INSERT INTO netpay_payment_journal (chain_id, epoch, idx, payword, resource, amount_minor, at_ms)
            SELECT chain_id, epoch, idx, payword, resource, amount_minor, at_ms FROM netpay_payments`.execute(db),
        () => db.schema.alterTable('netpay_entitlements').addColumn('idx', 'integer').execute(),
      ];
      for (const statement of statements.slice(0, steps)) await statement();
      throw new Error('killed');
    },
  };
}

describe('review: migration 005 on SQLite after a process stopped part way', () => {
  const stores: SpendStore[] = [];
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    for (const d of drops) await d();
  });

  /** A store at migration 004 with three payments and two entitlements, then 005 run as `fifth` runs it. */
  const oldStore = async (fifth: Migration | undefined) => {
    const test = await createTestDatabase('sqlite');
    drops.push(test.drop);
    const old = openDatabase<unknown>(test.url);
    const db = old.db as Kysely<unknown>;
    await migrateSpendStore(db, old.engine, before);
    await fillStoreAt004(db, chain);
    if (fifth) await migrateSpendStore(db, old.engine, { ...before, '005_append_only_journal': fifth }).catch(() => {});
    await old.close();
    return test.url;
  };

  const opensWhole = async (url: string) => {
    const store = await createSpendStore(url);
    stores.push(store);
    assert.deepEqual(await store.entitlement(chainId, 'r1'), { index: 1, payword: chain.b64(1) });
    assert.deepEqual(await store.entitlement(chainId, 'r2'), { index: 2, payword: chain.b64(2) });
    const check = openDatabase<unknown>(url);
    try {
      const { rows } = await sql<{ idx: number }>`SELECT idx FROM netpay_payment_journal ORDER BY idx`.execute(
        check.db,
      );
      assert.deepEqual(
        rows.map((r) => Number(r.idx)),
        [1, 2, 4],
        'each payment once in the journal',
      );
    } finally {
      await check.close();
    }
  };

  for (const steps of [1, 2, 3]) {
    it(`opens after 005 stopped after ${steps} of its statements`, async () => {
      await opensWhole(await oldStore(stoppedAfter(steps)));
    });
  }

  it('opens after 005 ran whole but was not recorded (stopped before its bookkeeping row)', async () => {
    const url = await oldStore({
      async up(db: Kysely<unknown>) {
        await full.up(db);
        throw new Error('killed');
      },
    });
    await opensWhole(url);
  });
});
