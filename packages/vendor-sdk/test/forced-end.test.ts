import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { feeFor } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import { get, startWorld, type World } from './harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A fetch to the broker whose `n`th redemption request is answered by `answer`, given the real request to send or
 * not; `answered` counts the times it was.
 */
function nthRedemption(n: number, answer: (send: () => Promise<Response>) => Promise<Response>) {
  const seen = { requests: 0, answered: 0 };
  const wrapped: typeof fetch = (input, init) => {
    if (!String(input).endsWith('/api/v1/redemptions') || ++seen.requests !== n) return fetch(input, init);
    seen.answered++;
    return answer(() => fetch(input, init));
  };
  return { fetch: wrapped, seen };
}

/** An RFC 9457 problem answer. */
function problem(status: number, title: string, extra: Record<string, unknown> = {}): Response {
  return new Response(JSON.stringify({ type: 'about:blank', title, status, ...extra }), {
    status,
    headers: { 'content-type': 'application/problem+json' },
  });
}

// §5 v1.1: an epoch superseded by a forced claim may not be redeemed past its forced end (the previous holder's last
// checkpoint). A vendor that was unreachable while that happened holds payments above the end. The broker refuses a
// range that passes the end as a whole; the vendor must still be paid for the units below it.
for (const engine of testEngines()) {
  describe(`a vendor superseded by a forced claim on ${engine}`, () => {
    let world: World;
    before(async () => {
      // Leases of 6 s, as in jobs.test.ts: renewal is due in the last third.
      world = await startWorld({ engine, leaseTtlSeconds: 6 });
    });
    after(async () => world?.close());

    /**
     * A (reaching the broker through `fetch`) sells units 1 and 2, checkpoints at 2, sells 3 to 8 and goes down; B's
     * claim is forced and starts at 2, A's checkpoint: the forced end below which A's units are A's.
     */
    const supersededAtTwo = async (name: string, fetch: typeof globalThis.fetch) => {
      const a = await world.addVendor(`${name}-a`, { fetch });
      const b = await world.addVendor(`${name}-b`);
      const { chain } = await world.buyCoin(40);
      for (let i = 1; i <= 2; i++) assert.equal((await get(`${a.url}/articles/${i}`, { chain, index: i })).status, 200);
      await sleep(4100);
      assert.deepEqual(await a.vendor.renewLeases(), { renewed: 1, superseded: 0, failed: 0 });
      for (let i = 3; i <= 8; i++) assert.equal((await get(`${a.url}/articles/${i}`, { chain, index: i })).status, 200);
      await a.app.close();
      await sleep(6100);
      assert.equal((await get(`${b.url}/articles/1`, { chain, index: 9 })).status, 200);
      assert.equal((await a.vendor.renewLeases()).superseded, 1);
      return { a, b };
    };

    /** A's account once every unit below the forced end (2) is redeemed and the rest refused; the audit holds. */
    const paidBelowTheEnd = async (a: Awaited<ReturnType<World['addVendor']>>) => {
      const settled = await a.vendor.account();
      assert.deepEqual([settled.earned, settled.redeemed, settled.rejected, settled.pending], [8, 2, 6, 0]);
      const result = await world.audit();
      assert.equal(result.ok, true, result.discrepancies.join('\n'));
    };

    it('is paid for every unit below the forced end, and only the units above it are refused', async () => {
      const a = await world.addVendor('forced-a');
      const b = await world.addVendor('forced-b');
      const { chain } = await world.buyCoin(40);
      // Redeemed once at 2, so the range the vendor holds next starts above the epoch's start.
      for (let i = 1; i <= 2; i++) assert.equal((await get(`${a.url}/articles/${i}`, { chain, index: i })).status, 200);
      assert.equal((await a.vendor.redeemNow()).accepted, 1);
      for (let i = 3; i <= 5; i++) assert.equal((await get(`${a.url}/articles/${i}`, { chain, index: i })).status, 200);
      await sleep(4100);
      // The checkpoint at 5: the forced end below.
      assert.deepEqual(await a.vendor.renewLeases(), { renewed: 1, superseded: 0, failed: 0 });
      for (let i = 6; i <= 8; i++) assert.equal((await get(`${a.url}/articles/${i}`, { chain, index: i })).status, 200);
      // A cannot be reached for a release; its lease runs out; B's claim is forced and starts at A's checkpoint.
      await a.app.close();
      await sleep(6100);
      assert.equal((await get(`${b.url}/articles/1`, { chain, index: 9 })).status, 200);
      assert.equal((await a.vendor.renewLeases()).superseded, 1);

      const ra = await a.vendor.redeemNow();
      // 2 → 5 is A's (3 units); 5 → 8 passes the forced end and is the next holder's by the contract.
      assert.equal(ra.credited, feeFor(2, world.feeBps) + 3 - feeFor(5, world.feeBps), JSON.stringify(ra));
      assert.equal(ra.error, undefined);
      const account = await a.vendor.account();
      assert.deepEqual([account.earned, account.redeemed, account.rejected, account.pending], [8, 5, 3, 0]);
      // Nothing is left to send: the refused rest is recorded as the broker's answer.
      assert.equal((await a.vendor.redeemNow()).batches, 0);

      const rb = await b.vendor.redeemNow();
      assert.equal(rb.accepted, 1);
      const result = await world.audit();
      assert.equal(result.ok, true, result.discrepancies.join('\n'));
      await a.close();
    });

    it('a probe the broker took but whose answer came back a 408 is re-sent, not given up: no unit below the end lost', async () => {
      // The third redemption request (the probe [0, 2], below the end) reaches the broker, which accepts it; what
      // comes back is a 408, as from a proxy that gave up waiting. Given up, the batch left the store behind the
      // broker: the next run's probe was refused as an overlap and the whole range recorded as refused (found by a
      // hunt: the 2 units below the end lost).
      const timingOut = nthRedemption(3, async (send) => {
        await (await send()).arrayBuffer();
        return problem(408, 'Request Timeout');
      });
      const { a, b } = await supersededAtTwo('timeout', timingOut.fetch);

      const first = await a.vendor.redeemNow();
      assert.equal(timingOut.seen.requests, 3, 'no request after the unanswered probe');
      assert.equal(timingOut.seen.answered, 1);
      assert.notEqual(first.error, undefined, 'the run stops at the unanswered probe');
      // The next runs re-send it with its key (the broker's answer replayed), then find the end above it.
      await a.vendor.redeemNow();
      await a.vendor.redeemNow();
      assert.equal((await b.vendor.redeemNow()).accepted, 1);
      await paidBelowTheEnd(a);
      await a.close();
    });

    it('a probe refused end_unknown says nothing of the end: the run stops with nothing recorded', async () => {
      // The broker answers the probe [0, 4] `end_unknown` (rewritten here: today's broker says beyond_release). Taken
      // as the search's answer, the rest [0, 8] was recorded as refused, the 2 units below the end with it.
      const unknownEnd = nthRedemption(2, async (send) => {
        const answer = await send();
        const body = (await answer.json()) as { items: Record<string, unknown>[] };
        const items = body.items.map((item) => ({
          ...item,
          status: 'rejected',
          amount: 0,
          fee: 0,
          code: 'end_unknown',
        }));
        return new Response(JSON.stringify({ ...body, items }), {
          status: answer.status,
          headers: { 'content-type': 'application/json' },
        });
      });
      const { a } = await supersededAtTwo('unknown-end', unknownEnd.fetch);

      const first = await a.vendor.redeemNow();
      assert.match(first.error ?? '', /end_unknown/);
      const stopped = await a.vendor.account();
      assert.deepEqual([stopped.redeemed, stopped.rejected, stopped.pending], [0, 0, 8]);
      await a.vendor.redeemNow();
      await paidBelowTheEnd(a);
      await a.close();
    });

    it('a probe refused as a request (a 4xx) records nothing of the range: the next run pays every unit below the end', async () => {
      // The second probe of the search ([0, 2]) is answered 400, as a broker that will never take that body would.
      const refusing = nthRedemption(3, async () =>
        problem(400, 'Bad Request', { code: 'bad_request', detail: 'not this body' }),
      );
      const { a, b } = await supersededAtTwo('probe', refusing.fetch);

      // [0, 8] is refused beyond_release; probe [0, 4] beyond; probe [0, 2] refused 400: the run stops there, with
      // nothing recorded of the range (before, the rest [0, 8] was recorded as refused: the 2 units below the end lost).
      const first = await a.vendor.redeemNow();
      assert.equal(refusing.seen.answered, 1);
      assert.match(first.error ?? '', /probe was refused/);
      const stopped = await a.vendor.account();
      assert.deepEqual([stopped.redeemed, stopped.rejected, stopped.pending], [0, 0, 8]);
      // The next run finds the end (2) and gives up only the units above it.
      await a.vendor.redeemNow();
      assert.equal((await a.vendor.redeemNow()).batches, 0);
      assert.equal((await b.vendor.redeemNow()).accepted, 1);
      await paidBelowTheEnd(a);
      await a.close();
    });
  });
}

