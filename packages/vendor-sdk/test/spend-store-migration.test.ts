import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { openDatabase, sql } from '@netpay/service-kit';
import { createTestDatabase, testEngines } from '@netpay/service-kit/testing';
import type { Kysely } from 'kysely';
import { createSpendStore, type SpendStore } from '../src/spend-store.ts';
import { migrateSpendStore, migrations } from '../src/spend-store-schema.ts';
import { fillStoreAt004 } from './store-at-004.ts';

const chain = PaywordChain.generate(10);
const chainId = chain.chainIdB64;

for (const engine of testEngines()) {
  describe(`a spend store from before the append-only journal, on ${engine}`, () => {
    const stores: SpendStore[] = [];
    const drops: (() => Promise<void>)[] = [];
    after(async () => {
      for (const s of stores) await s.close();
      for (const d of drops) await d();
    });

    it('moves its payments to the journal and gives each entitlement the point that first bought it', async () => {
      const test = await createTestDatabase(engine);
      drops.push(test.drop);
      const old = openDatabase<unknown>(test.url);
      const db = old.db as Kysely<unknown>;
      const before = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < '005'));
      await migrateSpendStore(db, old.engine, before);
      await fillStoreAt004(db, chain);
      await old.close();

      const store = await createSpendStore(test.url);
      stores.push(store);
      assert.deepEqual(await store.entitlement(chainId, 'r1'), { index: 1, payword: chain.b64(1) });
      assert.deepEqual(await store.entitlement(chainId, 'r2'), { index: 2, payword: chain.b64(2) });
      assert.deepEqual(await store.totals(), { earned: 8, pending: 8, redeemed: 0, rejected: 0 });
      assert.equal(
        await store.recordPayment({
          chainId,
          epoch: 1,
          expectedLastIndex: 4,
          index: 5,
          payword: chain.b64(5),
          resource: 'r3',
          amountMinor: 2,
          atMs: 5,
        }),
        'ok',
      );
      const after = openDatabase<unknown>(test.url);
      try {
        const { rows } = await sql<{ idx: number }>`SELECT idx FROM netpay_payment_journal ORDER BY idx`.execute(
          after.db,
        );
        assert.deepEqual(
          rows.map((r) => Number(r.idx)),
          [1, 2, 4, 5],
        );
        const { rows: tables } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM netpay_epochs`.execute(after.db);
        assert.equal(Number(tables[0]?.n), 1);
        await assert.rejects(sql`SELECT 1 FROM netpay_payments`.execute(after.db));
      } finally {
        await after.close();
      }
    });
  });
}
