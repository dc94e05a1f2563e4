import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { createTestDatabase, testEngines } from '@netpay/service-kit/testing';
import pg from 'pg';
import { createSpendStore, type PaymentWrite, type SpendStore } from '../src/index.ts';
import { chainRecordOf, epochRecordOf } from './store-records.ts';

const pay = (chain: PaywordChain, expected: number, index: number, resource = `r${index}`): PaymentWrite => ({
  chainId: chain.chainIdB64,
  epoch: 1,
  expectedLastIndex: expected,
  index,
  payword: chain.b64(index),
  resource,
  amountMinor: index - expected,
  atMs: Date.now(),
});

/** Counts every query any pg client of this process sends (each is one round trip to the server). */
function countQueries(): { readonly count: number; stop(): void } {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  const counter = { count: 0, stop: () => (proto.query = original) };
  proto.query = function (this: unknown, ...args: unknown[]) {
    counter.count++;
    return original.apply(this, args);
  };
  return counter;
}

for (const engine of testEngines()) {
  describe(`payment group commit on ${engine}`, () => {
    const stores: SpendStore[] = [];
    const drops: (() => Promise<void>)[] = [];
    after(async () => {
      for (const s of stores) await s.close();
      for (const d of drops) await d();
    });
    const open = async () => {
      const db = await createTestDatabase(engine);
      drops.push(db.drop);
      const store = await createSpendStore(db.url);
      stores.push(store);
      return { store, url: db.url };
    };
    const start = async (store: SpendStore, count: number) => {
      const chains = Array.from({ length: count }, () => PaywordChain.generate(10));
      for (const c of chains) {
        await store.saveChain(chainRecordOf(c, 1));
        await store.insertEpoch(epochRecordOf(c, 1, 0));
      }
      return chains;
    };

    it('commits 50 concurrent payments on 50 chains in fewer round trips than payments, each durable', async (t) => {
      if (engine !== 'postgres') return t.skip('round trips are counted on the PostgreSQL client');
      const { store } = await open();
      const chains = await start(store, 50);
      const queries = countQueries();
      let results: string[];
      try {
        results = await Promise.all(chains.map((c) => store.recordPayment(pay(c, 0, 1))));
      } finally {
        queries.stop();
      }
      assert.deepEqual(new Set(results), new Set(['ok']));
      assert.equal(results.length, 50);
      assert.ok(queries.count < 50, `${queries.count} round trips for 50 payments`);
      for (const c of chains) {
        const loaded = await store.loadChain(c.chainIdB64);
        assert.deepEqual(loaded?.epochs[0]?.last, { index: 1, payword: c.b64(1) });
        assert.deepEqual(loaded?.entitlements, ['r1']);
      }
      assert.deepEqual(await store.totals(), { earned: 50, pending: 50, redeemed: 0, rejected: 0 });
    });

    it('tells the store observer of each durable batch and of its fsyncs (SQLite), on the store it opened', async () => {
      const db = await createTestDatabase(engine);
      drops.push(db.drop);
      const batches: string[][] = [];
      const fsyncs: string[] = [];
      const store = await createSpendStore(db.url, {
        observer: {
          committed: (writes, results) => batches.push(writes.map((w, i) => `${w.index}:${results[i]}`)),
          fsynced: (place, seconds) => {
            assert.ok(seconds >= 0);
            fsyncs.push(place);
          },
        },
      });
      stores.push(store);
      const [c] = await start(store, 1);
      const chain = c as PaywordChain;
      fsyncs.length = 0;
      const results = await Promise.all([
        store.recordPayment(pay(chain, 0, 1)),
        store.recordPayment(pay(chain, 1, 2)),
        store.recordPayment(pay(chain, 0, 1)),
      ]);
      assert.deepEqual(results, ['ok', 'ok', 'conflict']);
      assert.deepEqual(batches.flat().sort(), ['1:conflict', '1:ok', '2:ok']);
      if (engine === 'sqlite') assert.ok(fsyncs.length >= 1 && fsyncs.length <= batches.length, `${fsyncs}`);
      else assert.deepEqual(fsyncs, [], 'PostgreSQL makes its commits durable itself');
    });

    it('lets exactly one of concurrent payments of the same index win, in one store and across two', async () => {
      const { store, url } = await open();
      const other = await createSpendStore(url);
      stores.push(other);
      const [chain, neighbour] = (await start(store, 2)) as [PaywordChain, PaywordChain];
      const writes = Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? store : other).recordPayment(pay(chain, 0, 1 + (i % 3), `a${i}`)),
      );
      // A payment of another chain in the same batch is not held back by the race.
      const bystander = store.recordPayment(pay(neighbour, 0, 2));
      const results = await Promise.all(writes);
      assert.equal(results.filter((r) => r === 'ok').length, 1, results.join(','));
      assert.equal(await bystander, 'ok');
      const winner = results.indexOf('ok');
      const loaded = await store.loadChain(chain.chainIdB64);
      assert.equal(loaded?.epochs[0]?.last?.index, 1 + (winner % 3));
      assert.deepEqual(loaded?.entitlements, [`a${winner}`]);
      // The losers changed nothing, so the next payment still counts from the winner's index; a pipeline of the
      // following indexes in one batch all win in order.
      const next = 1 + (winner % 3);
      const chained = await Promise.all([
        store.recordPayment(pay(chain, next, next + 1)),
        store.recordPayment(pay(chain, next + 1, next + 2)),
        store.recordPayment(pay(chain, next + 2, next + 3)),
        store.recordPayment(pay(chain, next, next + 1, 'late')),
      ]);
      assert.deepEqual(chained, ['ok', 'ok', 'ok', 'conflict']);
      assert.equal((await other.loadChain(chain.chainIdB64))?.epochs[0]?.last?.index, next + 3);
    });
  });
}
