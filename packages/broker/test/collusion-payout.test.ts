// Vendors (and a customer) colluding against one chain, with payouts between their moves: the broker never lets
// more than the chain's value out for it, even counting what it paid a vendor before a take-back left that vendor
// in debt. Found by an adversarial hunt; each case let 1,100-1,410 out of a chain worth 1,000 with a green audit.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { HolderCertificate } from '@netpay/protocol';
import { ManualClock } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { HttpBank } from '../src/http-bank.ts';
import { runPayouts } from '../src/payouts.ts';
import {
  type BankUnderTest,
  type BrokerUnderTest,
  call,
  item,
  PaywordChain,
  startBank,
  startBroker,
  type TestVendor,
} from './harness.ts';

const DAY = 86_400;

for (const engine of testEngines()) {
  describe(`collusion with payouts between the moves (${engine})`, () => {
    let bank: BankUnderTest;
    let broker: BrokerUnderTest;
    let clock: ManualClock;
    let releaser: ((holder: HolderCertificate) => unknown) | undefined;
    const paid = new Map<string, number>();
    const credited = new Map<string, number>();
    beforeEach(async () => {
      clock = new ManualClock(new Date());
      bank = await startBank(engine);
      broker = await startBroker(engine, bank, {
        clock,
        config: { leaseTtlSeconds: 60, feeBps: 0 },
        releaseClient: async (_url, body) => {
          if (!releaser) throw new Error('unreachable');
          return { release: releaser(body.holder as HolderCertificate) };
        },
      });
    });
    afterEach(async () => {
      await broker?.close();
      await bank?.close();
    });

    const payoutRun = async () => {
      const run = await runPayouts({
        db: broker.database.db,
        engine,
        bank: new HttpBank({ url: bank.url, apiKey: bank.apiKey, timeoutMs: 5000 }),
        clock,
        config: { currency: 'NZD', settlementWindowSeconds: DAY },
      });
      for (const p of run.paid) paid.set(p.vendorId, (paid.get(p.vendorId) ?? 0) + p.amount);
    };
    const claim = async (v: TestVendor, chain: PaywordChain, at: number) => {
      const r = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: v.apiKey,
        body: { proof: { index: at, payword: chain.b64(at) } },
      });
      assert.equal(r.status, 200, r.text);
      return r.body as { holder: HolderCertificate };
    };
    /** One item; its status and code. */
    const redeem = async (v: TestVendor, one: Record<string, unknown>) => {
      const r = await call(broker.api, 'POST', '/redemptions', {
        token: v.apiKey,
        key: `k-${randomUUID()}`,
        body: { items: [one] },
      });
      assert.equal(r.status, 200, r.text);
      credited.set(v.id, (credited.get(v.id) ?? 0) + (r.body.credited as number));
      const [answer] = r.body.items as Array<{ status: string; code?: string }>;
      return answer?.status === 'accepted' ? 'accepted' : (answer?.code ?? 'none');
    };
    /** A chain of 100 units of 10 (worth 1,000), after two others so the broker's cash stays above its floor. */
    const buy = async () => {
      for (let i = 0; i < 3; i++) {
        const { token } = await broker.customer();
        const chain = PaywordChain.generate(100);
        const bought = await broker.buyCoin(token, { amount: 1000, unit: 10, chain });
        assert.equal(bought.status, 201, bought.text);
        if (i === 2) return { chain, token };
      }
      throw new Error('unreachable');
    };
    /**
     * Refunds the rest to the customer (the holder `b` releases at `at`, 60 unless told), pays everyone out, checks
     * the audit, and sums what left for the chain.
     */
    const settle = async (chain: PaywordChain, token: string, b: TestVendor, vendors: TestVendor[], at = 60) => {
      releaser = (holder) => b.release(holder, at, chain.b64(at));
      const refund = await call(broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, { token });
      assert.equal(refund.status, 200, refund.text);
      clock.advance((DAY + 10) * 1000);
      await payoutRun();
      const out = (refund.body.refunded as number) + vendors.reduce((sum, v) => sum + (paid.get(v.id) ?? 0), 0);
      const audit = await broker.audit();
      assert.equal(audit.ok, true, audit.discrepancies.join('\n'));
      return out;
    };

    test('a customer double-spends to A after B accepted a lower release: A’s own end past B’s claim is held', async () => {
      const { chain, token } = await buy();
      const a = await broker.addVendor(`dbl-a-${engine}`);
      const b = await broker.addVendor(`dbl-b-${engine}`);
      await claim(a, chain, 50); // the customer paid A up to 50
      const atB = await claim(b, chain, 51); // then B, with w51
      const at50 = a.release(atB.holder, 50, chain.b64(50)); // B accepts 51..60 on it
      // The customer hands A w70; A signs a second release at 70 and ends its epoch there itself.
      const at70 = a.release(atB.holder, 70, chain.b64(70));
      assert.equal(await redeem(a, item(chain, 1, 0, 70, undefined, at70)), 'accepted');
      await payoutRun();
      assert.equal(paid.get(a.id) ?? 0, 0, 'held: A’s range reaches B’s claim while B’s start is unknown');
      const report = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
        token: b.apiKey,
        body: { epoch: 2, index: 60, payword: chain.b64(60), release: at50 },
      });
      assert.equal(report.status, 200, report.text);
      assert.equal(await redeem(b, item(chain, 2, 50, 60)), 'accepted');
      // The customer handed out w70: nothing below it comes back to it, and 60..70 go to nobody.
      assert.equal(await settle(chain, token, b, [a, b]), 900, 'A 500, B 100, the customer 300');
      assert.deepEqual([paid.get(a.id), paid.get(b.id)], [500, 100]);
    });

    test('A redeemed while current, was paid out, then signs a release below it for its partner B', async () => {
      const { chain, token } = await buy();
      const a = await broker.addVendor(`low-a-${engine}`);
      const b = await broker.addVendor(`low-b-${engine}`);
      await claim(a, chain, 10);
      assert.equal(await redeem(a, item(chain, 1, 0, 50)), 'accepted'); // the customer paid A up to 50
      const atB = await claim(b, chain, 51);
      clock.advance((DAY + 10) * 1000);
      await payoutRun();
      assert.equal(paid.get(a.id), 500);
      const at10 = a.release(atB.holder, 10, chain.b64(10));
      assert.equal(await redeem(b, item(chain, 2, 10, 60, at10)), 'invalid_payword', 'not from below what A was paid');
      assert.equal(await redeem(b, item(chain, 2, 50, 60)), 'accepted');
      assert.equal(await settle(chain, token, b, [a, b]), 1000, 'A 500, B 100, the customer 400');
    });

    test('A ends its epoch at B’s claim with w51 from B, is paid, then signs a release below for B', async () => {
      const { chain, token } = await buy();
      const a = await broker.addVendor(`end-a-${engine}`);
      const b = await broker.addVendor(`end-b-${engine}`);
      await claim(a, chain, 10);
      assert.equal(await redeem(a, item(chain, 1, 0, 50)), 'accepted');
      const atB = await claim(b, chain, 51);
      const at51 = a.release(atB.holder, 51, chain.b64(51));
      assert.equal(await redeem(a, item(chain, 1, 50, 51, undefined, at51)), 'accepted');
      await payoutRun();
      assert.equal(paid.get(a.id), 500, 'the range below B’s claim is paid; the one reaching it is held');
      const at10 = a.release(atB.holder, 10, chain.b64(10));
      assert.equal(await redeem(b, item(chain, 2, 10, 60, at10)), 'invalid_payword', 'not below what A was paid');
      assert.equal(await redeem(b, item(chain, 2, 50, 60)), 'accepted');
      assert.equal(await settle(chain, token, b, [a, b]), 1000, 'A 500, B 100, the customer 400');
    });

    test('B shows A’s release above its own claim; the next epoch never starts below that start', async () => {
      const { chain, token } = await buy();
      const a = await broker.addVendor(`up-a-${engine}`);
      const b = await broker.addVendor(`up-b-${engine}`);
      const c = await broker.addVendor(`up-c-${engine}`);
      await claim(a, chain, 10);
      const atB = await claim(b, chain, 51);
      const at70 = a.release(atB.holder, 70, chain.b64(70));
      // B's item is refused, but the release it carries is learned first: on B's word, epoch 2 starts at 70.
      assert.equal(await redeem(b, item(chain, 2, 70, 70, at70)), 'invalid_payword');
      const atC = await claim(c, chain, 71);
      const b55 = b.release(atC.holder, 55, chain.b64(55));
      const report = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
        token: c.apiKey,
        body: { epoch: 3, index: 71, payword: chain.b64(71), release: b55 },
      });
      assert.equal(report.status, 200, report.text);
      assert.equal(await redeem(a, item(chain, 1, 0, 70)), 'accepted');
      await payoutRun();
      const a50 = a.release(atB.holder, 50, chain.b64(50));
      await redeem(a, item(chain, 1, 0, 50, undefined, a50)); // A's own lower release: a take-back from A alone
      assert.equal(await redeem(c, item(chain, 3, 55, 71)), 'invalid_payword', 'not below epoch 2’s start');
      assert.equal(await redeem(c, item(chain, 3, 70, 71)), 'accepted');
      releaser = (holder) => c.release(holder, 71, chain.b64(71));
      const refund = await call(broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, { token });
      assert.equal(refund.status, 200, refund.text);
      clock.advance((DAY + 10) * 1000);
      await payoutRun();
      const out = (refund.body.refunded as number) + [a, b, c].reduce((sum, v) => sum + (paid.get(v.id) ?? 0), 0);
      assert.equal(out, 1000, 'A 700, C 10, the customer 290');
      const audit = await broker.audit();
      assert.equal(audit.ok, true, audit.discrepancies.join('\n'));
    });

    test('the customer pays B with w70 and hands A the same payword: A’s own end at the claim is held for B', async () => {
      const { chain, token } = await buy();
      const a = await broker.addVendor(`same-a-${engine}`);
      const b = await broker.addVendor(`same-b-${engine}`);
      await claim(a, chain, 10);
      const atB = await claim(b, chain, 70); // a 20-unit article at B, from A's real end at 50
      const at70 = a.release(atB.holder, 70, chain.b64(70));
      assert.equal(await redeem(a, item(chain, 1, 0, 70, undefined, at70)), 'accepted');
      await payoutRun();
      assert.equal(paid.get(a.id) ?? 0, 0, 'held until B’s start is known');
      const at50 = a.release(atB.holder, 50, chain.b64(50));
      const report = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
        token: b.apiKey,
        body: { epoch: 2, index: 70, payword: chain.b64(70), release: at50 },
      });
      assert.equal(report.status, 200, report.text);
      assert.equal(await redeem(b, item(chain, 2, 50, 70)), 'accepted', 'honest B is paid its 20 units');
      releaser = (holder) => b.release(holder, 70, chain.b64(70));
      const refund = await call(broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, { token });
      assert.equal(refund.status, 200, refund.text);
      clock.advance((DAY + 10) * 1000);
      await payoutRun();
      assert.deepEqual([paid.get(a.id), paid.get(b.id), refund.body.refunded], [500, 200, 300]);
      const audit = await broker.audit();
      assert.equal(audit.ok, true, audit.discrepancies.join('\n'));
    });

    test('a later epoch’s start is known first: the earlier one is never raised above it', async () => {
      const { chain, token } = await buy();
      const a = await broker.addVendor(`later-a-${engine}`);
      const b = await broker.addVendor(`later-b-${engine}`);
      const c = await broker.addVendor(`later-c-${engine}`);
      await claim(a, chain, 10);
      const atB = await claim(b, chain, 51);
      const atC = await claim(c, chain, 61);
      const checkpoint = (v: TestVendor, epoch: number, index: number, release: unknown) =>
        call(broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
          token: v.apiKey,
          body: { epoch, index, payword: chain.b64(index), release },
        });
      // C reports B's release at 51: epoch 3 starts at 51 while epoch 2's start is unknown.
      assert.equal((await checkpoint(c, 3, 61, b.release(atC.holder, 51, chain.b64(51)))).status, 200);
      // A ends its epoch at 70 itself and B confirms it (refused as a checkpoint: B's epoch is superseded). Since the
      // fourth hunt, A's end above epoch 3's known start is refused outright (it was accepted and held before).
      const a70 = a.release(atB.holder, 70, chain.b64(70));
      assert.equal(await redeem(a, item(chain, 1, 0, 70, undefined, a70)), 'beyond_release');
      await checkpoint(b, 2, 70, a70);
      await payoutRun();
      assert.equal(paid.get(a.id) ?? 0, 0, 'epoch 2 never starts at 70, above epoch 3’s 51: A stays held');
      await redeem(a, item(chain, 1, 0, 50, undefined, a.release(atB.holder, 50, chain.b64(50))));
      assert.equal(await redeem(c, item(chain, 3, 51, 100)), 'accepted');
      releaser = (holder) => c.release(holder, 100, chain.b64(100));
      const refund = await call(broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, { token });
      assert.equal(refund.status, 200, refund.text);
      clock.advance((DAY + 10) * 1000);
      await payoutRun();
      const out = (refund.body.refunded as number) + [a, b, c].reduce((sum, v) => sum + (paid.get(v.id) ?? 0), 0);
      assert.ok(out <= 1000, `${out} out`);
      assert.deepEqual([paid.get(a.id), paid.get(c.id)], [500, 490]);
      const audit = await broker.audit();
      assert.equal(audit.ok, true, audit.discrepancies.join('\n'));
    });

    test('a forced start never takes the previous holder’s own end past the claim: its held range goes back', async () => {
      const { chain, token } = await buy();
      const a = await broker.addVendor(`forced-a-${engine}`);
      const b = await broker.addVendor(`forced-b-${engine}`);
      await claim(a, chain, 10);
      const atB = await claim(b, chain, 51); // the customer pays B 51..60
      // The customer hands A w70 too; A ends its epoch there itself and never answers B.
      const a70 = a.release(atB.holder, 70, chain.b64(70));
      assert.equal(await redeem(a, item(chain, 1, 0, 70, undefined, a70)), 'accepted');
      await payoutRun();
      assert.equal(paid.get(a.id) ?? 0, 0, 'held');
      clock.advance(61_000);
      const again = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, { token: b.apiKey, body: {} });
      assert.equal(again.status, 200, again.text);
      // A's last point below B's claim is its claim's proof: the contract's forced start (A never checkpointed).
      assert.equal(again.body.start.index, 10);
      assert.equal(await redeem(b, item(chain, 2, 10, 60)), 'accepted');
      releaser = (holder) => b.release(holder, 60, chain.b64(60));
      const refund = await call(broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, { token });
      assert.equal(refund.status, 200, refund.text);
      clock.advance((DAY + 10) * 1000);
      await payoutRun();
      // The customer handed out w70: nothing below it comes back to it.
      assert.deepEqual([paid.get(a.id), paid.get(b.id), refund.body.refunded], [100, 500, 300]);
      const audit = await broker.audit();
      assert.equal(audit.ok, true, audit.discrepancies.join('\n'));
    });
    test('an earlier holder never ends its epoch above a later forced start: the later holder keeps its units', async () => {
      // Found by a fourth hunt: A and the customer collude, B vanishes, C is honest. C's forced start (51) is the
      // broker's word to C; A's own release at 70 (addressed to B) used to be accepted and took C's 51..61.
      const { chain, token } = await buy();
      const a = await broker.addVendor(`forced-later-a-${engine}`);
      const b = await broker.addVendor(`forced-later-b-${engine}`);
      const c = await broker.addVendor(`forced-later-c-${engine}`);
      await claim(a, chain, 10);
      const atB = await claim(b, chain, 51);
      clock.advance(61_000);
      const atC = await claim(c, chain, 61); // the customer pays C 51..61 from the forced start
      assert.equal((atC as { start?: { index: number } }).start?.index, 51);
      const a70 = a.release(atB.holder, 70, chain.b64(70));
      assert.equal(await redeem(a, item(chain, 1, 0, 70, undefined, a70)), 'beyond_release');
      assert.equal(await redeem(c, item(chain, 3, 51, 61)), 'accepted');
      const out = await settle(chain, token, c, [a, b, c], 61);
      assert.ok(out <= 1000, `${out} out`);
      assert.equal(paid.get(c.id), 100);
    });

    test('a later start learned from a release takes back what an earlier holder kept past it', async () => {
      // A ended its epoch at 70 with a payword the customer handed it after moving (held: B's start is unknown). B
      // honestly releases at 55 to C: C's start. A's range past it used to make C's own range an overlap.
      const { chain, token } = await buy();
      const a = await broker.addVendor(`earlier-a-${engine}`);
      const b = await broker.addVendor(`earlier-b-${engine}`);
      const c = await broker.addVendor(`earlier-c-${engine}`);
      await claim(a, chain, 10);
      const atB = await claim(b, chain, 51);
      const a70 = a.release(atB.holder, 70, chain.b64(70));
      assert.equal(await redeem(a, item(chain, 1, 0, 70, undefined, a70)), 'accepted');
      const atC = await claim(c, chain, 71);
      const b55 = b.release(atC.holder, 55, chain.b64(55));
      assert.equal(await redeem(c, item(chain, 3, 55, 75, b55)), 'accepted');
      const out = await settle(chain, token, c, [a, b, c], 75);
      assert.ok(out <= 1000, `${out} out`);
      assert.equal(paid.get(c.id), 200);
    });

    test('a forced start takes back what a holder before the previous one kept past it', async () => {
      // A ends its epoch at 90 (a payword the customer handed it) while C's start is still unknown; B never releases,
      // so C's repeated claim forces its start at B's claim (51). A's range past it used to refuse C's own.
      const { chain, token } = await buy();
      const a = await broker.addVendor(`forced-earlier-a-${engine}`);
      const b = await broker.addVendor(`forced-earlier-b-${engine}`);
      const c = await broker.addVendor(`forced-earlier-c-${engine}`);
      await claim(a, chain, 10);
      const atB = await claim(b, chain, 51);
      await claim(c, chain, 61);
      const a90 = a.release(atB.holder, 90, chain.b64(90));
      assert.equal(await redeem(a, item(chain, 1, 0, 90, undefined, a90)), 'accepted');
      clock.advance(61_000);
      const again = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, { token: c.apiKey, body: {} });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.start.index, 51);
      assert.equal(await redeem(c, item(chain, 3, 51, 61)), 'accepted');
      const out = await settle(chain, token, c, [a, b, c], 61);
      assert.ok(out <= 1000, `${out} out`);
      assert.equal(paid.get(c.id), 100);
    });

    test('a forced start never goes below an earlier epoch’s start: an earlier holder paid out keeps its pay', async () => {
      // Found by a review of the later-start rule. A wallet paid two sites at once (B's claim at 51 while A was paid
      // on to 70) and a stale one showed C w61. B reported A's honest release at 70 (epoch 2 starts there) and A was
      // paid out to 70. C's forced start at its repeated claim used to be 51, below epoch 2's start, and the
      // take-back of what A kept past it left honest A 190 in debt.
      const { chain, token } = await buy();
      const a = await broker.addVendor(`stale-a-${engine}`);
      const b = await broker.addVendor(`stale-b-${engine}`);
      const c = await broker.addVendor(`stale-c-${engine}`);
      await claim(a, chain, 10);
      const atB = await claim(b, chain, 51);
      await claim(c, chain, 61);
      const a70 = a.release(atB.holder, 70, chain.b64(70));
      // B's epoch is superseded (refused as a checkpoint), but the release it started from is learned.
      await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
        token: b.apiKey,
        body: { epoch: 2, index: 70, payword: chain.b64(70), release: a70 },
      });
      assert.equal(await redeem(a, item(chain, 1, 0, 70)), 'accepted');
      await payoutRun();
      assert.equal(paid.get(a.id), 700, 'its end and the next start are known: paid at once');
      clock.advance(61_000);
      const again = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, { token: c.apiKey, body: {} });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.start.index, 70);
      const account = await call(broker.api, 'GET', '/vendor/account', { token: a.apiKey });
      assert.equal(account.body.balance, 0, 'A owes nothing');
      assert.equal(await redeem(c, item(chain, 3, 70, 80)), 'accepted');
      const out = await settle(chain, token, c, [a, b, c], 80);
      assert.ok(out <= 1000, `${out} out`);
      assert.deepEqual([paid.get(a.id), paid.get(c.id)], [700, 100]);
    });
  });
}