for (const engine of testEngines()) {
  describe(`a vendor that releases tells the broker its end itself on ${engine}`, () => {
    let world: World;
    before(async () => {
      world = await startWorld({ engine });
    });
    after(async () => world?.close());

    it('the next holder withholds the release; the releasing vendor’s redemption carries it at once', async () => {
      const a = await world.addVendor('tells-a');
      // B never reports the release it obtained (its checkpoints carrying one fail): a next holder that would rather
      // wait for A's lease to run out and be given a forced start at A's last checkpoint.
      const withholding: typeof fetch = async (input, init) => {
        if (String(input).endsWith('/checkpoint') && String(init?.body ?? '').includes('"release"')) {
          throw new Error('withheld');
        }
        return fetch(input, init);
      };
      const b = await world.addVendor('tells-b', { fetch: withholding });
      // Redemption runs an hour apart: only the release itself can make A redeem now.
      const stop = a.vendor.startBackgroundJobs({ redeemIntervalMs: 3_600_000, renewIntervalMs: 3_600_000 });
      try {
        const { chain } = await world.buyCoin(40);
        for (let i = 1; i <= 5; i++) {
          assert.equal((await get(`${a.url}/articles/${i}`, { chain, index: i })).status, 200);
        }
        assert.equal((await get(`${b.url}/articles/1`, { chain, index: 6 })).status, 200);
        const end = async () =>
          (
            await world.brokerDb
              .selectFrom('epochs')
              .select('release_index')
              .where('chain_id', '=', chain.chainIdB64)
              .where('epoch', '=', 1)
              .executeTakeFirstOrThrow()
          ).release_index;
        const deadline = Date.now() + 10_000;
        while ((await end()) === null && Date.now() < deadline) await sleep(50);
        assert.equal(await end(), 5, 'the broker knows where A stopped, from A');
        const account = await a.vendor.account();
        assert.deepEqual([account.earned, account.redeemed, account.pending], [5, 5, 0]);
      } finally {
        stop();
      }
    });

    it('a release still answered when the redemption it starts fails: the failure is a warning, not a crash', async () => {
      const warnings: { msg: string | undefined; err: unknown }[] = [];
      const logger = {
        info() {},
        error() {},
        warn: (obj: object, msg?: string) => warnings.push({ msg, err: (obj as { err?: unknown }).err }),
      };
      const a = await world.addVendor('kick-a', { logger });
      const b = await world.addVendor('kick-b');
      const stop = a.vendor.startBackgroundJobs({ redeemIntervalMs: 3_600_000, renewIntervalMs: 3_600_000 });
      try {
        const { chain } = await world.buyCoin(40);
        for (let i = 1; i <= 3; i++) {
          assert.equal((await get(`${a.url}/articles/${i}`, { chain, index: i })).status, 200);
        }
        // A's store can no longer take the redemption run's lock (a disk gone bad, say), after the release is stored.
        a.store.claimJob = () => Promise.reject(new Error('disk gone'));
        // B's claim asks A for its release: answered, and B is paid from A's end.
        assert.equal((await get(`${b.url}/articles/1`, { chain, index: 4 })).status, 200);
        const deadline = Date.now() + 5_000;
        while (warnings.length === 0 && Date.now() < deadline) await sleep(20);
        assert.deepEqual(warnings, [{ msg: 'netpay redemption after a release failed', err: 'disk gone' }]);
        // Nothing of A's was redeemed by the failed run; the units stay A's to redeem.
        const account = await a.vendor.account();
        assert.deepEqual([account.earned, account.redeemed, account.pending], [3, 0, 3]);
      } finally {
        stop();
      }
    });
  });
}
