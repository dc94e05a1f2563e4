import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { HolderCertificate, ReleaseStatement } from '@netpay/protocol';
import { ManualClock } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { brokerSuite, call, item, PaywordChain, proof, type TestVendor } from './harness.ts';

/**
 * Issue 7, item 1, in every order: a customer and vendors collude to be paid twice for one chain. A customer buys
 * a 200-unit coin, pays A up to 13, moves to B (B pays nothing more than one unit, 14), hands A w_200 and asks
 * for a refund. Whatever the order of A's redemption, the refund, the report of A's release and a second release
 * A signs, the broker never lets more than 200 out for the chain, honest B is paid exactly its unit, and the
 * audit holds.
 */

const LENGTH = 200;
const TTL_SECONDS = 60;

/** One HTTP listener answering §6 release requests for several test vendors, each at a chosen index. */
async function releaseDesk(): Promise<{
  urlFor(vendorId: string): string;
  answer(vendor: TestVendor, point: (holder: HolderCertificate) => { index: number; payword: string }): void;
  server: Server;
}> {
  const answers = new Map<string, (holder: HolderCertificate) => ReleaseStatement>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const vendorId = (req.url ?? '').split('/')[1] ?? '';
      const answer = answers.get(vendorId);
      if (!answer) {
        res.writeHead(503).end();
        return;
      }
      const { holder } = JSON.parse(body) as { holder: HolderCertificate };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ release: answer(holder) }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    urlFor: (vendorId) => `http://127.0.0.1:${port}/${vendorId}/release`,
    answer: (vendor, point) => {
      answers.set(vendor.id, (holder) => {
        const p = point(holder);
        return vendor.release(holder, p.index, p.payword);
      });
    },
    server,
  };
}

