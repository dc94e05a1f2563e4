/**
 * Bounded memory at the vendor: chains beyond `maxChainsInMemory` leave memory (least recently used first) and are
 * read from the store again on their next payment, and each chain keeps only its recent entitlements in memory.
 * Chains are held here through the store API (a chain row and an epoch with a valid lease, as a claim leaves them),
 * so no broker is involved; every payment goes through the vendor's real charge path.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { PaywordChain } from '@netpay/protocol';
import { createTestDatabase, type TestDatabase, testEngines } from '@netpay/service-kit/testing';
import { createSpendStore, type NetPayVendor, type SpendStore } from '../src/index.ts';
import { chainNumber, heldChainVendor, holdChain, payWith } from './held-chains.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function vendorOn(store: SpendStore, maxChainsInMemory: number): NetPayVendor {
  return heldChainVendor(store, { maxChainsInMemory });
}

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

for (const engine of testEngines()) {
  describe(`chains in memory are bounded on ${engine}`, () => {
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

    it('a chain that left memory is read again from the store: payments, retries and old entitlements hold', async () => {
      const vendor = vendorOn(store, 3);
      const chains = Array.from({ length: 8 }, () => PaywordChain.generate(40));
      for (const chain of chains) await holdChain(store, chain);
      // Round robin over more chains than memory holds: every payment finds its chain evicted since its last one.
      for (let index = 1; index <= 3; index++) {
        for (const [c, chain] of chains.entries()) {
          const paid = await payWith(vendor, chain, index, `GET /c${c}/a${index}`);
          assert.deepEqual([paid.kind, paid.kind === 'paid' && paid.charged], ['paid', true], JSON.stringify(paid));
          assert.ok(vendor.memory().chainsInMemory <= 3);
        }
      }
      // The retry of an evicted chain's last payment is free; a payment below it is refused.
      const [first, second] = chains as [PaywordChain, PaywordChain];
      const retry = await payWith(vendor, first, 3, 'GET /c0/a3');
      assert.deepEqual([retry.kind, retry.kind === 'paid' && retry.charged], ['paid', false]);
      const spent = await payWith(vendor, second, 2, 'GET /c1/other');
      assert.equal(spent.kind === 'problem' && spent.body.code, 'already_spent');

      // More articles on one chain than it keeps in memory: the first one is still a free re-read (the store
      // says it was bought), and an article never bought is still refused.
      for (let index = 4; index <= 30; index++) {
        const paid = await payWith(vendor, first, index, `GET /c0/a${index}`);
        assert.equal(paid.kind === 'paid' && paid.charged, true);
      }
      const reread = await payWith(vendor, first, 1, 'GET /c0/a1');
      assert.deepEqual([reread.kind, reread.kind === 'paid' && reread.charged], ['paid', false]);
      const never = await payWith(vendor, first, 1, 'GET /c0/never');
      assert.equal(never.kind === 'problem' && never.body.code, 'already_spent');
      assert.equal(vendor.work().hashSteps > 0, true);
      await vendor.close();
    });
  });
}

describe('memory at the vendor stays at its bound', () => {
  // Its cost is the store's (two inserts to hold a chain, a load and a write to pay); the timeout allows a loaded
  // machine.
  it('100,000 chains paying once each keep the cache at its bound and the heap within it', {
    timeout: 600_000,
  }, async () => {
    // An in-memory SQLite store: what is measured is the vendor's heap, and the store's pages live outside it.
    const store = await createSpendStore('sqlite::memory:');
    const COUNT = 100_000;
    const BOUND = 5_000;
    const BATCH = 50;
    const vendor = vendorOn(store, BOUND);
    const started = performance.now();
    const base = heapAfterGc();
    let paid = 0;
    let atBound = 0;
    for (let i = 0; i < COUNT; i += BATCH) {
      // Each batch's chains are made and held just before they pay: the vendor has never seen any of them.
      const chains = Array.from({ length: BATCH }, (_, j) => chainNumber(i + j));
      for (const chain of chains) await holdChain(store, chain);
      const decisions = await Promise.all(chains.map((chain) => payWith(vendor, chain, 1, 'GET /front')));
      for (const d of decisions) if (d.kind === 'paid' && d.charged) paid += 1;
      assert.ok(vendor.memory().chainsInMemory <= BOUND);
      if (atBound === 0 && i >= BOUND * 2) atBound = heapAfterGc() - base;
    }
    const grown = heapAfterGc() - base;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `${paid} payments on ${COUNT} new chains in ${seconds} s, ${BOUND} held: heap +${mib(atBound)} at the ` +
        `bound, +${mib(grown)} at the end (${Math.round(grown / BOUND)} B per chain held)`,
    );
    assert.equal(paid, COUNT);
    assert.equal(vendor.memory().chainsInMemory, BOUND);
    // 5,000 chains of about 3 KB each; all 100,000 held would be some 300 MB.
    assert.ok(grown < 32 * 1024 * 1024, `heap grew ${mib(grown)}`);
    assert.ok(grown < atBound + 8 * 1024 * 1024, `heap grew from ${mib(atBound)} at the bound to ${mib(grown)}`);
    await vendor.close();
    await store.close();
  });
});

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
