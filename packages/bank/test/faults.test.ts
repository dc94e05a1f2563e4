import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { type BankUnderTest, GOOD_CARD, startBank } from './bank-harness.ts';

for (const engine of testEngines()) {
  describe(`sandbox faults (${engine})`, () => {
    let bank: BankUnderTest;
    before(async () => {
      bank = await startBank(engine);
    });
    after(async () => bank.close());

    it('a client that times out has been charged; its retry with the same key gets that charge', async () => {
      const m = await bank.newMerchant();
      const set = await m.call('POST', '/v1/sandbox/faults', { body: { latencyMs: 3000 } });
      assert.deepEqual(set.body, { latencyMs: 3000, failNext: 0 });
      await assert.rejects(
        m.call('POST', '/v1/charges', {
          idempotencyKey: 'slow',
          body: { amount: 2500, currency: 'NZD', card: GOOD_CARD },
          signal: AbortSignal.timeout(100),
        }),
      );
      // The client gave up after 100 ms; the bank commits before its 3 s delay, which a loaded box may take longer
      // than that to reach, so the statement is read until the charge is there, for 2 s: well before the delay ends.
      let lines = (await m.statement()).body.lines;
      for (let i = 0; i < 20 && lines.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        lines = (await m.statement()).body.lines;
      }
      assert.equal(lines.length, 1, 'the charge was committed before the delay');
      assert.deepEqual((await m.call('DELETE', '/v1/sandbox/faults')).body, { latencyMs: 0, failNext: 0 });
      const retry = await m.charge(2500, 'slow');
      assert.equal(retry.status, 201);
      assert.equal(retry.body.id, lines[0].id);
      assert.equal((await m.statement()).body.lines.length, 1);
    });

    it('failNext answers 503 without doing anything, then recovers', async () => {
      const m = await bank.newMerchant();
      await m.call('POST', '/v1/sandbox/faults', { body: { failNext: 2 } });
      for (let i = 0; i < 2; i++) {
        const res = await m.charge(100, 'flaky');
        assert.equal(res.status, 503);
        assert.equal(res.body.code, 'internal_error');
        assert.equal(res.contentType, 'application/problem+json; charset=utf-8');
      }
      assert.deepEqual((await m.statement()).body.lines, []);
      assert.equal((await m.charge(100, 'flaky')).status, 201);
      assert.equal((await m.statement()).body.lines.length, 1);
    });

    it('faults belong to the merchant that set them', async () => {
      const a = await bank.newMerchant();
      const b = await bank.newMerchant();
      await a.call('POST', '/v1/sandbox/faults', { body: { failNext: 1 } });
      assert.equal((await b.charge(100, 'k')).status, 201);
      assert.equal((await a.charge(100, 'k')).status, 503);
    });

    it('rejects fault settings out of range', async () => {
      const m = await bank.newMerchant();
      for (const body of [{ latencyMs: 60_001 }, { failNext: -1 }, { failNext: 1.5 }, { other: 1 }]) {
        const res = await m.call('POST', '/v1/sandbox/faults', { body });
        assert.equal(res.status, 400, JSON.stringify(body));
      }
    });
  });
}
