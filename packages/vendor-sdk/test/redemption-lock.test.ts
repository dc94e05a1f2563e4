// A vendor fleet on one store redeems from one process at a time: two runs planning the same epochs each recorded
// what the other had just redeemed as refused (the vendor's books overstated what the broker refused; found by a
// review of the forced-end search). The run holds a lock in the store (redemption-job.ts, 007_job_locks).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { REDEMPTION_LOCK_MS, TAKEN_OVER } from '../src/redemption-job.ts';
import { freePort, get, startWorld, type TestVendor, type World } from './harness.ts';

for (const engine of testEngines()) {
  describe(`one redemption run at a time across a vendor's processes on ${engine}`, () => {
    let world: World;
    before(async () => {
      world = await startWorld({ engine });
    });
    after(async () => world?.close());

    it('a second process asked to redeem while the first is sending says busy and sends nothing', async () => {
      let hold: (() => void) | undefined;
      let sent!: () => void;
      const firstSent = new Promise<void>((resolve) => {
        sent = resolve;
      });
      const requests: string[] = [];
      const paused: typeof fetch = async (input, init) => {
        if (String(input).endsWith('/redemptions')) {
          requests.push('first');
          if (!hold) {
            const go = new Promise<void>((resolve) => {
              hold = resolve;
            });
            sent();
            await go;
          }
        }
        return fetch(input, init);
      };
      const a = await world.addVendor('locked-a', { fetch: paused });
      const counted: typeof fetch = async (input, init) => {
        if (String(input).endsWith('/redemptions')) requests.push('second');
        return fetch(input, init);
      };
      const a2: TestVendor = await world.startVendor({ ...a, port: await freePort() }, { fetch: counted });
      const { chain } = await world.buyCoin(40);
      for (let i = 1; i <= 4; i++) assert.equal((await get(`${a.url}/articles/${i}`, { chain, index: i })).status, 200);

      const first = a.vendor.redeemNow();
      await firstSent;
      const second = await a2.vendor.redeemNow();
      assert.deepEqual(second, { batches: 0, accepted: 0, rejected: 0, credited: 0, busy: true });
      (hold as () => void)();
      assert.equal((await first).accepted, 1);
      assert.deepEqual(requests, ['first'], 'the second process sent nothing');
      // Once the first run let go, the second may run (and finds nothing left).
      const later = await a2.vendor.redeemNow();
      assert.deepEqual(later, { batches: 0, accepted: 0, rejected: 0, credited: 0 });
      const books = await a.vendor.account();
      assert.deepEqual([books.earned, books.redeemed, books.rejected, books.pending], [4, 4, 0, 0]);
      await a2.close();
    });

    it('a run whose lock is taken over while a request is out plans and sends nothing more; the next run ends the job once', async () => {
      // The first request of the run (a batch an earlier run left unsent) outlives the lock: another process of
      // the vendor takes the run over meanwhile. Before planning again the run must see that it no longer holds
      // the lock, or both processes plan the same ranges from the same durable state.
      let mode: 'down' | 'slow' | 'through' = 'down';
      const requests: string[] = [];
      const wrapped: typeof fetch = async (input, init) => {
        if (String(input).endsWith('/redemptions')) {
          requests.push(mode);
          if (mode === 'down') throw new TypeError('fetch failed');
          if (mode === 'slow') {
            mode = 'through';
            // Time passes past the lock's end while the request is out: the other process takes it.
            const later = Date.now() + REDEMPTION_LOCK_MS + 1;
            assert.equal(
              await a.store.claimJob('redemption', 'the other process', later, later + REDEMPTION_LOCK_MS),
              true,
            );
          }
        }
        return fetch(input, init);
      };
      const a = await world.addVendor('locked-c', { fetch: wrapped });
      const { chain } = await world.buyCoin(40);
      for (let i = 1; i <= 4; i++) assert.equal((await get(`${a.url}/articles/${i}`, { chain, index: i })).status, 200);
      const unsent = await a.vendor.redeemNow();
      assert.equal(unsent.batches, 0);
      assert.equal((await a.store.pendingBatches()).length, 1, 'the first batch is left to send');
      for (let i = 5; i <= 8; i++) assert.equal((await get(`${a.url}/articles/${i}`, { chain, index: i })).status, 200);

      mode = 'slow';
      const cut = await a.vendor.redeemNow();
      assert.equal(cut.error, TAKEN_OVER);
      assert.equal(cut.batches, 1, 'the batch that was out is answered and applied');
      assert.deepEqual(requests, ['down', 'slow'], 'nothing sent after the lock was lost');
      assert.deepEqual(await a.store.pendingBatches(), [], 'and nothing planned');

      // The other process lets go (its run ended); the next run redeems the rest, once.
      await a.store.releaseJob('redemption', 'the other process');
      const rest = await a.vendor.redeemNow();
      assert.equal(rest.error, undefined);
      assert.equal(rest.accepted, 1);
      const books = await a.vendor.account();
      assert.deepEqual([books.earned, books.redeemed, books.rejected, books.pending], [8, 8, 0, 0]);
    });

    it('a lock whose holder died frees itself when it runs out', async () => {
      const a = await world.addVendor('locked-b');
      const store = a.store;
      assert.equal(await store.claimJob('redemption', 'dead', 1_000, 2_000), true);
      assert.equal(await store.claimJob('redemption', 'alive', 1_500, 2_500), false, 'held until 2,000');
      assert.equal(await store.claimJob('redemption', 'dead', 1_600, 2_600), true, 'its holder renews it');
      assert.equal(await store.claimJob('redemption', 'alive', 2_600, 3_600), true, 'run out: taken over');
      await store.releaseJob('redemption', 'dead');
      assert.equal(await store.claimJob('redemption', 'other', 2_700, 3_700), false, 'only its holder lets it go');
      await store.releaseJob('redemption', 'alive');
      assert.equal(await store.claimJob('redemption', 'other', 2_700, 3_700), true);
    });
  });
}
