import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashToken, newSecret } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { type BankUnderTest, GOOD_CARD, request, startBank } from './bank-harness.ts';

for (const engine of testEngines()) {
  describe(`edge: auth and untrusted input (${engine})`, () => {
    const brokerKey = newSecret('bk_');
    let bank: BankUnderTest;
    before(async () => {
      bank = await startBank(engine, hashToken(brokerKey));
    });
    after(async () => bank.close());

    it('the apiKeyHash option registers merchant broker', async () => {
      const res = await request(bank.baseUrl, 'GET', '/v1/statement', { authorization: `Bearer ${brokerKey}` });
      assert.equal(res.status, 200);
      assert.equal(res.body.merchant, 'broker');
    });

    it('unauthenticated calls are 401 unauthorized', async () => {
      const m = await bank.newMerchant();
      for (const authorization of [null, 'Bearer nope-not-a-key', `Basic ${m.apiKey}`, `Bearer ${m.apiKey}x`]) {
        const res = await m.call('POST', '/v1/charges', {
          authorization,
          idempotencyKey: 'k',
          body: { amount: 100, currency: 'NZD', card: GOOD_CARD },
        });
        assert.equal(res.status, 401, String(authorization));
        assert.equal(res.body.code, 'unauthorized');
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
      }
      assert.equal((await m.call('GET', '/v1/balance', { authorization: null })).status, 401);
      assert.deepEqual((await m.statement()).body.lines, []);
    });

    it('malformed requests are 4xx problems and change nothing', async () => {
      const m = await bank.newMerchant();
      const body = { amount: 100, currency: 'NZD', card: GOOD_CARD };
      const cases: [string, Parameters<typeof m.call>[2], number][] = [
        ['malformed JSON', { idempotencyKey: 'k', rawBody: '{"amount": 100,' }, 400],
        [
          'huge body',
          { idempotencyKey: 'k', rawBody: JSON.stringify({ ...body, description: 'x'.repeat(100_000) }) },
          413,
        ],
        ['negative amount', { idempotencyKey: 'k', body: { ...body, amount: -100 } }, 400],
        ['zero amount', { idempotencyKey: 'k', body: { ...body, amount: 0 } }, 400],
        ['fractional amount', { idempotencyKey: 'k', body: { ...body, amount: 1.5 } }, 400],
        ['amount as a string', { idempotencyKey: 'k', body: { ...body, amount: '100' } }, 400],
        ['unsafe amount', { idempotencyKey: 'k', body: { ...body, amount: 2 ** 60 } }, 400],
        ['extra field', { idempotencyKey: 'k', body: { ...body, tip: 5 } }, 400],
        ['extra card field', { idempotencyKey: 'k', body: { ...body, card: { ...GOOD_CARD, name: 'A' } } }, 400],
        ['lower-case currency', { idempotencyKey: 'k', body: { ...body, currency: 'nzd' } }, 400],
        ['no Idempotency-Key', { body }, 400],
        ['empty Idempotency-Key', { idempotencyKey: '', body }, 400],
        ['long Idempotency-Key', { idempotencyKey: 'k'.repeat(201), body }, 400],
        ['array body', { idempotencyKey: 'k', body: [body] }, 400],
      ];
      for (const [name, options, status] of cases) {
        const res = await m.call('POST', '/v1/charges', options);
        assert.equal(res.status, status, name);
        assert.match(res.contentType, /^application\/problem\+json/, name);
        assert.equal(typeof res.body.code, 'string', name);
      }
      const badPayouts = [
        { amount: 1, currency: 'NZD', destination: 'Vendor X' },
        { amount: 1, currency: 'NZD', destination: 'v'.repeat(101) },
        { amount: 1, currency: 'NZD' },
      ];
      for (const payout of badPayouts) {
        const res = await m.call('POST', '/v1/payouts', { idempotencyKey: 'p', body: payout });
        assert.equal(res.status, 400, JSON.stringify(payout));
      }
      const badRefund = await m.call('POST', '/v1/refunds', {
        idempotencyKey: 'r',
        body: { chargeId: 'x', amount: 1 },
      });
      assert.equal(badRefund.status, 400);
      assert.equal((await m.call('GET', '/v1/balance?currency=nz')).status, 400);
      assert.equal((await m.call('GET', '/v1/accounts/BAD%20ONE/statement')).status, 400);

      assert.deepEqual((await m.statement()).body.lines, []);
      // None of the rejected requests used up key `k`.
      assert.equal((await m.charge(100, 'k')).status, 201);
    });

    it('unknown routes are 404 problems', async () => {
      const res = await request(bank.baseUrl, 'GET', '/v1/nothing-here', {});
      assert.equal(res.status, 404);
      assert.equal(res.body.code, 'not_found');
    });
  });
}
