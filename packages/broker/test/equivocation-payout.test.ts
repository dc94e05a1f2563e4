// Found by an adversarial review: a vendor paid out for its epoch, then signing a second, lower release to a
// partner, let the partner redeem the same units again from that release (the broker lowered the next epoch's
// start to the lowest release). The signer's debt was all the broker held, so cash out for the chain passed its
// value while the audit stayed green. The same with a forced start, with a first release at the next holder's claim
// proof, and with no release at all once the settlement window had paid the signer. Now an epoch's start is set
// once and never below the highest point the broker verified the signer held, and no range starts below it
// (take-back.ts learnRelease, redemption.ts atOrAboveStart).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ManualClock } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import type { HolderCertificate } from '@netpay/protocol';
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
  describe(`a release signed after its signer was paid out moves no units to the next holder (${engine})`, () => {
    let bank: BankUnderTest;
    let broker: BrokerUnderTest;
    let clock: ManualClock;
    let releaser: ((holder: HolderCertificate) => unknown) | undefined;
    beforeEach(async () => {
      clock = new ManualClock(new Date());
      bank = await startBank(engine);
      broker = await startBroker(engine, bank, {
        clock,
        config: { leaseTtlSeconds: 60 },
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
    const payoutRun = () =>
      runPayouts({
        db: broker.database.db,
        engine,
        bank: new HttpBank({ url: bank.url, apiKey: bank.apiKey, timeoutMs: 5000 }),
        clock,
        config: { currency: 'NZD', settlementWindowSeconds: DAY },
      });
    const claim = async (v: TestVendor, chain: PaywordChain, at: number) => {
      const r = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: v.apiKey,
        body: { proof: { index: at, payword: chain.b64(at) } },
      });
      assert.equal(r.status, 200, r.text);
      return r.body;
    };
    const redeem = async (v: TestVendor, items: Array<Record<string, unknown>>) => {
      const r = await call(broker.api, 'POST', '/redemptions', {
        token: v.apiKey,
        key: `k-${randomUUID()}`,
        body: { items },
      });
      assert.equal(r.status, 200, r.text);
      return r.body as { items: Array<{ status: string; code?: string; amount: number }>; credited: number };
    };
    const buy = async (length: number, unit: number) => {
      const { token } = await broker.customer();
      const chain = PaywordChain.generate(length);
      const bought = await broker.buyCoin(token, { amount: length * unit, unit, chain });
      assert.equal(bought.status, 201, bought.text);
      return { chain, token };
    };

    test('a lower release after the payout: the signer is taken back from, the partner gets nothing below its start', async () => {
      await buy(100, 10); // another customer's money, so the broker's cash stays above its floor
      const { chain, token } = await buy(100, 10); // value 1000
      const a = await broker.addVendor(`eq-a-${engine}`);
      const b = await broker.addVendor(`eq-b-${engine}`);
      await claim(a, chain, 50); // the customer paid A up to 50
      const cb = await claim(b, chain, 51); // then B w51
      const at50 = a.release(cb.holder, 50, chain.b64(50));
      const cp = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
        token: b.apiKey,
        body: { epoch: 2, index: 51, payword: chain.b64(51), release: at50 },
      });
      assert.equal(cp.status, 200, cp.text);
      const ra = await redeem(a, [item(chain, 1, 0, 50)]);
      assert.equal(ra.items[0]?.amount, 500);
      const run1 = await payoutRun();
      const paidA = run1.paid.find((p) => p.vendorId === a.id)?.amount ?? 0;
      assert.equal(paidA, 490, 'A is paid at once: its end is known');

      // A signs a second release, at 0, to B; B redeems [0, 51) from it.
      const at0 = a.release(cb.holder, 0, chain.b64(0));
      const rb = await redeem(b, [item(chain, 2, 0, 51, at0)]);
      assert.equal(rb.items[0]?.status, 'rejected', JSON.stringify(rb));
      // B's own range from its start is still its own.
      const fair = await redeem(b, [item(chain, 2, 50, 51)]);
      assert.equal(fair.items[0]?.amount, 10, JSON.stringify(fair));

      releaser = (holder) => b.release(holder, 51, chain.b64(51));
      const refund = await call(broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, { token });
      assert.equal(refund.status, 200, refund.text);
      clock.advance((DAY + 10) * 1000);
      const run2 = await payoutRun();
      const paidB = run2.paid.find((p) => p.vendorId === b.id)?.amount ?? 0;
      const out = paidA + paidB + (refund.body.refunded as number);
      assert.ok(out <= 1000, `the chain let ${out} out, over its value 1000 (A ${paidA}, B ${paidB})`);
      const audit = await broker.audit();
      assert.ok(audit.ok, JSON.stringify(audit.discrepancies));
      // A's equivocation is on record, with both statements.
      const conflicts = await broker.database.db
        .selectFrom('conflicts')
        .select('kind')
        .where('chain_id', '=', chain.chainIdB64)
        .execute();
      assert.ok(
        conflicts.some((c) => c.kind === 'equivocation'),
        JSON.stringify(conflicts),
      );
    });

    test('a release below a forced start: the next holder cannot redeem under its start', async () => {
      await buy(100, 10);
      const { chain } = await buy(100, 10);
      const a = await broker.addVendor(`eq-c-${engine}`);
      const b = await broker.addVendor(`eq-d-${engine}`);
      await claim(a, chain, 20);
      clock.advance(61_000); // A's lease runs out
      const cb = await claim(b, chain, 21);
      assert.equal(cb.start?.index, 20, JSON.stringify(cb));
      const ra = await redeem(a, [item(chain, 1, 0, 20)]);
      assert.equal(ra.items[0]?.amount, 200);
      const run1 = await payoutRun();
      assert.ok((run1.paid.find((p) => p.vendorId === a.id)?.amount ?? 0) > 0, 'A is paid at once (forced bound)');

      const at0 = a.release(cb.holder, 0, chain.b64(0));
      const rb = await redeem(b, [item(chain, 2, 0, 21, at0)]);
      assert.equal(rb.items[0]?.status, 'rejected', JSON.stringify(rb));
      const fair = await redeem(b, [item(chain, 2, 20, 21)]);
      assert.equal(fair.items[0]?.amount, 10, JSON.stringify(fair));
      const audit = await broker.audit();
      assert.ok(audit.ok, JSON.stringify(audit.discrepancies));
    });
    test('a first release at the claim proof, then a lower one: the start never goes below what the signer held', async () => {
      await buy(100, 10);
      const { chain, token } = await buy(100, 10); // value 1000
      const a = await broker.addVendor(`r7-a-${engine}`);
      const b = await broker.addVendor(`r7-b-${engine}`);
      await claim(a, chain, 50);
      const cb = await claim(b, chain, 51);
      // A signs its first release at 51 (B, its partner, hands it w51): at the claim proof, so never B's start.
      const at51 = a.release(cb.holder, 51, chain.b64(51));
      await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
        token: b.apiKey,
        body: { epoch: 2, index: 51, payword: chain.b64(51), release: at51 },
      });
      const ra = await redeem(a, [item(chain, 1, 0, 50)]);
      assert.equal(ra.items[0]?.amount, 500);
      const run1 = await payoutRun();
      const paidA = run1.paid.find((p) => p.vendorId === a.id)?.amount ?? 0;
      const at0 = a.release(cb.holder, 0, chain.b64(0));
      const rb = await redeem(b, [item(chain, 2, 0, 51, at0)]);
      assert.equal(rb.items[0]?.status, 'rejected', JSON.stringify(rb));
      releaser = (holder) => b.release(holder, 51, chain.b64(51));
      const refund = await call(broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, { token });
      assert.equal(refund.status, 200, refund.text);
      clock.advance((DAY + 10) * 1000);
      const run2 = await payoutRun();
      const paidB = run2.paid.find((p) => p.vendorId === b.id)?.amount ?? 0;
      const out = paidA + paidB + (refund.body.refunded as number);
      const audit = await broker.audit();
      assert.ok(out <= 1000, `the chain let ${out} out, over its value 1000 (A ${paidA}, B ${paidB})`);
      assert.ok(audit.ok, JSON.stringify(audit.discrepancies));
    });

    test('no release reported, the signer paid after the settlement window, then a release at 0: nothing moves to the partner', async () => {
      await buy(100, 10);
      const { chain, token } = await buy(100, 10);
      const a = await broker.addVendor(`r7-c-${engine}`);
      const b = await broker.addVendor(`r7-d-${engine}`);
      await claim(a, chain, 50);
      const ck = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
        token: a.apiKey,
        body: { epoch: 1, index: 50, payword: chain.b64(50) },
      });
      assert.equal(ck.status, 200, ck.text);
      const cb = await claim(b, chain, 51);
      const ra = await redeem(a, [item(chain, 1, 0, 50)]);
      assert.equal(ra.items[0]?.amount, 500);
      clock.advance((DAY + 10) * 1000);
      const run1 = await payoutRun();
      const paidA = run1.paid.find((p) => p.vendorId === a.id)?.amount ?? 0;
      const at0 = a.release(cb.holder, 0, chain.b64(0));
      const rb = await redeem(b, [item(chain, 2, 0, 51, at0)]);
      assert.equal(rb.items[0]?.status, 'rejected', JSON.stringify(rb));
      releaser = (holder) => b.release(holder, 51, chain.b64(51));
      const refund = await call(broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, { token });
      assert.equal(refund.status, 200, refund.text);
      clock.advance((DAY + 10) * 1000);
      const run2 = await payoutRun();
      const paidB = run2.paid.find((p) => p.vendorId === b.id)?.amount ?? 0;
      const out = paidA + paidB + (refund.body.refunded as number);
      const audit = await broker.audit();
      assert.ok(out <= 1000, `the chain let ${out} out, over its value 1000 (A ${paidA}, B ${paidB})`);
      assert.ok(audit.ok, JSON.stringify(audit.discrepancies));
    });
  });
}
