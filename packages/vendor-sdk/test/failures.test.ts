import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { b64uEncode, formatAuthorization, PaywordChain } from '@netpay/protocol';
import { ManualClock } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { freePort, get, startWorld, type World } from './harness.ts';

for (const engine of testEngines()) {
  describe(`refused payments: their problem codes, nothing charged on ${engine}`, () => {
    let world: World;
    before(async () => {
      world = await startWorld({ engine });
    });
    after(async () => world?.close());

    it('replays, forged and truncated paywords, indexes past the chain, malformed headers', async () => {
      const a = await world.addVendor('refuser');
      const { chain } = await world.buyCoin(10);
      const url = `${a.url}/articles/1`;
      const ok = await get(url, { chain, index: 1 });
      assert.equal(ok.status, 200);

      const expect = async (res: Promise<Awaited<ReturnType<typeof get>>>, status: number, code: string) => {
        const r = await res;
        assert.equal(r.status, status, JSON.stringify(r.body));
        assert.equal(r.body.code, code);
        assert.equal(r.body.type, `urn:netpay:error:${code}`);
        assert.ok(r.headers.get('www-authenticate')?.startsWith('NetPay realm="refuser"'));
        assert.equal(r.headers.get('netpay-receipt'), null);
        return r;
      };
      // A replay for another article; the same request again is a retry, served free.
      const replay = await expect(get(`${a.url}/articles/2`, { chain, index: 1 }), 402, 'already_spent');
      assert.equal(replay.body.lastIndex, 1);
      const retry = await get(url, { chain, index: 1 });
      assert.equal(retry.status, 200);
      assert.equal(retry.body.paid.charged, false);
      // Forged: w_3 presented as index 2; random bytes.
      await expect(get(`${a.url}/articles/3`, { chain, index: 2, payword: chain.b64(3) }), 402, 'invalid_payword');
      await expect(
        get(`${a.url}/articles/3`, { chain, index: 2, payword: b64uEncode(new Uint8Array(32).fill(7)) }),
        402,
        'invalid_payword',
      );
      // Truncated payword: a malformed header.
      const truncated = `NetPay chain="${chain.chainIdB64}", index="2", payword="${chain.b64(2).slice(0, 20)}"`;
      await expect(get(`${a.url}/articles/3`, undefined, { authorization: truncated }), 400, 'bad_request');
      // Past the end of the chain (length 10).
      const past = formatAuthorization({ chain: chain.chainIdB64, index: 11, payword: chain.b64(10) });
      await expect(get(`${a.url}/articles/3`, undefined, { authorization: past }), 402, 'chain_exhausted');
      // Not enough: price 1 needs one unit, index 1 again pays none (already spent); jump is fine.
      for (const bad of ['NetPay', 'NetPay chain="x"', 'NetPay chain=abc, index=1', 'NetPay index="1"']) {
        await expect(get(`${a.url}/articles/3`, undefined, { authorization: bad }), 400, 'bad_request');
      }
      // Unknown chain at the broker.
      const stranger = PaywordChain.generate(5);
      await expect(get(`${a.url}/articles/3`, { chain: stranger, index: 1 }), 402, 'unknown_chain');
      // Nothing was charged beyond the first payment.
      const acc = await a.vendor.account();
      assert.equal(acc.earned, 1);
      // The chain still works from where it was.
      assert.equal((await get(`${a.url}/articles/3`, { chain, index: 2 })).status, 200);
      // Spending the whole chain, then one more.
      assert.equal((await get(`${a.url}/articles/4`, { chain, index: 10 })).status, 200);
      await expect(get(`${a.url}/articles/5`, { chain, index: 10 }), 402, 'chain_exhausted');
    });

    it('an expired coin is chain_expired; another currency is currency_mismatch', async () => {
      const late = new ManualClock(new Date(Date.now() + 2 * 365 * 86_400_000));
      const a = await world.addVendor('time-traveller', { clock: late });
      const { chain } = await world.buyCoin(10);
      const expired = await get(`${a.url}/articles/1`, { chain, index: 1 });
      assert.equal(expired.status, 402);
      assert.equal(expired.body.code, 'chain_expired');
      const aud = await world.addVendor('aussie', { currency: 'AUD' });
      const { chain: c2 } = await world.buyCoin(10);
      const mismatch = await get(`${aud.url}/articles/1`, { chain: c2, index: 1 });
      assert.equal(mismatch.status, 402);
      assert.equal(mismatch.body.code, 'currency_mismatch');
      assert.match(mismatch.headers.get('www-authenticate') ?? '', /currency="AUD"/);
    });

    it('broker down is 503 broker_unavailable; previous holder down is 503 previous_holder_unavailable', async () => {
      const deadPort = await freePort();
      const orphan = await world.addVendor('orphan', { brokerUrl: `http://127.0.0.1:${deadPort}`, currency: 'NZD' });
      const { chain } = await world.buyCoin(10);
      const down = await get(`${orphan.url}/articles/1`, { chain, index: 1 });
      assert.equal(down.status, 503);
      assert.equal(down.body.code, 'broker_unavailable');

      const a = await world.addVendor('gone-a');
      const b = await world.addVendor('gone-b');
      assert.equal((await get(`${a.url}/articles/1`, { chain, index: 1 })).status, 200);
      await a.app.close(); // A stops answering (its release URL is dead)
      const r = await get(`${b.url}/articles/1`, { chain, index: 2 });
      assert.equal(r.status, 503);
      assert.equal(r.body.code, 'previous_holder_unavailable');
      assert.equal((await b.vendor.account()).earned, 0);
      // A retry once A is back goes through (the claim is idempotent and B obtains the release).
      const identity = { ...a };
      await a.close();
      const a2 = await world.startVendor(identity);
      const again = await get(`${b.url}/articles/1`, { chain, index: 2 });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal((await b.vendor.account()).earned, 1);
      await a2.close();
    });
  });
}
