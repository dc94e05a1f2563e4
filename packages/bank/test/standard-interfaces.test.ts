/**
 * The sandbox bank's standard interfaces over real HTTP, on both engines: the OpenAPI 3.1 document at /openapi.json
 * passes an independent validator and matches the app (every route in the table answers as documented, with bodies
 * on their schemas; every route of the app is in the table); metrics on the admin listener count charges, refunds
 * and payouts (a replay apart) and pass promtool; security headers and the request id on every answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type AdminListener,
  type ApiRoute,
  documentedStatuses,
  listenAdmin,
  NON_PAGE_CSP,
  type NamedSchema,
  openApiPath,
} from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { metricValue, promtoolCheck } from '@netpay/service-kit/testing/promtool';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { BANK_API_ROUTES, BANK_OPENAPI_PATH, ChargeSchema, PayoutSchema, RefundSchema } from '../src/route-table.ts';
import { type BankUnderTest, type MerchantClient, startBank } from './bank-harness.ts';

function schemaOf(schema: TSchema | NamedSchema): TSchema {
  return 'name' in schema && 'schema' in schema ? (schema as NamedSchema).schema : (schema as TSchema);
}

const SAMPLE_PARAMS: Record<string, string> = { destination: 'vendor:sample' };

function urlOf(route: ApiRoute): string {
  return route.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => SAMPLE_PARAMS[name] ?? 'x');
}

for (const engine of testEngines()) {
  describe(`bank standard interfaces (${engine})`, () => {
    let bank: BankUnderTest;
    let merchant: MerchantClient;
    let admin: AdminListener;

    before(async () => {
      bank = await startBank(engine);
      merchant = await bank.newMerchant();
      admin = await listenAdmin(bank.app.metrics, { port: 0 });
    });
    after(async () => {
      await admin.close();
      await bank.close();
    });

    test('the served OpenAPI document is valid 3.1 and lists every route of the table', async () => {
      const res = await fetch(bank.baseUrl + BANK_OPENAPI_PATH);
      assert.equal(res.status, 200);
      const document = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
      const result = await new Validator().validate(document);
      assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
      assert.equal(document.openapi, '3.1.0');
      for (const route of BANK_API_ROUTES) {
        assert.ok(
          document.paths[openApiPath(route.path)]?.[route.method.toLowerCase()],
          `${route.method} ${route.path}`,
        );
      }
    });

    test('every route of the table answers as documented, signed in or not; every route of the app is in it', async () => {
      for (const authorization of [undefined, `Bearer ${merchant.apiKey}`]) {
        for (const route of BANK_API_ROUTES) {
          const res = await bank.app.inject({
            method: route.method,
            url: urlOf(route),
            headers: authorization ? { authorization } : {},
            ...(route.body ? { payload: {} } : {}),
          });
          const where = `${route.method} ${route.path} → ${res.statusCode} ${res.body.slice(0, 200)}`;
          assert.ok(documentedStatuses(route).includes(res.statusCode), `undocumented status: ${where}`);
          const answer = route.responses[res.statusCode];
          if (answer?.schema) assert.ok(Value.Check(schemaOf(answer.schema), res.json()), `off its schema: ${where}`);
          else assert.match(String(res.headers['content-type']), /^application\/problem\+json/, where);
        }
      }
      const inTable = new Set(BANK_API_ROUTES.map((r) => `${r.method} ${r.path}`));
      for (const r of bank.app.declaredRoutes) assert.ok(inTable.has(`${r.method} ${r.url}`), `${r.method} ${r.url}`);
    });

    test('charges, refunds and payouts are counted once each (a replay apart) and pass promtool', async (t) => {
      const scrape = async () => (await fetch(admin.metricsUrl)).text();
      const before = await scrape();
      const charge = await merchant.charge(500, `c-${engine}`);
      assert.equal(charge.status, 201);
      assert.ok(Value.Check(ChargeSchema, charge.body));
      assert.equal((await merchant.charge(500, `c-${engine}`)).status, 201, 'the replay');
      const declined = await merchant.charge(300, `d-${engine}`, {
        number: '4000 0000 0000 0002',
        expiry: '12/30',
        cvc: '123',
      });
      assert.equal(declined.status, 402);
      const refund = await merchant.call('POST', '/v1/refunds', {
        idempotencyKey: `r-${engine}`,
        body: { chargeId: charge.body.id, amount: 120 },
      });
      assert.equal(refund.status, 201);
      assert.ok(Value.Check(RefundSchema, refund.body));
      const payout = await merchant.call('POST', '/v1/payouts', {
        idempotencyKey: `p-${engine}`,
        body: { amount: 200, currency: 'NZD', destination: 'vendor:metrics' },
      });
      assert.equal(payout.status, 201);
      assert.ok(Value.Check(PayoutSchema, payout.body));
      const after = await scrape();

      const moved = (name: string, labels: Record<string, string>) =>
        (metricValue(after, name, labels) ?? 0) - (metricValue(before, name, labels) ?? 0);
      const ops = 'netpay_bank_operations_total';
      const amount = 'netpay_bank_amount_minor_total';
      assert.equal(moved(ops, { kind: 'charge', outcome: 'succeeded' }), 1);
      assert.equal(moved(ops, { kind: 'charge', outcome: 'replayed' }), 1);
      assert.equal(moved(ops, { kind: 'charge', outcome: 'card_declined' }), 1);
      assert.equal(moved(amount, { kind: 'charge' }), 500, 'the replay and the decline moved nothing');
      assert.equal(moved(ops, { kind: 'refund', outcome: 'succeeded' }), 1);
      assert.equal(moved(amount, { kind: 'refund' }), 120);
      assert.equal(moved(ops, { kind: 'payout', outcome: 'succeeded' }), 1);
      assert.equal(moved(amount, { kind: 'payout' }), 200);

      const verdict = promtoolCheck(after);
      if (verdict.kind === 'missing') return t.skip(verdict.message);
      assert.ok(verdict.ok, verdict.output);
    });

    test('security headers and the request id on JSON and problem answers', async () => {
      for (const [path, status] of [
        ['/healthz', 200],
        ['/v1/balance', 401],
        ['/nowhere', 404],
      ] as const) {
        const res = await fetch(bank.baseUrl + path, { headers: { 'x-request-id': `bank-${engine}-1` } });
        assert.equal(res.status, status, path);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
        assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
        assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
        assert.equal(res.headers.get('content-security-policy'), NON_PAGE_CSP, path);
        assert.equal(res.headers.get('x-request-id'), `bank-${engine}-1`, path);
      }
    });
  });
}
