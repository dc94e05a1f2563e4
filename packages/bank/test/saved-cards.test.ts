import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { type BankUnderTest, GOOD_CARD, startBank } from './bank-harness.ts';

for (const engine of testEngines()) {
  describe(`saved cards (${engine})`, () => {
    let bank: BankUnderTest;
    before(async () => {
      bank = await startBank(engine);
    });
    after(async () => bank.close());

    it('POST /v1/cards answers a token once; charges by token behave like the card; only hash, last 4 and expiry are kept', async () => {
      const m = await bank.newMerchant();
      const saved = await m.call('POST', '/v1/cards', { body: { card: GOOD_CARD } });
      assert.equal(saved.status, 201);
      assert.match(saved.body.cardToken, /^ct_[A-Za-z0-9_-]{43}$/);
      assert.deepEqual({ ...saved.body, cardToken: 'x' }, { cardToken: 'x', last4: '4242', expiry: '12/30' });

      const charge = (key: string, amount = 500) =>
        m.call('POST', '/v1/charges', {
          idempotencyKey: key,
          body: { amount, currency: 'NZD', cardToken: saved.body.cardToken, description: 'top-up' },
        });
      const first = await charge('t-1');
      assert.equal(first.status, 201);
      assert.equal(first.body.cardLast4, '4242');
      assert.deepEqual((await charge('t-1')).body, first.body, 'a repeat gets the same charge');
      assert.equal((await charge('t-1', 600)).body.code, 'idempotency_conflict');
      assert.equal((await m.call('GET', '/v1/balance')).body.available, 500);

      const rows = await bank.database.db.selectFrom('saved_cards').selectAll().execute();
      const text = JSON.stringify(rows);
      assert.ok(!text.includes(saved.body.cardToken), 'the token is stored hashed');
      assert.ok(!text.includes('4242424242424242') && !text.includes('4242 4242'), 'never the number');
      assert.ok(!text.includes('"123"'), 'never the cvc');
    });

    it('a token of another merchant, an unknown or malformed token, or both card and token: 400 invalid_card', async () => {
      const a = await bank.newMerchant();
      const b = await bank.newMerchant();
      const token = (await a.call('POST', '/v1/cards', { body: { card: GOOD_CARD } })).body.cardToken as string;
      for (const body of [
        { amount: 100, currency: 'NZD', cardToken: token },
        { amount: 100, currency: 'NZD', cardToken: `ct_${'A'.repeat(43)}` },
        { amount: 100, currency: 'NZD', cardToken: 'garbage' },
        { amount: 100, currency: 'NZD' },
      ]) {
        const res = await b.call('POST', '/v1/charges', { idempotencyKey: `k-${Math.random()}`, body });
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.code, 'invalid_card');
      }
      const both = await a.call('POST', '/v1/charges', {
        idempotencyKey: 'both',
        body: { amount: 100, currency: 'NZD', card: GOOD_CARD, cardToken: token },
      });
      assert.equal(both.status, 400);
      assert.equal((await b.call('GET', '/v1/balance')).body.available, 0);
    });

    it('a declined card is not saved; a card without funds is, and its charges answer insufficient_funds', async () => {
      const m = await bank.newMerchant();
      const declined = await m.call('POST', '/v1/cards', {
        body: { card: { ...GOOD_CARD, number: '4000 0000 0000 0002' } },
      });
      assert.equal(declined.status, 402);
      assert.equal(declined.body.code, 'card_declined');
      const broke = await m.call('POST', '/v1/cards', { body: { card: { ...GOOD_CARD, number: '4000000000009995' } } });
      assert.equal(broke.status, 201);
      assert.equal(broke.body.last4, '9995');
      const charge = await m.call('POST', '/v1/charges', {
        idempotencyKey: 'nf',
        body: { amount: 100, currency: 'NZD', cardToken: broke.body.cardToken },
      });
      assert.equal(charge.status, 402);
      assert.equal(charge.body.code, 'insufficient_funds');
      const bad = await m.call('POST', '/v1/cards', { body: { card: { ...GOOD_CARD, expiry: '01/20' } } });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.code, 'invalid_card');
      assert.equal((await m.call('POST', '/v1/cards', { body: { card: GOOD_CARD }, authorization: null })).status, 401);
    });
  });
}
