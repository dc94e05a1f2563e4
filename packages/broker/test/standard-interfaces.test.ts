/**
 * The broker's standard interfaces over real HTTP, on both engines: the OpenAPI 3.1 document it serves at
 * {api}/openapi.json passes an independent validator and matches the app (every route in the table answers as
 * documented, every JSON route of the app is in the table); Prometheus metrics on the admin listener pass promtool
 * and move with a purchase, a claim and a redemption; security headers on JSON, HTML and problem answers; the
 * request id is echoed and passed on to the bank; CORS preflights on the API.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import {
  type AdminListener,
  type ApiRoute,
  documentedStatuses,
  listenAdmin,
  NON_PAGE_CSP,
  type NamedSchema,
  openApiPath,
} from '@netpay/service-kit';
import { metricValue, promtoolCheck } from '@netpay/service-kit/testing/promtool';
import { testEngines } from '@netpay/service-kit/testing';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { type Logger, pino } from 'pino';
import { BROKER_API_ROUTES, OPENAPI_PATH } from '../src/routes/route-table.ts';
import { contentSecurityPolicy } from '../src/web/respond.ts';
import { brokerSuite, call, item, proof } from './harness.ts';

/** Sample values for path parameters, well-formed so a route gets past its parameter checks. */
const SAMPLE_PARAMS: Record<string, string> = {
  chainId: 'AAAAAAAAAAAAAAAAAAAAAA',
  vendorId: 'no-such-vendor',
  code: 'no-such-code',
};

function schemaOf(schema: TSchema | NamedSchema): TSchema {
  return 'name' in schema && 'schema' in schema ? (schema as NamedSchema).schema : (schema as TSchema);
}

function urlOf(route: ApiRoute): string {
  return route.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => {
    const value = SAMPLE_PARAMS[name];
    if (value === undefined) throw new Error(`no sample value for :${name} (add one to SAMPLE_PARAMS)`);
    return value;
  });
}

/** Every bank log line, parsed. */
function bankLog(): { lines: Array<Record<string, unknown>>; logger: Logger } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

