import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { get, startWorld, type World } from './harness.ts';

for (const engine of testEngines()) {
  describe(`races, run for real with Promise.all on ${engine}`, () => {
    let world: World;
    before(async () => {
      world = await startWorld({ engine });
    });
    after(async () => world?.close());

    it('the same payword sent 20 times at once for different articles is accepted once', async () => {
      const a = await world.addVendor('race-a');
      const { chain } = await world.buyCoin(100);
      // Warm the chain at A so the race is on the hot path, not only on the claim.
      assert.equal((await get(`${a.url}/articles/0`, { chain, index: 1 })).status, 200);
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => get(`${a.url}/articles/${i + 1}`, { chain, index: 2 })),
      );
      assert.equal(answers.filter((r) => r.status === 200).length, 1);
      for (const r of answers.filter((x) => x.status !== 200)) {
        assert.equal(r.status, 402);
        assert.equal(r.body.code, 'already_spent');
        assert.equal(r.body.lastIndex, 2);
      }
      // And on first sight (claim in the race too).
      const { chain: fresh } = await world.buyCoin(100);
      const cold = await Promise.all(
        Array.from({ length: 20 }, (_, i) => get(`${a.url}/articles/${i + 1}`, { chain: fresh, index: 1 })),
      );
      assert.equal(cold.filter((r) => r.status === 200).length, 1);
      const acc = await a.vendor.account();
      assert.equal(acc.earned, 3);
    });

    it('the same index sent at once to A and B is accepted by at most one', async () => {
      const a = await world.addVendor('both-a');
      const b = await world.addVendor('both-b');
      for (let round = 0; round < 5; round++) {
        const { chain } = await world.buyCoin(100);
        if (round % 2 === 1) assert.equal((await get(`${a.url}/articles/x`, { chain, index: 1 })).status, 200);
        const k = round % 2 === 1 ? 2 : 1;
        const [ra, rb] = await Promise.all([
          get(`${a.url}/articles/1`, { chain, index: k }),
          get(`${b.url}/articles/1`, { chain, index: k }),
        ]);
        const ok = [ra, rb].filter((r) => r.status === 200).length;
        assert.ok(ok <= 1, `round ${round}: both accepted index ${k}`);
        for (const r of [ra, rb])
          if (r.status !== 200) assert.ok([402, 503].includes(r.status), JSON.stringify(r.body));
      }
      await a.vendor.redeemNow();
      await b.vendor.redeemNow();
      const result = await world.audit();
      assert.equal(result.ok, true, result.discrepancies.join('\n'));
    });

    it('a move to B while payments are in flight at A never spends or redeems a unit twice', async () => {
      const a = await world.addVendor('flight-a');
      const b = await world.addVendor('flight-b');
      const { chain } = await world.buyCoin(200);
      assert.equal((await get(`${a.url}/articles/0`, { chain, index: 1 })).status, 200);
      // Indexes 2..30 go to A while B pays 15..20 at the same time: whichever index each accepts, no index is
      // accepted twice, and what both redeem covers each unit at most once.
      const atA = Array.from({ length: 29 }, (_, i) => get(`${a.url}/articles/a${i}`, { chain, index: i + 2 }));
      const atB = Array.from({ length: 6 }, (_, i) => get(`${b.url}/articles/b${i}`, { chain, index: i + 15 }));
      const answers = await Promise.all([...atA, ...atB]);
      const accepted = answers
        .map((r, i) => ({ r, index: i < 29 ? i + 2 : i - 29 + 15, at: i < 29 ? 'a' : 'b' }))
        .filter((x) => x.r.status === 200);
      const seen = new Set<number>();
      for (const x of accepted) {
        assert.ok(!seen.has(x.index), `index ${x.index} accepted twice`);
        seen.add(x.index);
      }
      const ra = await a.vendor.redeemNow();
      const rb = await b.vendor.redeemNow();
      const accA = await a.vendor.account();
      const accB = await b.vendor.account();
      // Every redeemed unit was a paid unit, and no unit is redeemed twice: together at most the highest index.
      const highest = Math.max(...seen);
      assert.ok(accA.redeemed + accB.redeemed <= highest, `${accA.redeemed} + ${accB.redeemed} > ${highest}`);
      assert.equal(ra.rejected + rb.rejected, 0);
      assert.equal(accA.redeemed, accA.earned);
      assert.equal(accB.redeemed, accB.earned);
      const result = await world.audit();
      assert.equal(result.ok, true, result.discrepancies.join('\n'));
    });
  });
}
