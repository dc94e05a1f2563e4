import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ClaimResponseSchema,
  CoinListSchema,
  HistorySchema,
  checkWire,
  DiscoverySchema,
  findKey,
  HolderCertificateSchema,
  PaywordChain,
  RedemptionResponseSchema,
  verifyHolderCertificate,
  verifyTouchstone,
} from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import { type BrokerUnderTest, call, item, proof, brokerSuite } from './harness.ts';

async function assertAudit(broker: BrokerUnderTest, step: string) {
  const result = await broker.audit();
  assert.ok(result.ok, `audit after ${step}: ${result.discrepancies.join('; ')}`);
  return result;
}

for (const engine of testEngines()) {
  describe(`broker on ${engine}`, () => {
    const suite = brokerSuite(engine);

    test('a coin with a client-made anchor is claimed, moved between vendors, and redeemed exactly', async () => {
      const discovery = await call(suite.broker.url, 'GET', '/.well-known/netpay');
      assert.equal(discovery.status, 200);
      assert.ok(checkWire(DiscoverySchema, discovery.body), discovery.text);
      assert.equal(discovery.body.api, suite.broker.api);
      assert.equal(discovery.body.broker, suite.broker.url);
      assert.equal(discovery.body.feeBps, 200);

      const customer = await suite.broker.customer();
      const chain = PaywordChain.generate(1000);
      const bought = await suite.broker.buyCoin(customer.token, { amount: 2000, unit: 2, chain });
      assert.equal(bought.status, 201, bought.text);
      assert.equal(bought.body.chainId, chain.chainIdB64);
      assert.equal(bought.body.seed, undefined, 'the broker never sees a client seed');
      const touchstone = bought.body.touchstone;
      assert.equal(touchstone.anchor, chain.anchorB64);
      assert.equal(touchstone.length, 1000);
      assert.equal(touchstone.unit, 2);
      const brokerKey = findKey(discovery.body.keys, touchstone.keyId);
      assert.ok(brokerKey && verifyTouchstone(touchstone, brokerKey), 'touchstone verifies with the published key');
      await assertAudit(suite.broker, 'purchase');

      const a = await suite.broker.addVendor('vendor-a');
      const b = await suite.broker.addVendor('vendor-b');
      const directory = await call(suite.broker.api, 'GET', '/vendors/vendor-a');
      assert.equal(directory.status, 200);
      assert.equal(directory.body.keys[0].publicKey, a.publicKey);

      const claimA = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: a.apiKey,
        body: proof(chain, 1),
      });
      assert.equal(claimA.status, 200, claimA.text);
      assert.ok(checkWire(ClaimResponseSchema, claimA.body), claimA.text);
      assert.equal(claimA.body.holder.epoch, 1);
      assert.equal(claimA.body.holder.vendorId, 'vendor-a');
      assert.equal(claimA.body.holder.prevVendorId, '');
      assert.equal(claimA.body.holder.prevEpoch, 0);
      assert.equal(claimA.body.previous, null);
      assert.equal(claimA.body.start, null);
      assert.ok(verifyHolderCertificate(claimA.body.holder, brokerKey));
      assert.deepEqual(claimA.body.touchstone, touchstone);

      const again = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, { token: a.apiKey });
      assert.equal(again.text, claimA.text, 'a repeated claim by the holder is idempotent');

      const cp = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
        token: a.apiKey,
        body: { epoch: 1, index: 10, payword: chain.b64(10) },
      });
      assert.equal(cp.status, 200, cp.text);
      assert.ok(checkWire(HolderCertificateSchema, cp.body.holder));

      const claimB = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: b.apiKey,
        body: proof(chain, 13),
      });
      assert.equal(claimB.status, 200, claimB.text);
      assert.equal(claimB.body.holder.epoch, 2);
      assert.equal(claimB.body.holder.prevVendorId, 'vendor-a');
      assert.equal(claimB.body.holder.prevEpoch, 1);
      assert.deepEqual(claimB.body.previous, {
        vendorId: 'vendor-a',
        releaseUrl: 'http://127.0.0.1:9/vendor-a/release',
        epoch: 1,
      });
      assert.equal(claimB.body.start, null);

      // A was superseded: it may not renew any more.
      const cpA = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
        token: a.apiKey,
        body: { epoch: 1, index: 12, payword: chain.b64(12) },
      });
      assert.equal(cpA.status, 409);
      assert.equal(cpA.body.code, 'lease_superseded');

      // A was paid up to 12 and releases there; B takes payments 12 → 40. Until the broker learns where the
      // superseded epoch ended, A may redeem only up to its last checkpoint; its own release ends the epoch.
      const release = a.release(claimB.body.holder, 12, chain.b64(12));
      const unknownEnd = await call(suite.broker.api, 'POST', '/redemptions', {
        token: a.apiKey,
        key: 'a-0',
        body: { items: [item(chain, 1, 0, 12)] },
      });
      assert.equal(unknownEnd.body.items[0].code, 'end_unknown');
      const redeemA = await call(suite.broker.api, 'POST', '/redemptions', {
        token: a.apiKey,
        key: 'a-1',
        body: { items: [item(chain, 1, 0, 12, undefined, release)] },
      });
      assert.equal(redeemA.status, 200, redeemA.text);
      assert.ok(checkWire(RedemptionResponseSchema, redeemA.body));
      assert.deepEqual(redeemA.body.items, [
        { chainId: chain.chainIdB64, epoch: 1, status: 'accepted', amount: 24, fee: 0 },
      ]);
      assert.equal(redeemA.body.credited, 24);
      await assertAudit(suite.broker, 'redemption by A');

      const redeemB = await call(suite.broker.api, 'POST', '/redemptions', {
        token: b.apiKey,
        key: 'b-1',
        body: { items: [item(chain, 2, 12, 30, release), item(chain, 2, 30, 40)] },
      });
      assert.equal(redeemB.status, 200, redeemB.text);
      assert.deepEqual(
        redeemB.body.items.map((i: { status: string; amount: number; fee: number }) => [i.status, i.amount, i.fee]),
        [
          ['accepted', 36, 0],
          // The fee is floor(total gross × 2%) over all B redeemed: 56 × 2% carries to 1 here.
          ['accepted', 20, 1],
        ],
      );
      await assertAudit(suite.broker, 'redemption by B');

      // A cannot redeem past its own release, and nothing can be redeemed twice.
      const beyond = await call(suite.broker.api, 'POST', '/redemptions', {
        token: a.apiKey,
        key: 'a-2',
        body: { items: [item(chain, 1, 12, 20), item(chain, 2, 40, 41)] },
      });
      assert.deepEqual(
        beyond.body.items.map((i: { code?: string }) => i.code),
        ['beyond_release', 'not_holder'],
      );
      const twice = await call(suite.broker.api, 'POST', '/redemptions', {
        token: b.apiKey,
        key: 'b-2',
        body: { items: [item(chain, 2, 30, 40)] },
      });
      assert.equal(twice.body.items[0].code, 'overlap');

      // A bigger redemption pays exactly (to − from) × unit less the 2% fee on B's running total, rounded down.
      const big = await call(suite.broker.api, 'POST', '/redemptions', {
        token: b.apiKey,
        key: 'b-3',
        body: { items: [item(chain, 2, 40, 765)] },
      });
      assert.deepEqual(big.body.items[0], {
        chainId: chain.chainIdB64,
        epoch: 2,
        status: 'accepted',
        amount: 1450,
        fee: 29,
      });
      assert.equal(big.body.credited, 1421);
      const accountB = await call(suite.broker.api, 'GET', '/vendor/account', { token: b.apiKey });
      assert.deepEqual(accountB.body, {
        vendorId: 'vendor-b',
        balance: 36 + 19 + 1421,
        pending: 0,
        paidOut: 0,
        currency: 'NZD',
      });
      const accountA = await call(suite.broker.api, 'GET', '/vendor/account', { token: a.apiKey });
      assert.equal(accountA.body.balance, 24);
      const totals = await assertAudit(suite.broker, 'all redemptions');
      assert.equal(totals.totals.accounts.fees, -30, 'floor((24) × 2%) + floor((36 + 20 + 1450) × 2%)');

      const coins = await call(suite.broker.api, 'GET', '/coins', { token: customer.token });
      assert.equal(coins.status, 200);
      assert.ok(checkWire(CoinListSchema, coins.body), coins.text);
      const coin = coins.body.coins.find((c: { chainId: string }) => c.chainId === chain.chainIdB64);
      assert.ok(coin);
      assert.equal(coin.spentIndex, 765);
      assert.equal(coin.holder, 'vendor-b');
      assert.equal(coin.status, 'active');
      assert.equal(coin.value, 2000);
      assert.equal(coin.remaining, (1000 - 765) * 2);
      const history = await call(suite.broker.api, 'GET', '/history', { token: customer.token });
      assert.ok(checkWire(HistorySchema, history.body), history.text);
      assert.equal(history.body.events[0]?.kind, 'purchase');
      const spent = history.body.events
        .filter((e: { kind: string }) => e.kind === 'spend')
        .reduce((s: number, e: { amount: number }) => s + e.amount, 0);
      assert.equal(spent, 24 + 36 + 20 + 1450);
    });
  });
}
