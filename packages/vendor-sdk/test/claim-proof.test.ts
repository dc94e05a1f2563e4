import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { b64uEncode, feeFor } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import { BrokerClient, claimWithProof, RemoteError, walletProofs } from '../src/index.ts';
import { get, startWorld, type World } from './harness.ts';

/**
 * Issue 7 items 1 and 3 at the vendor side, over real HTTP with the real broker and bank: claims carry a proof of
 * payment, the new holder reports the release it started from at once, and redemptions of a superseded epoch are
 * bounded by its end.
 */
for (const engine of testEngines()) {
  describe(`claims with a proof of payment and release reports on ${engine}`, () => {
    let world: World;
    before(async () => {
      world = await startWorld({ engine, feeBps: 200 });
    });
    after(async () => world?.close());

    /** The broker's view of a chain: who holds which epoch, and what it knows of each epoch's end. */
    const brokerEpochs = async (chainId: string) => {
      const rows = await world.brokerDb
        .selectFrom('epochs')
        .select(['epoch', 'vendor_id', 'release_index', 'checkpoint_index'])
        .where('chain_id', '=', chainId)
        .orderBy('epoch')
        .execute();
      return rows.map((r) => ({
        epoch: Number(r.epoch),
        vendor: r.vendor_id,
        releaseIndex: r.release_index === null ? null : Number(r.release_index),
        checkpointIndex: r.checkpoint_index === null ? null : Number(r.checkpoint_index),
      }));
    };
    const forged = b64uEncode(new Uint8Array(32).fill(42));
    /** A network where the broker's checkpoint cannot be reached (everything else can). */
    const noCheckpoints: typeof fetch = async (input, init) => {
      if (String(input instanceof Request ? input.url : input).endsWith('/checkpoint')) {
        throw new TypeError('connection refused');
      }
      return fetch(input, init);
    };

    it('a vendor claiming without a payword is refused and the coin stays with its holder', async () => {
      const a = await world.addVendor(`holder-${engine}`);
      const b = await world.addVendor(`taker-${engine}`);
      const { chain, touchstone } = await world.buyCoin(20);
      assert.equal((await get(`${a.url}/articles/1`, { chain, index: 2 })).status, 200);

      const asB = new BrokerClient({ brokerUrl: world.brokerUrl, apiKey: b.apiKey });
      const refusedAs = (code: string) => (error: unknown) =>
        error instanceof RemoteError && error.status === 402 && error.code === code;
      await assert.rejects(asB.claim(chain.chainIdB64), refusedAs('invalid_payword'));
      // The anchor is no fresh payword either.
      await assert.rejects(
        asB.claim(chain.chainIdB64, { proof: { index: 0, payword: touchstone.anchor } }),
        refusedAs('invalid_payword'),
      );
      assert.deepEqual(await brokerEpochs(chain.chainIdB64), [
        { epoch: 1, vendor: `holder-${engine}`, releaseIndex: null, checkpointIndex: null },
      ]);
      // The owner pays on at A.
      const next = await get(`${a.url}/articles/2`, { chain, index: 3 });
      assert.equal(next.status, 200, JSON.stringify(next.body));
    });

    it('a forged Authorization header presented at a second vendor moves nothing', async () => {
      const a = await world.addVendor(`first-${engine}`);
      const b = await world.addVendor(`second-${engine}`);
      const { chain } = await world.buyCoin(20);
      assert.equal((await get(`${a.url}/articles/1`, { chain, index: 3 })).status, 200);

      for (const index of [4, 19]) {
        const res = await get(`${b.url}/articles/1`, { chain, index, payword: forged });
        assert.equal(res.status, 402);
        assert.equal(res.body.code, 'invalid_payword');
        assert.equal(res.headers.get('netpay-receipt'), null);
      }
      assert.deepEqual(await brokerEpochs(chain.chainIdB64), [
        { epoch: 1, vendor: `first-${engine}`, releaseIndex: null, checkpointIndex: null },
      ]);
      assert.equal((await b.vendor.account()).earned, 0);
      const next = await get(`${a.url}/articles/2`, { chain, index: 4 });
      assert.equal(next.status, 200, JSON.stringify(next.body));
      assert.equal((await a.vendor.account()).earned, 4);
    });

    it('the new holder reports the release to the broker right after the move, before its first payment is served', async () => {
      const a = await world.addVendor(`from-${engine}`);
      const b = await world.addVendor(`to-${engine}`);
      const { chain } = await world.buyCoin(20);
      assert.equal((await get(`${a.url}/articles/1`, { chain, index: 3 })).status, 200);
      const moved = await get(`${b.url}/articles/1`, { chain, index: 4 });
      assert.equal(moved.status, 200, JSON.stringify(moved.body));
      // No renewal ran: the move itself told the broker where epoch 1 ends.
      assert.deepEqual(await brokerEpochs(chain.chainIdB64), [
        { epoch: 1, vendor: `from-${engine}`, releaseIndex: 3, checkpointIndex: null },
        { epoch: 2, vendor: `to-${engine}`, releaseIndex: null, checkpointIndex: 3 },
      ]);
      assert.equal((await b.store.getEpoch(chain.chainIdB64, 2))?.releaseReported, true);
    });

    it('a release not reported yet is sent by the renewal job, after a restart too', async () => {
      const a = await world.addVendor(`prev-${engine}`);
      const b = await world.addVendor(`next-${engine}`, { fetch: noCheckpoints });
      const { chain } = await world.buyCoin(20);
      assert.equal((await get(`${a.url}/articles/1`, { chain, index: 5 })).status, 200);
      // The report fails; the payment is served all the same.
      assert.equal((await get(`${b.url}/articles/1`, { chain, index: 6 })).status, 200);
      assert.equal((await brokerEpochs(chain.chainIdB64))[0]?.releaseIndex, null);
      assert.equal((await b.store.getEpoch(chain.chainIdB64, 2))?.releaseReported, false);

      const identity = { ...b };
      await b.close();
      const restarted = await world.startVendor(identity);
      assert.deepEqual(await restarted.vendor.renewLeases(), { renewed: 1, superseded: 0, failed: 0 });
      assert.equal((await brokerEpochs(chain.chainIdB64))[0]?.releaseIndex, 5);
      assert.equal((await restarted.store.getEpoch(chain.chainIdB64, 2))?.releaseReported, true);
      // Reported once: the next pass has nothing to send (the lease is fresh).
      assert.deepEqual(await restarted.vendor.renewLeases(), { renewed: 0, superseded: 0, failed: 0 });
      assert.equal((await get(`${restarted.url}/articles/2`, { chain, index: 7 })).status, 200);
    });

    it("the previous holder's redemption carries its own release, which ends its epoch", async () => {
      const a = await world.addVendor(`signer-${engine}`);
      const b = await world.addVendor(`silent-${engine}`, { fetch: noCheckpoints });
      const { chain } = await world.buyCoin(20);
      assert.equal((await get(`${a.url}/articles/1`, { chain, index: 4 })).status, 200);
      assert.equal((await get(`${b.url}/articles/1`, { chain, index: 5 })).status, 200);
      assert.equal((await brokerEpochs(chain.chainIdB64))[0]?.releaseIndex, null, 'B could not report');
      // Without `to.release` the broker could not bound epoch 1 (end_unknown); with it, A is paid up to it.
      const report = await a.vendor.redeemNow();
      assert.deepEqual(report, { batches: 1, accepted: 1, rejected: 0, credited: 4 - feeFor(4, 200) });
      assert.equal((await brokerEpochs(chain.chainIdB64))[0]?.releaseIndex, 4);
    });

    it('a superseded epoch whose end the broker does not know yet is redeemed later, not given up', async () => {
      const a = await world.addVendor(`early-${engine}`);
      const b = await world.addVendor(`late-${engine}`);
      const { chain } = await world.buyCoin(20);
      assert.equal((await get(`${a.url}/articles/1`, { chain, index: 5 })).status, 200);
      // A stops answering: B claims with the customer's payword but cannot obtain A's release yet.
      await a.app.close();
      const stuck = await get(`${b.url}/articles/1`, { chain, index: 6 });
      assert.equal(stuck.status, 503);
      assert.equal(stuck.body.code, 'previous_holder_unavailable');
      const identity = { ...a };
      await a.close();
      const a2 = await world.startVendor(identity);

      // A's epoch 1 is superseded and its end unknown: the item is deferred, the redeemed point stays.
      const early = await a2.vendor.redeemNow();
      assert.deepEqual(early, { batches: 1, accepted: 0, rejected: 0, credited: 0, deferred: 1 });
      const epoch1 = await a2.store.getEpoch(chain.chainIdB64, 1);
      assert.equal(epoch1?.redeemed, null);
      assert.equal(epoch1?.rejectedMinor, 0);

      // B obtains the release (and reports it); A's next run is paid in full.
      const served = await get(`${b.url}/articles/1`, { chain, index: 6 });
      assert.equal(served.status, 200, JSON.stringify(served.body));
      const later = await a2.vendor.redeemNow();
      assert.deepEqual(later, { batches: 1, accepted: 1, rejected: 0, credited: 5 - feeFor(5, 200) });
      const audit = await world.audit();
      assert.equal(audit.ok, true, audit.discrepancies.join('\n'));
    });

    it('a server-side wallet claiming back its coin derives its proof above the point the broker knows', async () => {
      const a = await world.addVendor(`spent-${engine}`);
      const b = await world.addVendor(`elsewhere-${engine}`);
      const c = await world.addVendor(`returning-${engine}`);
      const { chain } = await world.buyCoin(40);
      assert.equal((await get(`${a.url}/articles/1`, { chain, index: 10 })).status, 200);
      assert.equal((await get(`${b.url}/articles/1`, { chain, index: 11 })).status, 200); // reports A's release at 10
      // C last saw the coin at 2: w_3 is no proof any more; the broker says it knows 10, so C presents w_11.
      const asC = new BrokerClient({ brokerUrl: world.brokerUrl, apiKey: c.apiKey });
      const facts = { vendorId: c.id, priceMinor: 1, currency: 'NZD', brokerUrl: world.brokerUrl };
      const wallet = { allowanceIndex: chain.length, payword: (i: number) => chain.b64(i) };
      const outcome = await claimWithProof(asC, chain.chainIdB64, walletProofs(wallet, 2, 1), facts);
      assert.equal(outcome.kind, 'claimed', outcome.kind === 'refused' ? JSON.stringify(outcome.problem.body) : '');
      assert.deepEqual(
        (await brokerEpochs(chain.chainIdB64)).map((e) => [e.epoch, e.vendor]),
        [
          [1, a.id],
          [2, b.id],
          [3, c.id],
        ],
      );
      // A proof the customer presented is never changed: a stale payword stays refused.
      const d = await world.addVendor(`replayer-${engine}`);
      const asD = new BrokerClient({ brokerUrl: world.brokerUrl, apiKey: d.apiKey });
      const stale = await claimWithProof(asD, chain.chainIdB64, { index: 3, payword: chain.b64(3) }, facts);
      assert.equal(stale.kind === 'refused' && stale.problem.body.code, 'invalid_payword');
    });
  });
}
