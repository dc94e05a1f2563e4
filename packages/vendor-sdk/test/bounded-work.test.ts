import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { b64uEncode, formatAuthorization } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import { get, startWorld, type World } from './harness.ts';

/**
 * Issue 7 item 9 over real HTTP (bank, broker, vendor): every request costs the vendor at most `maxStepsAhead` hash
 * steps, counted by the vendor itself (`work().hashSteps`), so the assertions are on work done, not on time.
 */
for (const engine of testEngines()) {
  describe(`bounded work per request on ${engine}`, () => {
    let world: World;
    before(async () => {
      world = await startWorld({ engine });
    });
    after(async () => world?.close());

    const forged = (fill: number) => b64uEncode(new Uint8Array(32).fill(fill));

    it('checks in the order of §4 step 2: exhausted, then too_far_ahead before any hashing; oversized headers are 400', async () => {
      const v = await world.addVendor(`order-${engine}`);
      const { chain } = await world.buyCoin(3000);
      assert.equal((await get(`${v.url}/articles/1`, { chain, index: 1 })).status, 200);
      const steps = () => v.vendor.work().hashSteps;

      const before = steps();
      const far = await get(`${v.url}/articles/2`, { chain, index: 1002, payword: forged(1) });
      assert.equal(far.status, 402);
      assert.equal(far.body.code, 'too_far_ahead');
      assert.equal(far.body.lastIndex, 1);
      assert.ok(far.headers.get('www-authenticate')?.startsWith(`NetPay realm="order-${engine}"`));
      assert.equal(steps(), before, 'refused before any hashing');
      // At the bound a forged payword is hashed, exactly maxStepsAhead steps, and refused.
      const atBound = await get(`${v.url}/articles/2`, { chain, index: 1001, payword: forged(2) });
      assert.equal(atBound.body.code, 'invalid_payword');
      assert.equal(steps(), before + 1000);

      // Past the chain: chain_exhausted, though it is also far ahead and forged.
      const past = formatAuthorization({ chain: chain.chainIdB64, index: 3001, payword: forged(3) });
      const exhausted = await get(`${v.url}/articles/2`, undefined, { authorization: past });
      assert.equal(exhausted.status, 402);
      assert.equal(exhausted.body.code, 'chain_exhausted');

      // A NetPay header over the length limit is malformed (400); a long header of another scheme is not ours.
      const long = `NetPay chain="${chain.chainIdB64}", index="2", payword="${'A'.repeat(1100)}"`;
      const oversized = await get(`${v.url}/articles/2`, undefined, { authorization: long });
      assert.equal(oversized.status, 400);
      assert.equal(oversized.body.code, 'bad_request');
      const bearer = await get(`${v.url}/articles/2`, undefined, { authorization: `Bearer ${'x'.repeat(1100)}` });
      assert.equal(bearer.status, 402);
      assert.equal(bearer.body.code, 'payment_required');
      assert.equal(steps(), before + 1000);

      // The wallet's resynchronisation from lastIndex is paid, and nothing was charged for the refusals.
      const resync = await get(`${v.url}/articles/2`, { chain, index: 2 });
      assert.equal(resync.status, 200, JSON.stringify(resync.body));
      assert.equal((await v.vendor.account()).earned, 2);
    });

    it('a burst of forged far-ahead paywords from one client costs no hashing; an honest reader pays one step a payment', async () => {
      const v = await world.addVendor(`burst-${engine}`);
      const { chain: victim } = await world.buyCoin(40_000);
      const { chain: honest } = await world.buyCoin(100);
      const { chain: unseen } = await world.buyCoin(40_000);
      assert.equal((await get(`${v.url}/articles/1`, { chain: victim, index: 1 })).status, 200);
      assert.equal((await get(`${v.url}/articles/1`, { chain: honest, index: 1 })).status, 200);
      const before = v.vendor.work().hashSteps;

      // 200 forged paywords tens of thousands of steps ahead, sent at once, with the honest reader's payments
      // in between.
      const burst = Array.from({ length: 200 }, (_, i) =>
        get(`${v.url}/articles/${i}`, { chain: victim, index: 30_000 + i, payword: forged(i % 250) }),
      );
      const reads: Awaited<ReturnType<typeof get>>[] = [];
      for (let i = 2; i <= 21; i++) reads.push(await get(`${v.url}/articles/${i}`, { chain: honest, index: i }));
      const refused = await Promise.all(burst);
      assert.deepEqual(new Set(refused.map((r) => `${r.status} ${r.body.code}`)), new Set(['402 too_far_ahead']));
      assert.ok(refused.every((r) => r.body.lastIndex === 1));
      assert.deepEqual(
        reads.map((r) => r.status),
        Array(20).fill(200),
      );
      assert.equal(v.vendor.work().hashSteps - before, 20, 'one hash step per honest payment, none for the burst');

      // A chain this vendor never saw has no local bound: the broker checks the claim's proof, nothing is hashed
      // here, and nothing moves.
      const stranger = await get(`${v.url}/articles/1`, { chain: unseen, index: 35_000, payword: forged(9) });
      assert.equal(stranger.status, 402);
      assert.equal(stranger.body.code, 'invalid_payword');
      assert.equal(v.vendor.work().hashSteps - before, 20);
      const rows = await world.brokerDb
        .selectFrom('epochs')
        .select('epoch')
        .where('chain_id', '=', unseen.chainIdB64)
        .execute();
      assert.equal(rows.length, 0, 'the forged header opened no epoch');

      // Forged paywords within the bound cost at most maxStepsAhead each, and nothing else.
      const near = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          get(`${v.url}/articles/x${i}`, { chain: victim, index: 1001, payword: forged(100 + i) }),
        ),
      );
      assert.ok(near.every((r) => r.body.code === 'invalid_payword'));
      assert.equal(v.vendor.work().hashSteps - before, 20 + 10 * 1000);
    });
  });
}
