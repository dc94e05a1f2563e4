import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { postingsTotal } from '../src/store.ts';
import { type BankUnderTest, GOOD_CARD, startBank } from './bank-harness.ts';

for (const engine of testEngines()) {
  describe(`refunds and payouts (${engine})`, () => {
    let bank: BankUnderTest;
    before(async () => {
      bank = await startBank(engine);
    });
    after(async () => {
      // The double entry holds across everything the tests did.
      assert.equal(await postingsTotal(bank.database.db), 0);
      await bank.close();
    });

    it('refunds of a charge never add up to more than it', async () => {
      const m = await bank.newMerchant();
      const charge = (await m.charge(1000, 'c')).body;
      const refund = (key: string, amount: number, chargeId = charge.id) =>
        m.call('POST', '/v1/refunds', { idempotencyKey: key, body: { chargeId, amount } });

      const first = await refund('r1', 600);
      assert.equal(first.status, 201);
      assert.match(first.body.id, /^re_/);
      assert.deepEqual(
        { ...first.body, id: 'x' },
        { id: 'x', chargeId: charge.id, amount: 600, createdAt: first.body.createdAt },
      );
      const tooMuch = await refund('r2', 401);
      assert.equal(tooMuch.status, 409);
      assert.equal(tooMuch.body.code, 'conflict');
      assert.equal(tooMuch.body.refundable, 400);
      assert.equal((await refund('r3', 400)).status, 201);
      assert.equal((await refund('r4', 1)).status, 409);
      // A replay returns the stored refund rather than refunding again or refusing.
      assert.deepEqual((await refund('r1', 600)).body, first.body);

      const statement = (await m.statement()).body;
      assert.deepEqual(statement.lines.map((l: { kind: string; amount: number }) => `${l.kind} ${l.amount}`).sort(), [
        'charge 1000',
        'refund -400',
        'refund -600',
      ]);
      assert.equal(statement.available, 0);
    });

    it('an unknown charge is 404, a declined one 409', async () => {
      const m = await bank.newMerchant();
      const unknown = await m.call('POST', '/v1/refunds', {
        idempotencyKey: 'u',
        body: { chargeId: 'ch_doesnotexist', amount: 1 },
      });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.code, 'not_found');
      const declined = await m.charge(100, 'd', { ...GOOD_CARD, number: '4000000000000002' });
      const refund = await m.call('POST', '/v1/refunds', {
        idempotencyKey: 'd2',
        body: { chargeId: declined.body.chargeId, amount: 1 },
      });
      assert.equal(refund.status, 409);
      // Another merchant's charge does not exist for this one.
      const other = await bank.newMerchant();
      const theirs = (await other.charge(100, 'x')).body;
      const cross = await m.call('POST', '/v1/refunds', {
        idempotencyKey: 'x',
        body: { chargeId: theirs.id, amount: 1 },
      });
      assert.equal(cross.status, 404);
    });

    it('payouts are bounded by the available balance', async () => {
      const m = await bank.newMerchant();
      const payout = (key: string, amount: number, destination = 'vendor:daily-planet') =>
        m.call('POST', '/v1/payouts', { idempotencyKey: key, body: { amount, currency: 'NZD', destination } });

      const early = await payout('p0', 1);
      assert.equal(early.status, 409);
      assert.equal(early.body.code, 'insufficient_funds');
      assert.equal(early.body.available, 0);

      await m.charge(1000, 'c');
      const first = await payout('p1', 700);
      assert.equal(first.status, 201);
      assert.deepEqual(
        { ...first.body, id: 'x' },
        {
          id: 'x',
          status: 'paid',
          amount: 700,
          currency: 'NZD',
          destination: 'vendor:daily-planet',
          createdAt: first.body.createdAt,
        },
      );
      const over = await payout('p2', 400);
      assert.equal(over.status, 409);
      assert.equal(over.body.available, 300);
      // The refused key was not stored: now that the money is there, the same key pays.
      assert.equal((await payout('p0', 1)).status, 201);
      assert.equal((await payout('p3', 299, 'vendor:gazette')).status, 201);
      assert.deepEqual((await m.call('GET', '/v1/balance')).body, { available: 0, currency: 'NZD' });
      assert.deepEqual((await payout('p1', 700)).body, first.body);

      const received = await m.call('GET', '/v1/accounts/vendor:daily-planet/statement');
      assert.equal(received.status, 200);
      assert.equal(received.body.destination, 'vendor:daily-planet');
      assert.equal(received.body.total, 701);
      assert.deepEqual(received.body.payouts.map((p: { amount: number }) => p.amount).sort(), [1, 700]);
      const encoded = await m.call('GET', '/v1/accounts/vendor%3Agazette/statement');
      assert.equal(encoded.body.total, 299);
      const nobody = await m.call('GET', '/v1/accounts/vendor:nobody/statement');
      assert.deepEqual(nobody.body, { destination: 'vendor:nobody', currency: 'NZD', payouts: [], total: 0 });
    });

    it('concurrent payouts with different keys never overdraw', async () => {
      const m = await bank.newMerchant();
      await m.charge(1000, 'c');
      const replies = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          m.call('POST', '/v1/payouts', {
            idempotencyKey: `p${i}`,
            body: { amount: 300, currency: 'NZD', destination: 'vendor:a' },
          }),
        ),
      );
      assert.deepEqual(replies.map((r) => r.status).sort(), [201, 201, 201, 409, 409, 409, 409, 409, 409, 409]);
      assert.equal((await m.statement()).body.available, 100);
    });

    it('concurrent refunds of one charge never exceed it', async () => {
      const m = await bank.newMerchant();
      const charge = (await m.charge(1000, 'c')).body;
      const replies = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          m.call('POST', '/v1/refunds', { idempotencyKey: `r${i}`, body: { chargeId: charge.id, amount: 300 } }),
        ),
      );
      assert.equal(replies.filter((r) => r.status === 201).length, 3);
      assert.equal((await m.statement()).body.available, 100);
    });
  });
}
