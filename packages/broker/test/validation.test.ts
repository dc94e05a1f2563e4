import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { b64uEncode, PaywordChain, randomBytes } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import { call, GOOD_CARD, item, type TestVendor, brokerSuite } from './harness.ts';

for (const engine of testEngines()) {
  describe(`hostile input on ${engine}`, () => {
    const suite = brokerSuite(engine);
    let vendor: TestVendor;
    let token: string;
    let chain: PaywordChain;
    before(async () => {
      vendor = await suite.broker.addVendor('hostile-test');
      token = (await suite.broker.customer()).token;
      chain = PaywordChain.generate(50);
      const bought = await suite.broker.buyCoin(token, { amount: 50, chain });
      assert.equal(bought.status, 201);
      const claim = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: vendor.apiKey,
        body: { proof: { index: 1, payword: chain.b64(1) } },
      });
      assert.equal(claim.status, 200);
    });

    async function unchanged(run: () => Promise<void>) {
      const counts = await suite.broker.counts();
      const totals = (await suite.broker.audit()).totals;
      await run();
      assert.deepEqual(await suite.broker.counts(), counts);
      assert.deepEqual((await suite.broker.audit()).totals, totals);
      assert.ok((await suite.broker.audit()).ok);
    }

    function isProblem(res: Awaited<ReturnType<typeof call>>, status: number, code: string) {
      assert.equal(res.status, status, res.text);
      assert.equal(res.body.code, code, res.text);
      assert.equal(res.body.type, `urn:netpay:error:${code}`);
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.ok(!/\bat .*\.ts:\d+/.test(res.text), 'no stack trace');
    }

    test('malformed JSON, wrong types, extra fields, bad amounts are 400 and change nothing', async () => {
      await unchanged(async () => {
        isProblem(
          await call(suite.broker.api, 'POST', '/coins', { token, key: 'm1', raw: '{"amount": 5,' }),
          400,
          'bad_request',
        );
        const bad = [
          { amount: '5', payment: { card: GOOD_CARD } },
          { amount: -5, payment: { card: GOOD_CARD } },
          { amount: 2.5, payment: { card: GOOD_CARD } },
          { amount: 0, payment: { card: GOOD_CARD } },
          { amount: 1e300, payment: { card: GOOD_CARD } },
          { amount: 5, payment: { card: GOOD_CARD }, extra: true },
          { amount: 5, unit: 0, payment: { card: GOOD_CARD } },
          { amount: 5 },
          [],
          null,
        ];
        for (const [i, body] of bad.entries()) {
          isProblem(await call(suite.broker.api, 'POST', '/coins', { token, key: `m-${i}`, body }), 400, 'bad_request');
        }
        isProblem(
          await call(suite.broker.api, 'POST', '/customers', { body: { email: 'x', password: 'long enough' } }),
          400,
          'bad_request',
        );
        isProblem(
          await call(suite.broker.api, 'POST', '/customers', {
            body: { email: 'a@b.cd', password: 'long enough', admin: true },
          }),
          400,
          'bad_request',
        );
        const proto = await call(suite.broker.api, 'POST', '/customers', {
          raw: '{"__proto__":{"x":1},"email":"p@q.rs","password":"long enough"}',
        });
        assert.equal(proto.status, 400);
        isProblem(
          await call(suite.broker.api, 'POST', '/coins', {
            token,
            key: 'm-ct',
            raw: 'amount=5',
            contentType: 'application/x-www-form-urlencoded',
          }),
          415,
          'unsupported_media_type',
        );
      });
    });

    test('huge bodies are 413 and change nothing', async () => {
      await unchanged(async () => {
        const huge = JSON.stringify({ email: `${'a'.repeat(100_000)}@b.cd`, password: 'long enough' });
        isProblem(await call(suite.broker.api, 'POST', '/customers', { raw: huge }), 413, 'payload_too_large');
        const items = Array.from({ length: 1001 }, () => item(chain, 1, 0, 1));
        const tooMany = await call(suite.broker.api, 'POST', '/redemptions', {
          token: vendor.apiKey,
          key: 'many',
          body: { items },
        });
        isProblem(tooMany, 400, 'bad_request');
        const giant = await call(suite.broker.api, 'POST', '/redemptions', {
          token: vendor.apiKey,
          key: 'giant',
          raw: `{"items":[${'"x",'.repeat(1_000_000)}"x"]}`,
        });
        isProblem(giant, 413, 'payload_too_large');
      });
    });

    test('vendor API: no key, unknown chains, forged paywords, wrong epochs', async () => {
      await unchanged(async () => {
        isProblem(await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`), 401, 'unauthorized');
        isProblem(
          await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, { token: 'np_vk_nope' }),
          401,
          'unauthorized',
        );
        const unknownId = b64uEncode(randomBytes(16));
        const unknown = await call(suite.broker.api, 'POST', `/chains/${unknownId}/claim`, { token: vendor.apiKey });
        isProblem(unknown, 404, 'unknown_chain');
        isProblem(
          await call(suite.broker.api, 'POST', '/chains/not-a-chain/claim', { token: vendor.apiKey }),
          400,
          'bad_request',
        );
        isProblem(await call(suite.broker.api, 'GET', '/vendors/nobody'), 404, 'unknown_vendor');

        const forged = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
          token: vendor.apiKey,
          body: { epoch: 1, index: 5, payword: chain.b64(6) },
        });
        isProblem(forged, 402, 'invalid_payword');
        const wrongEpoch = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
          token: vendor.apiKey,
          body: { epoch: 2, index: 5, payword: chain.b64(5) },
        });
        isProblem(wrongEpoch, 409, 'not_holder');
        const extra = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
          token: vendor.apiKey,
          body: { epoch: 1, index: 5, payword: chain.b64(5), more: 1 },
        });
        isProblem(extra, 400, 'bad_request');
        const noKey = await call(suite.broker.api, 'POST', '/redemptions', {
          token: vendor.apiKey,
          body: { items: [item(chain, 1, 0, 5)] },
        });
        isProblem(noKey, 400, 'bad_request');
        isProblem(
          await call(suite.broker.api, 'POST', '/redemptions', {
            token: vendor.apiKey,
            key: 'neg',
            body: { items: [item(chain, 1, 0, 5)].map((i) => ({ ...i, epoch: -1 })) },
          }),
          400,
          'bad_request',
        );
      });
      // Rejected items are answered (and the answer stored) but credit nothing.
      const before = (await suite.broker.audit()).totals;
      const other = PaywordChain.generate(50);
      const res = await call(suite.broker.api, 'POST', '/redemptions', {
        token: vendor.apiKey,
        key: 'forged-items',
        body: {
          items: [
            { ...item(chain, 1, 0, 5), to: { index: 5, payword: chain.b64(6) } },
            item(other, 1, 0, 5),
            item(chain, 2, 0, 5),
            { ...item(chain, 1, 0, 5), from: { index: 0, payword: chain.b64(1) } },
            item(chain, 1, 5, 5),
            { ...item(chain, 1, 0, 5), to: { index: 51, payword: chain.b64(50) } },
          ],
        },
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(
        res.body.items.map((i: { status: string; code: string }) => `${i.status}:${i.code}`),
        [
          'rejected:invalid_payword',
          'rejected:unknown_chain',
          'rejected:not_holder',
          'rejected:invalid_payword',
          'rejected:invalid_payword',
          'rejected:invalid_payword',
        ],
      );
      assert.equal(res.body.credited, 0);
      assert.deepEqual((await suite.broker.audit()).totals.accounts, before.accounts);
    });
  });
}
