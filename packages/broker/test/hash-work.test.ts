import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { b64uEncode, MAX_CHAIN_LENGTH, paywordAt, randomBytes, stepPayword } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import { brokerSuite, call, GOOD_CARD, item, PaywordChain, proof } from './harness.ts';
import { assertResponsive, slowestAnswerDuring } from './responsiveness.ts';

/**
 * Issue 10, bounded work: a hash loop of a million steps (a broker-made coin of 10^6 units, a redemption of
 * 0 → 10^6 in one item) runs off the event loop, so the broker keeps answering cheap requests meanwhile. The
 * probe is discovery (it reads the store), over real HTTP, every few milliseconds while the long request runs.
 * (The coin purchase is in hash-work-purchase.test.ts: each file has its own time budget on a loaded machine.)
 */
for (const engine of testEngines()) {
  describe(`hash work off the event loop on ${engine}`, () => {
    const suite = brokerSuite(engine, { broker: { config: { maxChainLength: MAX_CHAIN_LENGTH } } });

    test('a redemption of 0 → 10^6 in one item: discovery still answers within the bound', async () => {
      const vendor = await suite.broker.addVendor('million-v');
      const { token } = await suite.broker.customer();
      // The three points the test needs, without holding a million paywords in this heap (the broker shares it,
      // and a collector pause would be measured too).
      const id = randomBytes(16);
      const seed = randomBytes(32);
      const chainId = b64uEncode(id);
      const w1 = paywordAt(id, seed, MAX_CHAIN_LENGTH, 1);
      const first = { index: 1, payword: b64uEncode(w1) };
      const anchor = { index: 0, payword: b64uEncode(stepPayword(id, 0, w1)) };
      const bought = await call(suite.broker.api, 'POST', '/coins', {
        token,
        key: 'million-client',
        body: { amount: MAX_CHAIN_LENGTH, chainId, anchor: anchor.payword, payment: { card: GOOD_CARD } },
      });
      assert.equal(bought.status, 201, bought.text);
      const claim = await call(suite.broker.api, 'POST', `/chains/${chainId}/claim`, {
        token: vendor.apiKey,
        body: { proof: first },
      });
      assert.equal(claim.status, 200, claim.text);
      const end = { index: MAX_CHAIN_LENGTH, payword: b64uEncode(seed) };
      let answer: { items: Array<{ status: string; amount: number }> } | undefined;
      const slowest = await slowestAnswerDuring(suite.broker, async () => {
        const res = await call(suite.broker.api, 'POST', '/redemptions', {
          token: vendor.apiKey,
          key: 'million-r',
          body: { items: [{ chainId, epoch: 1, from: anchor, to: end }] },
        });
        assert.equal(res.status, 200, res.text);
        answer = res.body;
      });
      assertResponsive(slowest, 'the range was verified');
      assert.equal(answer?.items[0]?.status, 'accepted');
      assert.equal(answer?.items[0]?.amount, MAX_CHAIN_LENGTH);
      assert.ok((await suite.broker.audit()).ok);
    });

    test('a forged end of a long range is refused after the same work, and credits nothing', async () => {
      const vendor = await suite.broker.addVendor('forged-v');
      const { token } = await suite.broker.customer();
      const chain = PaywordChain.generate(50_000);
      assert.equal((await suite.broker.buyCoin(token, { amount: 50_000, chain })).status, 201);
      const claim = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: vendor.apiKey,
        body: proof(chain, 1),
      });
      assert.equal(claim.status, 200, claim.text);
      const forged = { ...item(chain, 1, 0, 50_000), to: { index: 50_000, payword: chain.b64(1) } };
      const res = await call(suite.broker.api, 'POST', '/redemptions', {
        token: vendor.apiKey,
        key: 'forged',
        body: { items: [forged, item(chain, 1, 0, 30_000)] },
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(
        res.body.items.map((i: { status: string; amount: number }) => [i.status, i.amount]),
        [
          ['rejected', 0],
          ['accepted', 30_000],
        ],
      );
      assert.ok((await suite.broker.audit()).ok);
    });

    test('a claim whose proof lies far above what the broker knows is checked in the pool, and a forged one refused', async () => {
      const vendor = await suite.broker.addVendor('far-v');
      const { token } = await suite.broker.customer();
      const chain = PaywordChain.generate(50_000);
      assert.equal((await suite.broker.buyCoin(token, { amount: 50_000, chain })).status, 201);
      const forged = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: vendor.apiKey,
        body: { proof: { index: 40_000, payword: chain.b64(39_999) } },
      });
      assert.equal(forged.body.code, 'invalid_payword');
      const claim = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: vendor.apiKey,
        body: proof(chain, 40_000),
      });
      assert.equal(claim.status, 200, claim.text);
      assert.equal(claim.body.holder.epoch, 1);
    });
  });
}
