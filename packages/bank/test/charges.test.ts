import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { type BankUnderTest, GOOD_CARD, startBank } from './bank-harness.ts';

for (const engine of testEngines()) {
  describe(`charges (${engine})`, () => {
    let bank: BankUnderTest;
    before(async () => {
      bank = await startBank(engine);
    });
    after(async () => bank.close());

    it('4242 4242 4242 4242 succeeds and credits the balance', async () => {
      const m = await bank.newMerchant();
      const res = await m.charge(1250, 'k1');
      assert.equal(res.status, 201);
      assert.match(res.body.id, /^ch_/);
      assert.deepEqual(
        { ...res.body, id: 'x' },
        {
          id: 'x',
          status: 'succeeded',
          amount: 1250,
          currency: 'NZD',
          cardLast4: '4242',
          createdAt: '2026-11-24T00:00:00Z',
        },
      );
      const balance = await m.call('GET', '/v1/balance');
      assert.deepEqual(balance.body, { available: 1250, currency: 'NZD' });
      const statement = await m.statement();
      assert.equal(statement.body.merchant, m.id);
      assert.deepEqual(statement.body.lines, [
        { id: res.body.id, kind: 'charge', amount: 1250, at: '2026-11-24T00:00:00Z', reference: 'card ending 4242' },
      ]);
      assert.equal(statement.body.available, 1250);
    });

    it('any other Luhn-valid number succeeds', async () => {
      const m = await bank.newMerchant();
      const res = await m.charge(100, 'k', { ...GOOD_CARD, number: '5555555555554444' });
      assert.equal(res.status, 201);
      assert.equal(res.body.cardLast4, '4444');
    });

    for (const [number, code] of [
      ['4000 0000 0000 0002', 'card_declined'],
      ['4000 0000 0000 9995', 'insufficient_funds'],
    ] as const) {
      it(`${number} answers 402 ${code}, recorded so a retry gets the same answer`, async () => {
        const m = await bank.newMerchant();
        const first = await m.charge(500, 'decline-key', { ...GOOD_CARD, number });
        assert.equal(first.status, 402);
        assert.equal(first.contentType, 'application/problem+json; charset=utf-8');
        assert.equal(first.body.code, code);
        assert.match(first.body.chargeId, /^ch_/);
        const retry = await m.charge(500, 'decline-key', { ...GOOD_CARD, number });
        assert.equal(retry.status, 402);
        assert.deepEqual(retry.body, first.body);
        assert.deepEqual((await m.statement()).body.lines, []);
        assert.equal((await m.call('GET', '/v1/balance')).body.available, 0);
      });
    }

    it('bad card details are 400 invalid_card naming the field, and record nothing', async () => {
      const m = await bank.newMerchant();
      const cases = [
        [{ ...GOOD_CARD, number: '4242 4242 4242 4241' }, 'card.number'],
        [{ ...GOOD_CARD, number: 'not a card' }, 'card.number'],
        [{ ...GOOD_CARD, expiry: '10/26' }, 'card.expiry'],
        [{ ...GOOD_CARD, expiry: '1/30' }, 'card.expiry'],
        [{ ...GOOD_CARD, cvc: '12a' }, 'card.cvc'],
      ] as const;
      for (const [card, field] of cases) {
        const res = await m.charge(100, 'same-key', card);
        assert.equal(res.status, 400, JSON.stringify(card));
        assert.equal(res.body.code, 'invalid_card');
        assert.equal(res.body.field, field);
        assert.ok(res.body.detail.startsWith(`${field}:`), res.body.detail);
      }
      assert.deepEqual((await m.statement()).body.lines, []);
      // The key was not used up by the rejected requests.
      assert.equal((await m.charge(100, 'same-key')).status, 201);
    });

    it('replays the stored answer for the same key and body', async () => {
      const m = await bank.newMerchant();
      const first = await m.charge(700, 'replay');
      bank.clock.advance(5_000);
      const again = await m.charge(700, 'replay');
      assert.equal(again.status, first.status);
      assert.deepEqual(again.body, first.body);
      // Spaces in the number do not make another request.
      const spaced = await m.charge(700, 'replay', { ...GOOD_CARD, number: '4242424242424242' });
      assert.deepEqual(spaced.body, first.body);
      assert.equal((await m.statement()).body.lines.length, 1);
    });

    it('refuses the same key with another body: 422 idempotency_conflict', async () => {
      const m = await bank.newMerchant();
      assert.equal((await m.charge(700, 'reuse')).status, 201);
      const other = await m.charge(701, 'reuse');
      assert.equal(other.status, 422);
      assert.equal(other.body.code, 'idempotency_conflict');
      const otherCard = await m.charge(700, 'reuse', { ...GOOD_CARD, number: '5555555555554444' });
      assert.equal(otherCard.body.code, 'idempotency_conflict');
      assert.equal((await m.statement()).body.available, 700);
    });

    it('keys are per merchant', async () => {
      const a = await bank.newMerchant();
      const b = await bank.newMerchant();
      const ca = await a.charge(100, 'shared');
      const cb = await b.charge(200, 'shared');
      assert.equal(cb.status, 201);
      assert.notEqual(ca.body.id, cb.body.id);
    });

    it('20 concurrent identical charges with one key charge once', async () => {
      const m = await bank.newMerchant();
      const replies = await Promise.all(Array.from({ length: 20 }, () => m.charge(999, 'burst')));
      for (const r of replies) {
        assert.equal(r.status, 201);
        assert.deepEqual(r.body, replies[0]?.body);
      }
      const statement = await m.statement();
      assert.equal(statement.body.lines.length, 1);
      assert.equal(statement.body.available, 999);
    });

    it('stores only the last four digits of the card, never the number or cvc', async () => {
      const m = await bank.newMerchant();
      await m.charge(100, 'pan', { number: '4242 4242 4242 4242', expiry: '12/30', cvc: '987' });
      await m.charge(100, 'pan2', { number: '4000000000000002', expiry: '12/30', cvc: '987' });
      const dump = JSON.stringify([
        await bank.database.db.selectFrom('charges').selectAll().execute(),
        await bank.database.db.selectFrom('idempotency_keys').selectAll().execute(),
      ]);
      assert.ok(!dump.includes('4242424242424242') && !dump.includes('4242 4242 4242 4242'));
      assert.ok(!dump.includes('4000000000000002'));
      assert.ok(!dump.includes('cvc') && !dump.includes('"987"'));
    });
  });
}
