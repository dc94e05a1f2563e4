import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { ManualClock } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { startReleaseServer } from '@netpay/test-kit';
import { type BrokerUnderTest, brokerSuite, call, item, proof, type TestVendor } from './harness.ts';

async function assertAudit(broker: BrokerUnderTest) {
  const result = await broker.audit();
  assert.ok(result.ok, result.discrepancies.join('; '));
  return result;
}

const releaseServer = startReleaseServer;

for (const engine of testEngines()) {
  describe(`leases, take-backs and refunds on ${engine}`, () => {
    const clock = new ManualClock('2026-11-24T00:00:00Z');
    const suite = brokerSuite(engine, { broker: { clock, config: { leaseTtlSeconds: 60 } } });

    // A claim that opens a new epoch carries the customer's payword w_k as proof (§5 v1.1).
    const claim = (v: TestVendor, chain: PaywordChain, proofIndex?: number) =>
      call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: v.apiKey,
        ...(proofIndex !== undefined ? { body: proof(chain, proofIndex) } : {}),
      });
    const redeem = (v: TestVendor, key: string, items: unknown[]) =>
      call(suite.broker.api, 'POST', '/redemptions', { token: v.apiKey, key, body: { items } });

    test('a claim after the holder’s lease expired is forced: it starts at the last checkpoint and bounds the old holder', async () => {
      const { token } = await suite.broker.customer();
      const chain = PaywordChain.generate(100);
      assert.equal((await suite.broker.buyCoin(token, { amount: 100, chain })).status, 201);
      const a = await suite.broker.addVendor('forced-a');
      const b = await suite.broker.addVendor('forced-b');
      assert.equal((await claim(a, chain, 1)).status, 200);
      clock.advance(30_000);
      const cp = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
        token: a.apiKey,
        body: { epoch: 1, index: 7, payword: chain.b64(7) },
      });
      assert.equal(cp.status, 200);
      assert.equal(cp.body.holder.expiresAt, '2026-11-24T00:01:30Z', 'checkpoint renews the lease');
      clock.advance(61_000);
      const forced = await claim(b, chain, 10);
      assert.equal(forced.status, 200);
      assert.equal(forced.body.holder.epoch, 2);
      assert.deepEqual(forced.body.start, { index: 7, payword: chain.b64(7) });
      assert.equal(forced.body.previous.vendorId, 'forced-a');

      const lateCp = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
        token: a.apiKey,
        body: { epoch: 1, index: 9, payword: chain.b64(9) },
      });
      assert.equal(lateCp.body.code, 'lease_superseded');
      const aRes = await redeem(a, 'fa-1', [item(chain, 1, 0, 9), item(chain, 1, 0, 7)]);
      assert.deepEqual(
        aRes.body.items.map((i: { status: string; code?: string }) => i.code ?? i.status),
        ['beyond_release', 'accepted'],
      );
      const bRes = await redeem(b, 'fb-1', [item(chain, 2, 7, 20)]);
      assert.equal(bRes.body.items[0].status, 'accepted', bRes.text);
      await assertAudit(suite.broker);
    });

    test('a holder that cannot reach its predecessor repeats the claim and gets a start once that lease runs out', async () => {
      const { token } = await suite.broker.customer();
      const chain = PaywordChain.generate(100);
      await suite.broker.buyCoin(token, { amount: 100, chain });
      const a = await suite.broker.addVendor('repeat-a');
      const b = await suite.broker.addVendor('repeat-b');
      const c = await suite.broker.addVendor('repeat-c');
      const claimA = await claim(a, chain, 1);
      assert.equal(claimA.body.start, null);
      const first = await claim(b, chain, 2);
      assert.equal(first.body.start, null);
      assert.equal(first.body.previous.vendorId, 'repeat-a');
      const repeat = await claim(b, chain);
      assert.equal(repeat.text, first.text, 'idempotent while the predecessor’s lease is valid');
      clock.advance(61_000);
      // B's own lease ran out too; nobody else claimed, so B renews in the same epoch, with a forced start.
      const later = await claim(b, chain);
      assert.equal(later.body.holder.epoch, 2);
      assert.notEqual(later.body.holder.expiresAt, first.body.holder.expiresAt);
      // The forced start is the highest point the broker knows: A's claim carried w_1 as its proof of payment.
      assert.deepEqual(later.body.start, { index: 1, payword: chain.b64(1) });
      const aRes = await redeem(a, 'ra-1', [item(chain, 1, 0, 3)]);
      assert.equal(aRes.body.items[0].code, 'beyond_release');
      // C takes over while B's lease is valid: C must get B's release.
      const claimC = await claim(c, chain, 3);
      assert.equal(claimC.body.holder.epoch, 3);
      assert.equal(claimC.body.start, null);
      assert.deepEqual(claimC.body.previous, {
        vendorId: 'repeat-b',
        releaseUrl: 'http://127.0.0.1:9/repeat-b/release',
        epoch: 2,
      });
      await assertAudit(suite.broker);
    });

    test('a release that shows a vendor was paid for units it had released takes them back', async () => {
      const { token } = await suite.broker.customer();
      const chain = PaywordChain.generate(100);
      await suite.broker.buyCoin(token, { amount: 1000, unit: 10, chain });
      const a = await suite.broker.addVendor('tb-a');
      const b = await suite.broker.addVendor('tb-b');
      await claim(a, chain, 1);
      const aRes = await redeem(a, 'tb-a-1', [item(chain, 1, 0, 10)]);
      assert.equal(aRes.body.items[0].amount, 100);
      assert.equal(aRes.body.items[0].fee, 2);
      const before = await call(suite.broker.api, 'GET', '/vendor/account', { token: a.apiKey });
      assert.equal(before.body.balance, 98);
      const claimB = await claim(b, chain, 11);
      // A signed that it stopped at 6, yet redeemed up to 10.
      const release = a.release(claimB.body.holder, 6, chain.b64(6));
      // The release is learned (and bounds A), but B's epoch starts where A showed it was paid to: [6,10) was A's,
      // and had A been paid out for it, paying B too would have let it out twice (collusion-payout.test.ts).
      const bRes = await redeem(b, 'tb-b-1', [item(chain, 2, 6, 12, release)]);
      assert.equal(bRes.body.items[0].code, 'invalid_payword', bRes.text);
      const bFromEnd = await redeem(b, 'tb-b-3', [item(chain, 2, 10, 12)]);
      assert.equal(bFromEnd.body.items[0].status, 'accepted', bFromEnd.text);
      assert.equal(bFromEnd.body.items[0].amount, 20);
      const after = await call(suite.broker.api, 'GET', '/vendor/account', { token: a.apiKey });
      // A keeps [0,6): 60 less fee 1.
      assert.equal(after.body.balance, 59);
      const conflicts = await suite.broker.database.db
        .selectFrom('conflicts')
        .selectAll()
        .where('chain_id', '=', chain.chainIdB64)
        .execute();
      assert.equal(conflicts.length, 1);
      assert.equal(conflicts[0]?.vendor_id, 'tb-a');
      assert.equal(conflicts[0]?.from_index, 6);
      assert.equal(conflicts[0]?.to_index, 10);
      // A cannot redeem past its release any more; B's range stands.
      const again = await redeem(a, 'tb-a-2', [item(chain, 1, 0, 10)]);
      assert.equal(again.body.items[0].code, 'beyond_release');
      // A forged release (signed by B's key for A's epoch) is refused.
      const forged = b.release(claimB.body.holder, 3, chain.b64(3), 1);
      const forgedRes = await redeem(b, 'tb-b-2', [item(chain, 2, 3, 5, { ...forged, vendorId: 'tb-a' })]);
      assert.equal(forgedRes.body.items[0].status, 'rejected');
      const audited = await assertAudit(suite.broker);
      assert.equal(audited.totals.redeemedGross, 60 + 20 + (await sumOthers()));

      async function sumOthers() {
        const rows = await suite.broker.database.db
          .selectFrom('redeemed_ranges')
          .select(['gross', 'taken_back_gross'])
          .where('chain_id', '!=', chain.chainIdB64)
          .execute();
        return rows.reduce((s, r) => s + r.gross - r.taken_back_gross, 0);
      }
    });

    test('refund: the broker claims the chain, gets the holder’s release, and refunds the unspent rest once', async () => {
      let holderVendor: TestVendor | undefined;
      const chain = PaywordChain.generate(100);
      const rs = await releaseServer(
        () => holderVendor as TestVendor,
        () => ({ index: 30, payword: chain.b64(30) }),
      );
      try {
        const customer = await suite.broker.customer();
        await suite.broker.buyCoin(customer.token, { amount: 200, unit: 2, chain });
        holderVendor = await suite.broker.addVendor('refund-a', rs.url);
        await claim(holderVendor, chain, 1);
        const bankBefore = await suite.bank.balance();
        const refund = await call(suite.broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, {
          token: customer.token,
        });
        assert.equal(refund.status, 200, refund.text);
        assert.deepEqual(refund.body, { chainId: chain.chainIdB64, refunded: 140, releasedIndex: 30 });
        assert.equal(rs.calls.length, 1);
        assert.equal(rs.calls[0]?.vendorId, 'broker');
        assert.equal(rs.calls[0]?.prevVendorId, 'refund-a');
        assert.equal(await suite.bank.balance(), bankBefore - 140);
        const twice = await call(suite.broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, {
          token: customer.token,
        });
        assert.equal(twice.status, 409);
        assert.equal(twice.body.code, 'not_refundable');
        const coins = await call(suite.broker.api, 'GET', '/coins', { token: customer.token });
        const coin = coins.body.coins.find((c: { chainId: string }) => c.chainId === chain.chainIdB64);
        assert.equal(coin.status, 'refunded');
        // The vendor still redeems what it was paid, and nothing past its release.
        const res = await redeem(holderVendor, 'refund-a-1', [item(chain, 1, 0, 31), item(chain, 1, 0, 30)]);
        assert.deepEqual(
          res.body.items.map((i: { status: string; code?: string }) => i.code ?? i.status),
          ['beyond_release', 'accepted'],
        );
        const claimAfter = await claim(holderVendor, chain, 40);
        assert.equal(claimAfter.status, 409);
        assert.equal(claimAfter.body.code, 'chain_refunding');
        await assertAudit(suite.broker);
        const history = await call(suite.broker.api, 'GET', '/history', { token: customer.token });
        assert.deepEqual(
          history.body.events.map((e: { kind: string; amount: number }) => `${e.kind}:${e.amount}`),
          ['purchase:200', 'spend:60', 'refund:140'],
        );
      } finally {
        rs.server.close();
      }
    });

    test('refund of a coin nobody claimed returns everything; another customer cannot refund it', async () => {
      const customer = await suite.broker.customer();
      const bought = await suite.broker.buyCoin(customer.token, { amount: 40 });
      const chainId = bought.body.chainId;
      const stranger = await suite.broker.customer();
      const denied = await call(suite.broker.api, 'POST', `/coins/${chainId}/refund`, { token: stranger.token });
      assert.equal(denied.status, 404);
      const refund = await call(suite.broker.api, 'POST', `/coins/${chainId}/refund`, { token: customer.token });
      assert.deepEqual(refund.body, { chainId, refunded: 40, releasedIndex: 0 });
      await assertAudit(suite.broker);
    });

    test('refund when the holder is unreachable: 503, then a forced start once its lease runs out', async () => {
      const customer = await suite.broker.customer();
      const chain = PaywordChain.generate(50);
      await suite.broker.buyCoin(customer.token, { amount: 50, chain });
      const a = await suite.broker.addVendor('refund-gone');
      await claim(a, chain, 1);
      const cp = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
        token: a.apiKey,
        body: { epoch: 1, index: 12, payword: chain.b64(12) },
      });
      assert.equal(cp.status, 200);
      const first = await call(suite.broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, {
        token: customer.token,
      });
      assert.equal(first.status, 503);
      assert.equal(first.body.code, 'previous_holder_unavailable');
      clock.advance(61_000);
      const second = await call(suite.broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, {
        token: customer.token,
      });
      assert.equal(second.status, 200, second.text);
      assert.deepEqual(second.body, { chainId: chain.chainIdB64, refunded: 38, releasedIndex: 12 });
      await assertAudit(suite.broker);
    });
  });
}