for (const engine of testEngines()) {
  describe(`broker standard interfaces (${engine})`, () => {
    let admin: AdminListener;
    const log = bankLog();

    // Registered before the suite's hooks, so the admin listener closes before the broker does (after hooks run in
    // order).
    after(async () => {
      await admin.close();
    });
    const suite = brokerSuite(engine, { bank: { logger: log.logger } });
    before(async () => {
      admin = await listenAdmin(suite.broker.app.metrics, { port: 0 });
    });

    test('the served OpenAPI document is valid 3.1 and lists every route of the table', async () => {
      const res = await call(suite.broker.url, 'GET', OPENAPI_PATH);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      const result = await new Validator().validate(res.body);
      assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
      assert.equal(res.body.openapi, '3.1.0');
      assert.deepEqual(res.body.servers, [{ url: suite.broker.url }]);
      for (const route of BROKER_API_ROUTES) {
        const operation = res.body.paths[openApiPath(route.path)]?.[route.method.toLowerCase()];
        assert.ok(operation, `${route.method} ${route.path} is in the document`);
        for (const status of route.problems) {
          assert.ok(operation.responses[status].content['application/problem+json'], `${route.path} ${status}`);
        }
      }
      assert.ok(res.body.components.schemas.ClaimResponse.properties.holder, 'schemas come from the protocol');
    });

    test('every route of the table answers as documented; every JSON route of the app is in the table', async () => {
      for (const route of BROKER_API_ROUTES) {
        const res = await suite.broker.app.inject({
          method: route.method,
          url: urlOf(route),
          ...(route.body ? { payload: {} } : {}),
        });
        const where = `${route.method} ${route.path} → ${res.statusCode} ${res.body.slice(0, 200)}`;
        assert.ok(documentedStatuses(route).includes(res.statusCode), `undocumented status: ${where}`);
        const problem = route.problems.includes(res.statusCode) && !(res.statusCode in route.responses);
        if (problem) {
          assert.match(String(res.headers['content-type']), /^application\/problem\+json/, where);
          assert.doesNotMatch(res.body, /no route for/, where);
        } else {
          const schema = route.responses[res.statusCode]?.schema;
          if (schema) assert.ok(Value.Check(schemaOf(schema), res.json()), `body off its schema: ${where}`);
        }
      }
      const inTable = new Set(BROKER_API_ROUTES.map((r) => `${r.method} ${r.path}`));
      const json = suite.broker.app.declaredRoutes.filter(
        (r) => r.url.startsWith('/api/') || r.url.startsWith('/.well-known/') || r.url === '/healthz',
      );
      assert.ok(json.length >= BROKER_API_ROUTES.length);
      for (const r of json)
        assert.ok(inTable.has(`${r.method} ${r.url}`), `${r.method} ${r.url} is not in the route table`);
    });

    test('business metrics move with a purchase, a claim and a redemption, and pass promtool', async (t) => {
      const scrape = async () => (await fetch(admin.metricsUrl)).text();
      const before = await scrape();
      const customer = await suite.broker.customer();
      const chain = PaywordChain.generate(100);
      const bought = await suite.broker.buyCoin(customer.token, { amount: 100, unit: 1, chain });
      assert.equal(bought.status, 201, bought.text);
      const vendor = await suite.broker.addVendor(`metrics-${engine}`);
      const claim = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: vendor.apiKey,
        body: proof(chain, 5),
      });
      assert.equal(claim.status, 200, claim.text);
      const refused = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, { token: 'wrong' });
      assert.equal(refused.status, 401);
      const redeemed = await call(suite.broker.api, 'POST', '/redemptions', {
        token: vendor.apiKey,
        key: `metrics-${engine}`,
        body: { items: [item(chain, 1, 0, 5)] },
      });
      assert.equal(redeemed.status, 200, redeemed.text);
      assert.equal(redeemed.body.items[0].status, 'accepted', redeemed.text);
      const after = await scrape();

      const moved = (name: string, labels: Record<string, string> = {}) =>
        (metricValue(after, name, labels) ?? 0) - (metricValue(before, name, labels) ?? 0);
      assert.equal(
        moved('netpay_broker_coin_purchase_requests_total', { outcome: 'created' }),
        1,
        'netpay_broker_coin_purchase_requests_total, { outcome: created }',
      );
      assert.equal(
        moved('netpay_broker_ledger_entries_total', { kind: 'purchase' }),
        1,
        'netpay_broker_ledger_entries_total, { kind: purchase }',
      );
      assert.equal(
        moved('netpay_broker_ledger_amount_minor_total', { kind: 'purchase' }),
        100,
        'netpay_broker_ledger_amount_minor_total, { kind: purchase }',
      );
      assert.equal(
        moved('netpay_broker_claims_total', { outcome: 'granted' }),
        1,
        'netpay_broker_claims_total, { outcome: granted }',
      );
      assert.equal(
        moved('netpay_broker_claims_total', { outcome: 'unauthorized' }),
        1,
        'netpay_broker_claims_total, { outcome: unauthorized }',
      );
      assert.equal(
        moved('netpay_broker_redemption_items_total', { status: 'accepted' }),
        1,
        'netpay_broker_redemption_items_total, { status: accepted }',
      );
      assert.equal(
        moved('netpay_broker_ledger_entries_total', { kind: 'redemption' }),
        1,
        'netpay_broker_ledger_entries_total, { kind: redemption }',
      );
      assert.equal(
        moved('netpay_broker_ledger_amount_minor_total', { kind: 'redemption' }),
        5,
        'netpay_broker_ledger_amount_minor_total, { kind: redemption }',
      );
      const fee = redeemed.body.items[0].fee as number;
      assert.equal(
        moved('netpay_broker_vendor_credited_minor_total'),
        5 - fee,
        'netpay_broker_vendor_credited_minor_total',
      );
      assert.equal(moved('netpay_broker_fees_minor_total'), fee, 'netpay_broker_fees_minor_total');
      assert.ok(moved('netpay_http_request_duration_seconds_count', { route: '/api/v1/coins', status: '201' }) >= 1);
      assert.match(after, /# TYPE netpay_broker_payouts gauge/);
      assert.match(after, /# TYPE netpay_broker_conflicts_total counter/);

      const verdict = promtoolCheck(after);
      if (verdict.kind === 'missing') return t.skip(verdict.message);
      assert.ok(verdict.ok, verdict.output);
    });

    test('security headers on JSON, HTML and problem answers; pages keep their own CSP', async () => {
      for (const [path, csp, type] of [
        ['/.well-known/netpay', NON_PAGE_CSP, /^application\/json/],
        ['/api/v1/coins', NON_PAGE_CSP, /^application\/problem\+json/],
        ['/no-such-page', NON_PAGE_CSP, /^application\/problem\+json/],
        ['/login', contentSecurityPolicy(), /^text\/html/],
      ] as const) {
        const res = await fetch(suite.broker.url + path);
        assert.match(res.headers.get('content-type') ?? '', type, path);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
        assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
        assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
        assert.equal(res.headers.get('content-security-policy'), csp, path);
        assert.equal(res.headers.get('strict-transport-security'), null, `${path}: plain http, no HSTS`);
      }
    });

    test('X-Request-Id is echoed and passed on to the suite.bank, which logs the charge under it', async () => {
      const customer = await suite.broker.customer();
      const id = `buy-${engine}-${Date.now()}`;
      const res = await fetch(`${suite.broker.api}/coins`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${customer.token}`,
          'content-type': 'application/json',
          'idempotency-key': id,
          'x-request-id': id,
        },
        body: JSON.stringify({
          amount: 50,
          payment: { card: { number: '4242 4242 4242 4242', expiry: '12/30', cvc: '123' } },
        }),
      });
      assert.equal(res.status, 201, await res.text());
      assert.equal(res.headers.get('x-request-id'), id);
      const charge = log.lines.find((l) => l.reqId === id && l.msg === 'request' && l.url === '/v1/charges');
      assert.ok(charge, 'the bank logged the charge under the broker request’s id');
      assert.equal(charge.status, 201);
    });

    test('CORS: the API answers preflights for any origin, without credentials; pages do not', async () => {
      const preflight = await fetch(`${suite.broker.api}/coins`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://news.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type, idempotency-key',
        },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get('access-control-allow-origin'), '*');
      const allowed = (preflight.headers.get('access-control-allow-headers') ?? '').toLowerCase();
      for (const h of ['authorization', 'content-type', 'idempotency-key']) assert.ok(allowed.includes(h), h);
      assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/);
      assert.equal(preflight.headers.get('access-control-allow-credentials'), null);

      const discovery = await fetch(`${suite.broker.url}/.well-known/netpay`, {
        headers: { origin: 'https://news.example' },
      });
      assert.equal(discovery.headers.get('access-control-allow-origin'), '*');

      const page = await fetch(`${suite.broker.url}/login`, { headers: { origin: 'https://news.example' } });
      assert.equal(page.headers.get('access-control-allow-origin'), null);
    });
  });
}
