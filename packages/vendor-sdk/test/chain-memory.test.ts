/**
 * Bounded memory at the vendor: chains beyond `maxChainsInMemory` leave memory (least recently used first) and are
 * read from the store again on their next payment, and each chain keeps only its recent entitlements in memory.
 * Chains are held here through the store API (a chain row and an epoch with a valid lease, as a claim leaves them),
 * so no broker is involved; every payment goes through the vendor's real charge path.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PaywordChain } from '@netpay/protocol';
import { createTestDatabase, type TestDatabase, testEngines } from '@netpay/service-kit/testing';
import { createSpendStore, type NetPayVendor, type SpendStore } from '../src/index.ts';
import { heldChainVendor, holdChain, payWith } from './held-chains.ts';

const SCRIPT = fileURLToPath(new URL('./fixtures/memory-vendor.ts', import.meta.url));

function vendorOn(store: SpendStore, maxChainsInMemory: number): NetPayVendor {
  return heldChainVendor(store, { maxChainsInMemory });
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
    const COUNT = 100_000;
    const BOUND = 5_000;
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', SCRIPT], {
      env: { ...process.env, NETPAY_TEST_MEMORY: JSON.stringify({ count: COUNT, bound: BOUND, batch: 50 }) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, out);
    const r = JSON.parse(out.trim().split('\n').pop() as string) as {
      charged: number;
      chainsInMemory: number;
      overBound: number;
      atBound: number;
      grown: number;
      seconds: number;
    };
    console.log(
      `${r.charged} payments on ${COUNT} new chains in ${r.seconds.toFixed(1)} s, ${BOUND} held: heap ` +
        `+${mib(r.atBound)} at the bound, +${mib(r.grown)} at the end (${Math.round(r.grown / BOUND)} B per chain held)`,
    );
    assert.equal(r.charged, COUNT);
    assert.equal(r.chainsInMemory, BOUND);
    assert.equal(r.overBound, 0);
    // 5,000 chains of about 3 KB each; all 100,000 held would be some 300 MB.
    assert.ok(r.grown < 32 * 1024 * 1024, `heap grew ${mib(r.grown)}`);
    assert.ok(
      r.grown < r.atBound + 8 * 1024 * 1024,
      `heap grew from ${mib(r.atBound)} at the bound to ${mib(r.grown)}`,
    );
  });
});

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
