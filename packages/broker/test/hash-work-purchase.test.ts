import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { b64uDecode, b64uEncode, MAX_CHAIN_LENGTH, paywordAt } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import { brokerSuite, call, GOOD_CARD } from './harness.ts';
import { assertResponsive, slowestAnswerDuring } from './responsiveness.ts';

/**
 * Issue 10, bounded work: a coin the broker makes of 10^6 units (its anchor is the seed hashed a million times) is
 * made in the hash pool, so the broker keeps answering discovery meanwhile (see hash-work.test.ts).
 */
for (const engine of testEngines()) {
  describe(`a million-unit coin made off the event loop on ${engine}`, () => {
    const suite = brokerSuite(engine, { broker: { config: { maxChainLength: MAX_CHAIN_LENGTH } } });

    test('a broker-made coin of 10^6 units: discovery still answers within the bound', async () => {
      const { token } = await suite.broker.customer();
      // Warm up the paths the long request takes, so the measure is of the hashing.
      await suite.broker.buyCoin(token, { amount: 10 });
      let seed = '';
      let chainId = '';
      let anchor = '';
      const slowest = await slowestAnswerDuring(suite.broker, async () => {
        const res = await call(suite.broker.api, 'POST', '/coins', {
          token,
          key: 'million',
          body: { amount: MAX_CHAIN_LENGTH, payment: { card: GOOD_CARD } },
        });
        assert.equal(res.status, 201, res.text);
        ({ seed, chainId } = res.body);
        anchor = res.body.touchstone.anchor;
      });
      assertResponsive(slowest, 'the coin was made');
      // The anchor is the seed hashed down the whole chain.
      const made = paywordAt(b64uDecode(chainId, 16), b64uDecode(seed, 32), MAX_CHAIN_LENGTH, 0);
      assert.equal(b64uEncode(made), anchor);
    });
  });
}
