import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { call, item, PaywordChain, proof, brokerSuite } from './harness.ts';

/**
 * PROTOCOL §7.3 rule 7: "the hashing comes last, so a batch of junk items costs only cheap checks". Issue 10 hashes
 * a long batch before its transaction (in the pool); a batch of items that already overlap what the chain paid
 * must still be refused by the cheap check, without hashing each one (here 300 × 100,000 SHA-256 steps, some
 * 15–30 s of a worker, which every other long hash loop of the broker would wait behind).
 */
for (const engine of testEngines()) {
  describe(`review: junk redemption items cost only cheap checks on ${engine}`, () => {
    const suite = brokerSuite(engine);

    /** A chain of `length` units bought by a customer and claimed by a new vendor with a payment of one unit. */
    async function claimedChain(vendorId: string, length: number) {
      const vendor = await suite.broker.addVendor(vendorId);
      const { token } = await suite.broker.customer();
      const chain = PaywordChain.generate(length);
      assert.equal((await suite.broker.buyCoin(token, { amount: length, chain })).status, 201);
      const claimed = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: vendor.apiKey,
        body: proof(chain, 1),
      });
      assert.equal(claimed.status, 200, claimed.text);
      return { vendor, chain };
    }

    test('300 long items over a range already paid are refused as overlap without being hashed', async () => {
      const length = 100_000;
      const { vendor, chain } = await claimedChain(`junk-${engine}`, length);
      const paid = await call(suite.broker.api, 'POST', '/redemptions', {
        token: vendor.apiKey,
        key: 'paid',
        body: { items: [item(chain, 1, 0, length)] },
      });
      assert.equal(paid.status, 200, paid.text);
      assert.equal(paid.body.credited > 0, true, paid.text);

      // Each item a different question (its own end), so no answer can serve two of them.
      const junk = Array.from({ length: 300 }, (_, i) => item(chain, 1, 0, length - i));
      const started = performance.now();
      const res = await call(suite.broker.api, 'POST', '/redemptions', {
        token: vendor.apiKey,
        key: 'junk',
        body: { items: junk },
      });
      const took = performance.now() - started;
      assert.equal(res.status, 200, res.text);
      const codes = new Set((res.body.items as Array<{ code?: string }>).map((i) => i.code));
      assert.deepEqual([...codes], ['overlap']);
      // Cheap checks only: hashing them all took 93 s on the 2-core development box; a loaded machine gets room.
      assert.ok(took < 15_000, `the junk batch took ${Math.round(took)} ms`);
    });

    test('300 forged items over one unpaid range cost the pool a few chain lengths, not 300', async () => {
      const length = 100_000;
      const { vendor, chain } = await claimedChain(`forged-${engine}`, length);
      // Every item passes the cheap checks (the vendor holds the epoch, nothing is paid yet) and each is its own
      // question (its own end, a payword of another chain): hashed one by one, 300 × 100,000 SHA-256 steps.
      const other = PaywordChain.generate(length);
      const forged = Array.from({ length: 300 }, (_, i) => ({
        ...item(chain, 1, 0, length - i),
        to: { index: length - i, payword: other.b64(length - i) },
      }));
      const started = performance.now();
      const res = await call(suite.broker.api, 'POST', '/redemptions', {
        token: vendor.apiKey,
        key: 'forged',
        body: { items: forged },
      });
      const took = performance.now() - started;
      // One range hashed ahead, then a few more in the transaction, then a retry asked for: nothing credited.
      assert.equal(res.status, 429, res.text);
      assert.equal(res.body.code, 'rate_limited');
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      assert.ok(took < 15_000, `the forged batch took ${Math.round(took)} ms`);
      const honest = await call(suite.broker.api, 'POST', '/redemptions', {
        token: vendor.apiKey,
        key: 'honest',
        body: { items: [item(chain, 1, 0, length)] },
      });
      assert.equal(honest.status, 200, honest.text);
      assert.equal(honest.body.items[0].status, 'accepted', honest.text);
      const audited = await suite.broker.audit();
      assert.ok(audited.ok, audited.discrepancies.join('; '));
    });

    test('a batch of long items, each going on from the one before, is paid in full; after a forged one, none', async () => {
      const { vendor, chain } = await claimedChain(`batch-${engine}`, 20_000);
      const redeem = async (key: string, items: Array<Record<string, unknown>>) => {
        const res = await call(suite.broker.api, 'POST', '/redemptions', {
          token: vendor.apiKey,
          key,
          body: { items },
        });
        assert.equal(res.status, 200, res.text);
        return (res.body.items as Array<{ status: string; code?: string; amount: number }>).map((i) =>
          i.status === 'accepted' ? i.amount : i.code,
        );
      };
      assert.deepEqual(
        await redeem('chained', [item(chain, 1, 0, 3000), item(chain, 1, 3000, 6000), item(chain, 1, 6000, 9000)]),
        [3000, 3000, 3000],
      );
      const other = PaywordChain.generate(20_000);
      const forged = { ...item(chain, 1, 9000, 12_000), to: { index: 12_000, payword: other.b64(12_000) } };
      const after = { ...item(chain, 1, 12_000, 15_000), from: { index: 12_000, payword: other.b64(12_000) } };
      assert.deepEqual(await redeem('forged', [forged, after, item(chain, 1, 9000, 15_000)]), [
        'invalid_payword',
        'invalid_payword',
        6000,
      ]);
      const audited = await suite.broker.audit();
      assert.ok(audited.ok, audited.discrepancies.join('; '));
    });
  });
}
