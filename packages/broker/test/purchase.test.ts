import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import {
  type BankUnderTest,
  type BrokerUnderTest,
  call,
  DECLINED_CARD,
  freePort,
  GOOD_CARD,
  NO_FUNDS_CARD,
  startBank,
  startBroker,
} from './harness.ts';

function chargeLines(statement: { body: { lines: Array<{ kind: string }> } }) {
  return statement.body.lines.filter((l) => l.kind === 'charge').length;
}

for (const engine of testEngines()) {
  describe(`coin purchases on ${engine}`, () => {
    let bank: BankUnderTest;
    let broker: BrokerUnderTest;
    before(async () => {
      bank = await startBank(engine);
      // Long enough for every ordinary purchase of the file on a loaded box; the slow bank below takes 2.5 s.
      broker = await startBroker(engine, bank, { bankTimeoutMs: 1000 });
    });
    after(async () => {
      await broker?.close();
      await bank?.close();
    });

    const buy = (token: string, key: string, body: Record<string, unknown>) =>
      call(broker.api, 'POST', '/coins', { token, key, body });

    test('a broker-made coin carries its seed, and the seed makes the anchor', async () => {
      const { token } = await broker.customer();
      const res = await buy(token, 'k1', { amount: 50, payment: { card: GOOD_CARD } });
      assert.equal(res.status, 201, res.text);
      const chain = PaywordChain.fromB64(res.body.chainId, res.body.seed, 50);
      assert.equal(res.body.touchstone.anchor, chain.anchorB64);
      assert.equal(res.body.touchstone.unit, 1);
      const replay = await buy(token, 'k1', { amount: 50, payment: { card: GOOD_CARD } });
      assert.equal(replay.status, 201);
      assert.equal(replay.text, res.text, 'same key, same body: the same bytes');
      const other = await buy(token, 'k1', { amount: 51, payment: { card: GOOD_CARD } });
      assert.equal(other.status, 422);
      assert.equal(other.body.code, 'idempotency_conflict');
      const coins = await call(broker.api, 'GET', '/coins', { token });
      assert.equal(coins.body.coins.length, 1);
      assert.ok((await broker.audit()).ok);
    });

    test('declined and invalid cards make no coin and no ledger entry', async () => {
      const { token } = await broker.customer();
      const before = await broker.counts();
      const declined = await buy(token, 'd1', { amount: 10, payment: { card: DECLINED_CARD } });
      assert.equal(declined.status, 402);
      assert.equal(declined.body.code, 'card_declined');
      assert.equal(declined.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      const noFunds = await buy(token, 'd2', { amount: 10, payment: { card: NO_FUNDS_CARD } });
      assert.equal(noFunds.status, 402);
      assert.equal(noFunds.body.code, 'insufficient_funds');
      const invalid = await buy(token, 'd3', {
        amount: 10,
        payment: { card: { number: '4242 4242 4242 4241', expiry: '12/30', cvc: '123' } },
      });
      assert.equal(invalid.status, 400);
      assert.equal(invalid.body.code, 'invalid_card');
      const expired = await buy(token, 'd4', {
        amount: 10,
        payment: { card: { number: '4242 4242 4242 4242', expiry: '01/20', cvc: '123' } },
      });
      assert.equal(expired.body.code, 'invalid_card');
      assert.deepEqual(await broker.counts(), before);
      assert.ok((await broker.audit()).ok);
    });

    test('a slow bank is 503 bank_unavailable; the retry with the same key charges once and issues one coin', async () => {
      const { token } = await broker.customer();
      const chain = PaywordChain.generate(30);
      const body = { amount: 30, chainId: chain.chainIdB64, anchor: chain.anchorB64, payment: { card: GOOD_CARD } };
      const chargesBefore = chargeLines(await bank.statement());
      const countsBefore = await broker.counts();
      await bank.faults({ latencyMs: 2500 });
      try {
        const slow = await buy(token, 'slow-1', body);
        assert.equal(slow.status, 503, slow.text);
        assert.equal(slow.body.code, 'bank_unavailable');
      } finally {
        await bank.clearFaults();
      }
      assert.deepEqual(await broker.counts(), countsBefore, 'nothing written when the bank timed out');
      // Let the bank finish its delayed answer; it charged the card under that key.
      await new Promise((r) => setTimeout(r, 1800));
      assert.equal(chargeLines(await bank.statement()), chargesBefore + 1);

      const retry = await buy(token, 'slow-1', body);
      assert.equal(retry.status, 201, retry.text);
      assert.equal(retry.body.chainId, chain.chainIdB64);
      assert.equal(chargeLines(await bank.statement()), chargesBefore + 1, 'the bank deduplicated the charge');
      const again = await buy(token, 'slow-1', body);
      assert.equal(again.text, retry.text);
      const coins = await call(broker.api, 'GET', '/coins', { token });
      assert.equal(coins.body.coins.length, 1);
      assert.ok((await broker.audit()).ok);
    });

    test('a failing bank (5xx) is 503 and nothing is written', async () => {
      const { token } = await broker.customer();
      const countsBefore = await broker.counts();
      await bank.faults({ failNext: 1 });
      const failed = await buy(token, 'fail-1', { amount: 20, payment: { card: GOOD_CARD } });
      assert.equal(failed.status, 503);
      assert.equal(failed.body.code, 'bank_unavailable');
      assert.deepEqual(await broker.counts(), countsBefore);
      const retry = await buy(token, 'fail-1', { amount: 20, payment: { card: GOOD_CARD } });
      assert.equal(retry.status, 201, retry.text);
    });

    test('a bank that is down (port closed) is 503 bank_unavailable, no coin', async () => {
      const port = await freePort();
      const lonely = await startBroker(engine, { url: `http://127.0.0.1:${port}`, apiKey: bank.apiKey });
      try {
        const { token } = await lonely.customer();
        const before = await lonely.counts();
        const res = await call(lonely.api, 'POST', '/coins', {
          token,
          key: 'down-1',
          body: { amount: 20, payment: { card: GOOD_CARD } },
        });
        assert.equal(res.status, 503);
        assert.equal(res.body.code, 'bank_unavailable');
        assert.deepEqual(await lonely.counts(), before);
        assert.ok((await lonely.audit()).ok);
      } finally {
        await lonely.close();
      }
    });

    test('coin rules: unit multiples, chain length, chainId with anchor, chainId in use, key required', async () => {
      const { token } = await broker.customer();
      const before = await broker.counts();
      const notMultiple = await buy(token, 'r1', { amount: 10, unit: 3, payment: { card: GOOD_CARD } });
      assert.equal(notMultiple.status, 400);
      assert.equal(notMultiple.body.code, 'bad_request');
      const tooLong = await buy(token, 'r2', { amount: 100_001, payment: { card: GOOD_CARD } });
      assert.equal(tooLong.status, 400);
      const chain = PaywordChain.generate(5);
      const onlyId = await buy(token, 'r3', { amount: 5, chainId: chain.chainIdB64, payment: { card: GOOD_CARD } });
      assert.equal(onlyId.status, 400);
      const noKey = await call(broker.api, 'POST', '/coins', {
        token,
        body: { amount: 5, payment: { card: GOOD_CARD } },
      });
      assert.equal(noKey.status, 400);
      const noAuth = await call(broker.api, 'POST', '/coins', {
        key: 'x',
        body: { amount: 5, payment: { card: GOOD_CARD } },
      });
      assert.equal(noAuth.status, 401);
      assert.equal(noAuth.body.code, 'unauthorized');
      assert.deepEqual(await broker.counts(), before);

      const first = await buy(token, 'r4', {
        amount: 5,
        chainId: chain.chainIdB64,
        anchor: chain.anchorB64,
        payment: { card: GOOD_CARD },
      });
      assert.equal(first.status, 201);
      const other = await broker.customer();
      const taken = await call(broker.api, 'POST', '/coins', {
        token: other.token,
        key: 'r5',
        body: { amount: 5, chainId: chain.chainIdB64, anchor: chain.anchorB64, payment: { card: GOOD_CARD } },
      });
      assert.equal(taken.status, 409);
      assert.equal(taken.body.code, 'chain_exists');
      assert.ok((await broker.audit()).ok);
    });

    test('a customer who logs in correctly many times is never throttled', async () => {
      const { email } = await broker.customer();
      for (let i = 0; i < 25; i++) {
        const r = await call(broker.api, 'POST', '/sessions', { body: { email, password: 'correct horse' } });
        assert.equal(r.status, 200);
      }
    });

    test('customers: email taken, wrong password, rate-limited logins', async () => {
      const email = `Taken-${Date.now()}@Example.test`;
      const created = await call(broker.api, 'POST', '/customers', { body: { email, password: 'password-1' } });
      assert.equal(created.status, 201);
      assert.match(created.body.customerId, /^cus_/);
      const dup = await call(broker.api, 'POST', '/customers', {
        body: { email: email.toLowerCase(), password: 'password-2' },
      });
      assert.equal(dup.status, 409);
      assert.equal(dup.body.code, 'email_taken');
      const wrong = await call(broker.api, 'POST', '/sessions', { body: { email, password: 'nope-nope' } });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.code, 'invalid_credentials');
      const unknown = await call(broker.api, 'POST', '/sessions', {
        body: { email: 'nobody@example.test', password: 'x' },
      });
      assert.equal(unknown.status, 401);
      let limited: Awaited<ReturnType<typeof call>> | undefined;
      for (let i = 0; i < 15 && !limited; i++) {
        const r = await call(broker.api, 'POST', '/sessions', { body: { email, password: 'wrong-again' } });
        if (r.status === 429) limited = r;
      }
      assert.ok(limited, 'failed logins for one email are rate-limited');
      assert.equal(limited.body.code, 'rate_limited');
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    });
  });
}
