import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { get, startWorld, type World } from './harness.ts';

/**
 * Issue 7, item 3: a refund racing payments at the holder completes within one lease. The broker claims the chain
 * for the refund; the vendor, serialised with the payments in flight, releases at its last index; everything
 * answered as paid is at or below that index and redeemable, nothing after it is charged, and money out for the
 * chain (the vendor's redemption + the refund) is exactly its value.
 */
for (const engine of testEngines()) {
  describe(`a refund racing payments on ${engine}`, () => {
    let world: World;
    before(async () => {
      world = await startWorld({ engine, feeBps: 0 });
    });
    after(async () => world?.close());

    it('pays exactly once: the vendor what it served up to its release, the customer the rest', async () => {
      const a = await world.addVendor(`refund-race-${engine}`);
      const { chain } = await world.buyCoin(100);
      // Payments one unit at a time, sent back to back, while the refund is requested after the first few.
      const served: number[] = [];
      const refused: number[] = [];
      const pay = async () => {
        for (let index = 1; index <= 60; index++) {
          const res = await get(`${a.url}/articles/${index}`, { chain, index });
          if (res.status === 200) served.push(index);
          else refused.push(index);
        }
      };
      const paying = pay();
      while (served.length < 5) await new Promise((r) => setTimeout(r, 5));
      const refund = await world.refund(chain.chainIdB64);
      await paying;
      assert.equal(refund.status, 200, JSON.stringify(refund.body));
      const { refunded, releasedIndex } = refund.body as { refunded: number; releasedIndex: number };
      assert.ok(served.length >= 5);
      assert.ok(
        Math.max(...served) <= releasedIndex,
        `served ${Math.max(...served)} past the release ${releasedIndex}`,
      );
      assert.equal(served.length, releasedIndex, 'every unit up to the release was served once');
      assert.ok(refused.every((i) => i > releasedIndex));
      assert.equal(refunded, 100 - releasedIndex);

      const report = await a.vendor.redeemNow();
      assert.equal(report.credited, releasedIndex, 'the vendor is paid exactly what it served');
      assert.equal(report.credited + refunded, 100, 'money out for the chain is its value, once');
      const audited = await world.audit();
      assert.ok(audited.ok, audited.discrepancies.join('; '));
    });
  });
}

for (const engine of testEngines()) {
  describe(`a refund while the holder does not answer, and the customer pays elsewhere, on ${engine}`, () => {
    let world: World;
    // Lease ends are whole seconds: 4 s leaves A's lease running through the first refund on a loaded box.
    const LEASE_SECONDS = 4;
    before(async () => {
      world = await startWorld({ engine, feeBps: 0, leaseTtlSeconds: LEASE_SECONDS });
    });
    after(async () => world?.close());

    it('no vendor can take the coin while the refund waits, and the refund completes when the lease ends', async () => {
      const a = await world.addVendor(`gone-${engine}`);
      const b = await world.addVendor(`elsewhere-${engine}`);
      const { chain } = await world.buyCoin(50);
      for (let index = 1; index <= 3; index++) {
        assert.equal((await get(`${a.url}/articles/${index}`, { chain, index })).status, 200);
      }
      await a.close(); // the holder is gone: it cannot release
      const first = await world.refund(chain.chainIdB64);
      assert.equal(first.status, 503, JSON.stringify(first.body));
      // The customer pays at B meanwhile: B may not claim the coin (before v1.1 it did, then the refund looped).
      const atB = await get(`${b.url}/articles/1`, { chain, index: 4 });
      assert.equal(atB.status, 402);
      const epochs = await world.brokerDb
        .selectFrom('epochs')
        .select('vendor_id')
        .where('chain_id', '=', chain.chainIdB64)
        .execute();
      assert.deepEqual(
        epochs.map((e) => e.vendor_id),
        [a.id, 'broker'],
        'only the broker took the chain after A',
      );
      await new Promise((r) => setTimeout(r, (LEASE_SECONDS + 1) * 1000));
      const second = await world.refund(chain.chainIdB64);
      assert.equal(second.status, 200, JSON.stringify(second.body));
      const { refunded, releasedIndex } = second.body as { refunded: number; releasedIndex: number };
      // The forced start is the highest point the broker knows: A's claim proof (w_1), or A's checkpoint at 3 if its
      // renewal ran before it went away. What A served without reporting is A's risk, bounded by one lease.
      assert.ok(releasedIndex === 1 || releasedIndex === 3, `released at ${releasedIndex}`);
      assert.equal(refunded, 50 - releasedIndex);
      const audited = await world.audit();
      assert.ok(audited.ok, audited.discrepancies.join('; '));
    });
  });
}
