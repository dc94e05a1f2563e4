import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { feeFor, parseReceipt } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import { get, startWorld, type World } from './harness.ts';

for (const engine of testEngines()) {
  describe(`paying at two vendors and redeeming (real bank, broker and vendors over HTTP) on ${engine}`, () => {
    let world: World;
    before(async () => {
      world = await startWorld({ engine, feeBps: 200 });
    });
    after(async () => world?.close());

    it('answers an unpaid request with the 402 challenge (JSON for clients, HTML for browsers)', async () => {
      const a = await world.addVendor('challenger');
      const json = await get(`${a.url}/articles/1`);
      assert.equal(json.status, 402);
      assert.equal(
        json.headers.get('www-authenticate'),
        `NetPay realm="challenger", price="1", currency="NZD", broker="${world.brokerUrl}"`,
      );
      assert.match(json.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(json.body.code, 'payment_required');
      assert.equal(json.body.type, 'urn:netpay:error:payment_required');
      assert.deepEqual(
        [json.body.price, json.body.currency, json.body.vendor, json.body.broker, json.body.connect],
        [1, 'NZD', 'challenger', world.brokerUrl, `${world.brokerUrl}/connect`],
      );
      const html = await get(`${a.url}/articles/1`, undefined, { accept: 'text/html,*/*;q=0.8' });
      assert.equal(html.status, 402);
      assert.match(html.headers.get('content-type') ?? '', /text\/html/);
      assert.ok(html.headers.get('www-authenticate'));
      assert.match(html.text, /Pay with NetPay/);
      const bearer = await get(`${a.url}/articles/1`, undefined, { authorization: 'Bearer abc' });
      assert.equal(bearer.body.code, 'payment_required');
      const free = await get(`${a.url}/free`);
      assert.equal(free.status, 200);
      await a.close();
    });

    it('moves a coin between vendors: receipts, release, redemption, fees, audit', async () => {
      const a = await world.addVendor('mover-a', { prices: { '1': 50, '2': 50, '3': 50, '4': 50, '5': 50 } });
      const b = await world.addVendor('mover-b', { prices: { '1': 50, '2': 50, '3': 50, '4': 50, '5': 50 } });
      const { chain } = await world.buyCoin(50 * 20, 50);

      for (let i = 1; i <= 3; i++) {
        const res = await get(`${a.url}/articles/${i}`, { chain, index: i });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        const receipt = parseReceipt(res.headers.get('netpay-receipt') ?? undefined);
        assert.deepEqual(receipt, { chain: chain.chainIdB64, index: i, balance: (20 - i) * 50 });
        assert.deepEqual(res.body.paid, {
          chainId: chain.chainIdB64,
          index: i,
          balanceMinor: (20 - i) * 50,
          charged: true,
        });
      }
      // B claims, A releases at 3, B continues from 3.
      const stale = await get(`${b.url}/articles/4`, { chain, index: 3 });
      assert.equal(stale.status, 402);
      assert.equal(stale.body.code, 'already_spent');
      assert.equal(stale.body.lastIndex, 3);
      for (let i = 4; i <= 5; i++) {
        const res = await get(`${b.url}/articles/${i}`, { chain, index: i });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(parseReceipt(res.headers.get('netpay-receipt') ?? undefined).balance, (20 - i) * 50);
      }
      // A no longer takes the chain from where it left it.
      const atA = await get(`${a.url}/articles/5`, { chain, index: 4 });
      assert.equal(atA.status, 402);
      assert.equal(atA.body.code, 'already_spent');

      const ra = await a.vendor.redeemNow();
      const rb = await b.vendor.redeemNow();
      assert.deepEqual(
        { ...ra, credited: ra.credited },
        { batches: 1, accepted: 1, rejected: 0, credited: 150 - feeFor(150, 200) },
      );
      assert.deepEqual(rb, { batches: 1, accepted: 1, rejected: 0, credited: 100 - feeFor(100, 200) });
      // Running again finds nothing to redeem.
      assert.deepEqual(await a.vendor.redeemNow(), { batches: 0, accepted: 0, rejected: 0, credited: 0 });

      const accA = await a.vendor.account();
      assert.equal(accA.earned, 150);
      assert.equal(accA.pending, 0);
      assert.equal(accA.redeemed, 150);
      assert.equal(accA.balance, 147);
      const accB = await b.vendor.account();
      assert.equal(accB.earned, 100);
      assert.equal(accB.balance, 98);

      const result = await world.audit();
      assert.equal(result.ok, true, result.discrepancies.join('\n'));
    });
  });
}