for (const engine of testEngines()) {
  describe(`collusion against one chain on ${engine}`, () => {
    let desk: Awaited<ReturnType<typeof releaseDesk>>;
    let seq = 0;
    const clock = new ManualClock('2026-11-24T00:00:00Z');
    // Registered before the suite's hooks, so the desk closes before the broker does (after hooks run in order).
    after(() => {
      desk?.server.close();
    });
    const suite = brokerSuite(engine, { broker: { clock, config: { leaseTtlSeconds: TTL_SECONDS } } });
    before(async () => {
      desk = await releaseDesk();
    });

    /** The common start: coin bought, A paid to 13, B claimed with w_14 and obtained A's release at 13. */
    async function setUp() {
      seq++;
      const customer = await suite.broker.customer();
      const chain = PaywordChain.generate(LENGTH);
      assert.equal((await suite.broker.buyCoin(customer.token, { amount: LENGTH, chain })).status, 201);
      const a = await suite.broker.addVendor(`col-a-${seq}`, desk.urlFor(`col-a-${seq}`));
      const b = await suite.broker.addVendor(`col-b-${seq}`, desk.urlFor(`col-b-${seq}`));
      const claimA = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: a.apiKey,
        body: proof(chain, 1),
      });
      assert.equal(claimA.status, 200, claimA.text);
      const claimB = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: b.apiKey,
        body: proof(chain, 14),
      });
      assert.equal(claimB.status, 200, claimB.text);
      const holderB = claimB.body.holder as HolderCertificate;
      const releaseA = a.release(holderB, 13, chain.b64(13));
      // B took w_14 and will release there if the broker asks for a refund.
      desk.answer(b, () => ({ index: 14, payword: chain.b64(14) }));
      const refund = () =>
        call(suite.broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, { token: customer.token });
      const redeem = (v: TestVendor, items: unknown[]) =>
        call(suite.broker.api, 'POST', '/redemptions', {
          token: v.apiKey,
          key: `k-${seq}-${Math.random()}`,
          body: { items },
        });
      /** B reports the release it started from (v1.1), as an honest SDK does right after a move. */
      const report = (release: ReleaseStatement = releaseA) =>
        call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
          token: b.apiKey,
          body: { epoch: 2, index: release.index, payword: release.payword, release },
        });
      return { chain, a, b, holderB, releaseA, refund, redeem, report };
    }

    /** Money out for the chain: vendors' kept gross plus the refund; must never pass the value. */
    async function moneyOut(chainId: string): Promise<{ kept: Map<string, number>; refunded: number; total: number }> {
      const ranges = await suite.broker.database.db
        .selectFrom('redeemed_ranges')
        .selectAll()
        .where('chain_id', '=', chainId)
        .execute();
      const kept = new Map<string, number>();
      for (const r of ranges) kept.set(r.vendor_id, (kept.get(r.vendor_id) ?? 0) + r.gross - r.taken_back_gross);
      const row = await suite.broker.database.db
        .selectFrom('chains')
        .select('refunded_amount')
        .where('chain_id', '=', chainId)
        .executeTakeFirstOrThrow();
      const total = [...kept.values()].reduce((s, x) => s + x, 0) + row.refunded_amount;
      assert.ok(total <= LENGTH, `the broker let ${total} out for a ${LENGTH} chain`);
      const audited = await suite.broker.audit();
      assert.ok(audited.ok, audited.discrepancies.join('; '));
      return { kept, refunded: row.refunded_amount, total };
    }

    const codes = (r: { body: { items: Array<{ status: string; code?: string }> } }) =>
      r.body.items.map((i) => i.code ?? i.status);

    test('release reported at once: A cannot redeem past 13, the refund pays 186, B is paid its unit', async () => {
      const s = await setUp();
      assert.equal((await s.report()).status, 200);
      assert.deepEqual(codes(await s.redeem(s.a, [item(s.chain, 1, 0, 200)])), ['beyond_release']);
      assert.deepEqual(codes(await s.redeem(s.a, [item(s.chain, 1, 0, 13)])), ['accepted']);
      const refund = await s.refund();
      assert.equal(refund.status, 200, refund.text);
      assert.deepEqual(refund.body, { chainId: s.chain.chainIdB64, refunded: 186, releasedIndex: 14 });
      assert.deepEqual(codes(await s.redeem(s.b, [item(s.chain, 2, 13, 14)])), ['accepted']);
      const out = await moneyOut(s.chain.chainIdB64);
      assert.deepEqual([out.kept.get(s.a.id), out.kept.get(s.b.id), out.refunded], [13, 1, 186]);
    });

    test('release never reported, A redeems first: bounded by its last checkpoint until the end is known', async () => {
      const s = await setUp();
      // The original attack: A redeems 0 → 200 on its superseded epoch. Its end is unknown, so it gets nothing.
      assert.deepEqual(codes(await s.redeem(s.a, [item(s.chain, 1, 0, 200)])), ['end_unknown']);
      const refund = await s.refund();
      assert.deepEqual(refund.body, { chainId: s.chain.chainIdB64, refunded: 186, releasedIndex: 14 });
      // After the refund, every epoch is capped at the refund index, even with A's own release in hand.
      const fake = s.a.release(s.holderB, 200, s.chain.b64(200));
      assert.deepEqual(codes(await s.redeem(s.a, [item(s.chain, 1, 0, 200, undefined, fake)])), ['beyond_release']);
      assert.deepEqual(codes(await s.redeem(s.a, [item(s.chain, 1, 0, 13, undefined, s.releaseA)])), ['accepted']);
      assert.deepEqual(codes(await s.redeem(s.b, [item(s.chain, 2, 13, 14, s.releaseA)])), ['accepted']);
      const out = await moneyOut(s.chain.chainIdB64);
      assert.equal(out.total, 200);
      assert.deepEqual([out.kept.get(s.a.id), out.kept.get(s.b.id), out.refunded], [13, 1, 186]);
    });

    test('refund first, then A redeems the whole chain: refused, nothing out beyond the value', async () => {
      const s = await setUp();
      assert.equal((await s.refund()).body.refunded, 186);
      assert.deepEqual(codes(await s.redeem(s.a, [item(s.chain, 1, 0, 200)])), ['end_unknown']);
      assert.equal((await s.report()).status, 409, 'the renewal is refused: the chain is being refunded');
      // ... but the release it carried was recorded: A's epoch now ends at 13.
      assert.deepEqual(codes(await s.redeem(s.a, [item(s.chain, 1, 0, 200)])), ['beyond_release']);
      const out = await moneyOut(s.chain.chainIdB64);
      assert.ok(out.total <= 200);
    });

    test('A signs a second release at 200 and redeems with it first: the real release takes it back (equivocation)', async () => {
      const s = await setUp();
      const fake = s.a.release(s.holderB, 200, s.chain.b64(200));
      // Accepted, but held from payout: it reaches B's claim while B's start is unknown (collusion-payout.test.ts).
      assert.deepEqual(codes(await s.redeem(s.a, [item(s.chain, 1, 0, 200, undefined, fake)])), ['accepted']);
      // B reports the release it really started from: A signed two different releases for epoch 1.
      assert.equal((await s.report()).status, 200);
      const conflicts = await suite.broker.database.db
        .selectFrom('conflicts')
        .selectAll()
        .where('chain_id', '=', s.chain.chainIdB64)
        .execute();
      assert.deepEqual(conflicts.map((c) => c.kind).sort(), ['equivocation', 'redeemed_past_release']);
      assert.ok(conflicts.every((c) => c.vendor_id === s.a.id));
      const refund = await s.refund();
      assert.equal(refund.status, 200, refund.text);
      assert.equal(refund.body.refunded, 0, 'the customer handed out w_200: nothing of the chain is unclaimed');
      assert.deepEqual(codes(await s.redeem(s.b, [item(s.chain, 2, 13, 14)])), ['accepted']);
      const out = await moneyOut(s.chain.chainIdB64);
      assert.deepEqual([out.kept.get(s.a.id), out.kept.get(s.b.id), out.refunded], [13, 1, 0]);
      const account = await call(suite.broker.api, 'GET', '/vendor/account', { token: s.a.apiKey });
      assert.equal(account.body.balance, 13, 'A keeps 13 (its fee carried to zero); the rest was taken back');
    });

    test('the real release first, then A presents a higher one: recorded as equivocation, refused', async () => {
      const s = await setUp();
      assert.equal((await s.report()).status, 200);
      const fake = s.a.release(s.holderB, 200, s.chain.b64(200));
      assert.deepEqual(codes(await s.redeem(s.a, [item(s.chain, 1, 0, 200, undefined, fake)])), ['beyond_release']);
      const conflicts = await suite.broker.database.db
        .selectFrom('conflicts')
        .select('kind')
        .where('chain_id', '=', s.chain.chainIdB64)
        .execute();
      assert.deepEqual(
        conflicts.map((c) => c.kind),
        ['equivocation'],
      );
      assert.equal((await s.refund()).body.refunded, 186);
      await moneyOut(s.chain.chainIdB64);
    });

    test('a vendor without a fresh payword cannot take the coin: no proof, garbage, or an old point', async () => {
      const s = await setUp();
      const c = await suite.broker.addVendor(`col-c-${seq}`);
      const epochsBefore = await suite.broker.database.db
        .selectFrom('epochs')
        .select('epoch')
        .where('chain_id', '=', s.chain.chainIdB64)
        .execute();
      const claim = (body?: unknown) =>
        call(suite.broker.api, 'POST', `/chains/${s.chain.chainIdB64}/claim`, {
          token: c.apiKey,
          ...(body ? { body } : {}),
        });
      for (const attempt of [
        await claim(),
        await claim({ proof: { index: 50, payword: s.chain.b64(49) } }),
        await claim(proof(s.chain, 14)),
        await claim(proof(s.chain, 3)),
        await claim({ proof: { index: 201, payword: s.chain.b64(200) } }),
      ]) {
        assert.equal(attempt.status, 402, attempt.text);
        assert.equal(attempt.body.code, 'invalid_payword');
      }
      const epochsAfter = await suite.broker.database.db
        .selectFrom('epochs')
        .select('epoch')
        .where('chain_id', '=', s.chain.chainIdB64)
        .execute();
      assert.equal(epochsAfter.length, epochsBefore.length, 'no epoch opened');
      // The holder keeps the coin: B's checkpoint still renews its lease.
      assert.equal((await s.report()).status, 200);
    });

    test('a refund racing a holder that does not answer completes within one lease; vendors cannot claim meanwhile', async () => {
      const s = await setUp();
      const gone = await suite.broker.addVendor(`col-gone-${seq}`, 'http://127.0.0.1:9/release');
      const claimGone = await call(suite.broker.api, 'POST', `/chains/${s.chain.chainIdB64}/claim`, {
        token: gone.apiKey,
        body: proof(s.chain, 20),
      });
      assert.equal(claimGone.status, 200);
      const first = await s.refund();
      assert.equal(first.status, 503);
      assert.equal(first.body.code, 'previous_holder_unavailable');
      assert.ok(first.body.retryAfter >= 1 && first.body.retryAfter <= TTL_SECONDS);
      // No vendor can take the coin while the refund waits, whatever payword it has.
      const during = await call(suite.broker.api, 'POST', `/chains/${s.chain.chainIdB64}/claim`, {
        token: s.a.apiKey,
        body: proof(s.chain, 30),
      });
      assert.equal(during.status, 409);
      assert.equal(during.body.code, 'chain_refunding');
      // The broker's own release URL answers (never 404): it holds the chain to refund it.
      const brokerRelease = await call(suite.broker.api, 'POST', '/broker/release', {
        body: { holder: claimGone.body.holder },
      });
      assert.equal(brokerRelease.status, 403, brokerRelease.text);
      clock.advance((TTL_SECONDS + 1) * 1000);
      const second = await s.refund();
      assert.equal(second.status, 200, second.text);
      assert.deepEqual(second.body, { chainId: s.chain.chainIdB64, refunded: 180, releasedIndex: 20 });
      const epochs = await suite.broker.database.db
        .selectFrom('epochs')
        .select('epoch')
        .where('chain_id', '=', s.chain.chainIdB64)
        .execute();
      assert.equal(epochs.length, 4, 'one broker epoch, not one per retry');
      await moneyOut(s.chain.chainIdB64);
    });
  });
}
