/**
 * Bounded memory at the vendor: chains beyond `maxChainsInMemory` leave memory (least recently used first) and are
 * read from the store again on their next payment, and each chain keeps only its recent entitlements in memory.
 * Chains are held here through the store API (a chain row and an epoch with a valid lease, as a claim leaves them),
 * so no broker is involved; every payment goes through the vendor's real charge path.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { b64uEncode, formatAuthorization, PaywordChain } from '@netpay/protocol';
import { createTestDatabase, type TestDatabase, testEngines } from '@netpay/service-kit/testing';
import { createNetPayVendor, createSpendStore, type NetPayVendor, type SpendStore } from '../src/index.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const NOW = Date.now();
const DAY = 86_400_000;

/** Holds a chain at the vendor as a claim would leave it: its row, and epoch 1 from the anchor with a lease. */
async function holdChain(store: SpendStore, chain: PaywordChain): Promise<void> {
  const chainId = chain.chainIdB64;
  const stamp = new Date(NOW).toISOString();
  await store.saveChain({
    chainId,
    touchstone: {
      chainId,
      anchor: chain.anchorB64,
      length: chain.length,
      unit: 1,
      currency: 'NZD',
      broker: 'http://broker.test',
      keyId: 'bk1',
      issuedAt: stamp,
      expiresAt: new Date(NOW + 30 * DAY).toISOString(),
      sig: 'A'.repeat(86),
    },
    unit: 1,
    length: chain.length,
    currency: 'NZD',
    expiresAtMs: NOW + 30 * DAY,
  });
  const anchor = { index: 0, payword: chain.anchorB64 };
  await store.insertEpoch({
    chainId,
    epoch: 1,
    holder: {
      chainId,
      epoch: 1,
      vendorId: 'memory-test',
      prevVendorId: '',
      prevEpoch: 0,
      broker: 'http://broker.test',
      keyId: 'bk1',
      issuedAt: stamp,
      expiresAt: new Date(NOW + DAY).toISOString(),
      sig: 'A'.repeat(86),
    },
    leaseExpiresAtMs: NOW + DAY,
    previous: null,
    start: anchor,
    startRelease: null,
    releaseReported: false,
    last: anchor,
    lastResource: null,
    release: null,
    superseded: false,
    redeemed: null,
    redeemedMinor: 0,
    rejectedMinor: 0,
  });
}

function vendorOn(store: SpendStore, maxChainsInMemory: number): NetPayVendor {
  return createNetPayVendor({
    vendorId: 'memory-test',
    // Never called: every chain is held with a valid lease and the currency is given.
    brokerUrl: 'http://127.0.0.1:9',
    apiKey: 'unused',
    signingKey: { privateSeed: randomBytes(32), keyId: 'vk1' },
    releaseUrl: 'http://127.0.0.1:9/release',
    currency: 'NZD',
    store,
    maxChainsInMemory,
  });
}

function pay(vendor: NetPayVendor, chain: PaywordChain, index: number, resource: string) {
  return vendor.charge({
    authorization: formatAuthorization({ chain: chain.chainIdB64, index, payword: chain.b64(index) }),
    resource,
    priceMinor: 1,
  });
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
          const paid = await pay(vendor, chain, index, `GET /c${c}/a${index}`);
          assert.deepEqual([paid.kind, paid.kind === 'paid' && paid.charged], ['paid', true], JSON.stringify(paid));
          assert.ok(vendor.memory().chainsInMemory <= 3);
        }
      }
      // The retry of an evicted chain's last payment is free; a payment below it is refused.
      const [first, second] = chains as [PaywordChain, PaywordChain];
      const retry = await pay(vendor, first, 3, 'GET /c0/a3');
      assert.deepEqual([retry.kind, retry.kind === 'paid' && retry.charged], ['paid', false]);
      const spent = await pay(vendor, second, 2, 'GET /c1/other');
      assert.equal(spent.kind === 'problem' && spent.body.code, 'already_spent');

      // More articles on one chain than it keeps in memory: the first one is still a free re-read (the store
      // says it was bought), and an article never bought is still refused.
      for (let index = 4; index <= 30; index++) {
        const paid = await pay(vendor, first, index, `GET /c0/a${index}`);
        assert.equal(paid.kind === 'paid' && paid.charged, true);
      }
      const reread = await pay(vendor, first, 1, 'GET /c0/a1');
      assert.deepEqual([reread.kind, reread.kind === 'paid' && reread.charged], ['paid', false]);
      const never = await pay(vendor, first, 1, 'GET /c0/never');
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
      const decisions = await Promise.all(chains.map((chain) => pay(vendor, chain, 1, 'GET /front')));
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

/** The n-th of many distinct one-unit chains, made without a random draw each (ids differ by their number). */
const SEED = b64uEncode(randomBytes(32));
const RUN = randomBytes(8);
function chainNumber(n: number): PaywordChain {
  const id = new Uint8Array(16);
  id.set(RUN);
  new DataView(id.buffer).setUint32(12, n);
  return PaywordChain.fromB64(b64uEncode(id), SEED, 1);
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
