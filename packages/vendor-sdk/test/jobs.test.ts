import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openDatabase, sql } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { get, startWorld, type World } from './harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const engine of testEngines()) {
  describe(`release endpoint, lease renewal and interrupted redemption on ${engine}`, () => {
    let world: World;
    before(async () => {
      // Leases of 6 s: renewal is due in the last third (2 s), so a loaded box has seconds of margin either side.
      world = await startWorld({ engine, leaseTtlSeconds: 6 });
    });
    after(async () => world?.close());

    it('repeats the same release statement and refuses certificates that do not name it', async () => {
      const a = await world.addVendor('rel-a');
      const b = await world.addVendor('rel-b');
      const { chain } = await world.buyCoin(20);
      assert.equal((await get(`${a.url}/articles/1`, { chain, index: 2 })).status, 200);
      assert.equal((await get(`${b.url}/articles/1`, { chain, index: 3 })).status, 200);
      const loaded = await b.store.loadChain(chain.chainIdB64);
      const holder = loaded?.epochs.at(-1)?.holder;
      assert.ok(holder);
      const post = (url: string, body: unknown) =>
        fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const first = await post(`${a.url}/netpay/release`, { holder });
      assert.equal(first.status, 200);
      const again = await post(`${a.url}/netpay/release`, { holder });
      const r1 = (await first.json()) as { release: { index: number; toVendorId: string } };
      assert.deepEqual(await again.json(), r1);
      assert.equal(r1.release.index, 2);
      assert.equal(r1.release.toVendorId, 'rel-b');
      const forged = await post(`${a.url}/netpay/release`, { holder: { ...holder, epoch: holder.epoch + 5 } });
      assert.equal(forged.status, 403);
      const notMine = await post(`${b.url}/netpay/release`, { holder });
      assert.equal(notMine.status, 403);
      assert.equal(((await notMine.json()) as { code: string }).code, 'forbidden');
    });

    it('renews leases near expiry; a superseded lease stops the vendor', async () => {
      const a = await world.addVendor('lease-a');
      const b = await world.addVendor('lease-b');
      const { chain } = await world.buyCoin(20);
      assert.equal((await get(`${a.url}/articles/1`, { chain, index: 1 })).status, 200);
      assert.deepEqual(await a.vendor.renewLeases(), { renewed: 0, superseded: 0, failed: 0 });
      await sleep(4100);
      assert.deepEqual(await a.vendor.renewLeases(), { renewed: 1, superseded: 0, failed: 0 });
      assert.equal((await get(`${a.url}/articles/2`, { chain, index: 2 })).status, 200);
      // A becomes unreachable; its lease runs out; B's claim is forced and starts at A's checkpoint (1).
      await a.app.close();
      await sleep(6100);
      const atB = await get(`${b.url}/articles/1`, { chain, index: 3 });
      assert.equal(atB.status, 200, JSON.stringify(atB.body));
      const report = await a.vendor.renewLeases();
      assert.equal(report.superseded, 1);
      await a.close();
    });

    it('a redemption run empties the payment journal of what it redeemed; the account stays the same', async () => {
      const a = await world.addVendor('pruning');
      const { chain } = await world.buyCoin(50);
      for (let i = 1; i <= 3; i++) assert.equal((await get(`${a.url}/articles/${i}`, { chain, index: i })).status, 200);
      const journal = async () => {
        const db = openDatabase<unknown>(a.storeUrl);
        try {
          const { rows } = await sql<{ idx: number }>`SELECT idx FROM netpay_payment_journal
            WHERE chain_id = ${chain.chainIdB64} ORDER BY idx`.execute(db.db);
          return rows.map((r) => Number(r.idx));
        } finally {
          await db.close();
        }
      };
      assert.deepEqual(await journal(), [1, 2, 3]);
      const before = await a.vendor.account();
      assert.equal((await a.vendor.redeemNow()).accepted, 1);
      assert.deepEqual(await journal(), []);
      const after = await a.vendor.account();
      assert.deepEqual([after.earned, after.pending, after.redeemed], [before.earned, 0, before.earned]);
      // Paid after the run: in the journal until the next one.
      assert.equal((await get(`${a.url}/articles/4`, { chain, index: 4 })).status, 200);
      assert.deepEqual(await journal(), [4]);
    });

    it('an interrupted redemption re-sends the same key and body and is credited once', async () => {
      let dropNext = true;
      const flaky: typeof fetch = async (input, init) => {
        const res = await fetch(input, init);
        if (String(input).endsWith('/redemptions') && dropNext) {
          dropNext = false;
          throw new Error('connection reset after the broker answered');
        }
        return res;
      };
      const a = await world.addVendor('flaky', { fetch: flaky });
      const { chain } = await world.buyCoin(500);
      for (let i = 1; i <= 4; i++)
        assert.equal((await get(`${a.url}/articles/${i}`, { chain, index: i * 100 })).status, 200);
      const first = await a.vendor.redeemNow();
      assert.ok(first.error);
      assert.equal(first.batches, 0);
      const second = await a.vendor.redeemNow();
      assert.equal(second.batches, 1);
      assert.equal(second.accepted, 1);
      const account = await a.vendor.account();
      assert.equal(account.redeemed, 400);
      assert.equal(account.balance, 400 - Math.floor((400 * world.feeBps) / 10_000));
      assert.equal((await a.vendor.redeemNow()).batches, 0);
      const result = await world.audit();
      assert.equal(result.ok, true, result.discrepancies.join('\n'));
    });
  });
}
