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

for (const engine of testEngines()) {
  describe(`a spend store from before the epoch heads, on ${engine}`, () => {
    const stores: SpendStore[] = [];
    const drops: (() => Promise<void>)[] = [];
    after(async () => {
      for (const s of stores) await s.close();
      for (const d of drops) await d();
    });

    it('moves each epoch last point to its head, and a released epoch stays closed to payments', async () => {
      const test = await createTestDatabase(engine);
      drops.push(test.drop);
      const old = openDatabase<unknown>(test.url);
      const db = old.db as Kysely<unknown>;
      await migrateSpendStore(
        db,
        old.engine,
        Object.fromEntries(Object.entries(migrations).filter(([n]) => n < '006')),
      );
      // Epoch 1 paid to 4 and released there; epoch 2 started at 4, paid to 6, still held.
      await sql`INSERT INTO netpay_chains (chain_id, touchstone, unit, length, currency, expires_at_ms)
        VALUES (${chainId}, '{}', 2, 10, 'NZD', 1900000000000)`.execute(db);
      const release = { chainId, epoch: 1, index: 4, payword: chain.b64(4) };
      await sql`INSERT INTO netpay_epochs (chain_id, epoch, holder, lease_expires_at_ms, start_index, start_payword,
          last_index, last_payword, last_resource, release)
        VALUES (${chainId}, 1, '{}', 1900000000000, 0, ${chain.b64(0)}, 4, ${chain.b64(4)}, 'r1', ${JSON.stringify(release)}),
               (${chainId}, 2, '{}', 1900000000000, 4, ${chain.b64(4)}, 6, ${chain.b64(6)}, 'r2', NULL)`.execute(db);
      await old.close();

      const store = await createSpendStore(test.url);
      stores.push(store);
      const one = await store.getEpoch(chainId, 1);
      assert.deepEqual(
        [one?.last, one?.lastResource, one?.release],
        [{ index: 4, payword: chain.b64(4) }, 'r1', release],
      );
      const two = await store.getEpoch(chainId, 2);
      assert.deepEqual([two?.last, two?.lastResource, two?.release], [{ index: 6, payword: chain.b64(6) }, 'r2', null]);
      assert.deepEqual(await store.totals(), { earned: 12, pending: 12, redeemed: 0, rejected: 0 });
      const pay = (epoch: number, expected: number) =>
        store.recordPayment({
          chainId,
          epoch,
          expectedLastIndex: expected,
          index: expected + 1,
          payword: chain.b64(expected + 1),
          resource: 'r3',
          amountMinor: 2,
          atMs: 7,
        });
      assert.equal(await pay(1, 4), 'conflict', 'the released epoch takes no payment past its release');
      assert.equal(await pay(2, 6), 'ok');
      assert.deepEqual((await store.getEpoch(chainId, 2))?.last, { index: 7, payword: chain.b64(7) });
      assert.deepEqual(await store.totals(), { earned: 14, pending: 14, redeemed: 0, rejected: 0 });
      assert.deepEqual(
        (await store.redeemable()).map((r) => [r.epoch.epoch, r.epoch.last?.index]),
        [
          [1, 4],
          [2, 7],
        ],
      );
      const after = openDatabase<unknown>(test.url);
      try {
        await assert.rejects(
          sql`SELECT last_index FROM netpay_epochs`.execute(after.db),
          'the epoch row lost its head',
        );
      } finally {
        await after.close();
      }
    });
  });
}
