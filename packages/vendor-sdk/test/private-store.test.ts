/**
 * `storeShared: false`: a vendor whose store is its own answers a refusal a stale cache could explain without
 * reading the store again; a fleet's vendor (the default) reads the chain again first.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { createTestDatabase, type TestDatabase, testEngines } from '@netpay/service-kit/testing';
import { createSpendStore, type SpendStore } from '../src/index.ts';
import { heldChainVendor, holdChain, outcome, payWith } from './held-chains.ts';

/** The store, counting its chain loads (the reload a refusal may cost); every other call goes straight through. */
function countingLoads(store: SpendStore): { store: SpendStore; loads: () => number } {
  let loads = 0;
  const counted = new Proxy(store, {
    get(target, name) {
      if (name === 'loadChain') {
        return (chainId: string) => {
          loads += 1;
          return target.loadChain(chainId);
        };
      }
      const value = Reflect.get(target, name, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: counted, loads: () => loads };
}

for (const engine of testEngines()) {
  describe(`a store private to one vendor process on ${engine}`, () => {
    let db: TestDatabase;
    let store: SpendStore;
    before(async () => {
      db = await createTestDatabase(engine);
      store = await createSpendStore(db.url);
    });
    after(async () => {
      await store.close();
      await db.drop();
    });

    for (const storeShared of [true, false]) {
      it(`storeShared ${storeShared}: refusals ${storeShared ? 'read the chain again' : 'come from memory'}`, async () => {
        const chain = PaywordChain.generate(3000);
        await holdChain(store, chain);
        const { store: counted, loads } = countingLoads(store);
        const vendor = heldChainVendor(counted, { storeShared });
        assert.deepEqual(outcome(await payWith(vendor, chain, 2, 'GET /a')), ['paid', true]);
        assert.equal(loads(), 1, 'the first payment loads the chain');
        // Below the last index for another resource, and far ahead: each a refusal another process's payments
        // could explain.
        assert.deepEqual(outcome(await payWith(vendor, chain, 1, 'GET /b')), ['problem', 'already_spent']);
        assert.deepEqual(outcome(await payWith(vendor, chain, 2500, 'GET /c')), ['problem', 'too_far_ahead']);
        assert.equal(loads(), storeShared ? 3 : 1);
        // Honest payments and retries are the same either way.
        assert.deepEqual(outcome(await payWith(vendor, chain, 3, 'GET /d')), ['paid', true]);
        assert.deepEqual(outcome(await payWith(vendor, chain, 3, 'GET /d')), ['paid', false]);
        await vendor.close();
      });
    }
  });
}
