/**
 * The service edge every NetPay service shares, over real HTTP: security headers on JSON, HTML and problem answers
 * (HSTS only over https), X-Request-Id taken, echoed, logged and readable in the request's work, CORS preflights on
 * the paths opened to browsers, and Prometheus metrics on the admin listener only, passing promtool.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { ProtocolError } from '@netpay/protocol';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import {
  type AdminListener,
  createService,
  currentRequestId,
  DEFAULT_PAGE_CSP,
  listenAdmin,
  NON_PAGE_CSP,
  openToBrowsers,
  vendorMetrics,
} from '../src/index.ts';
import { metricValue, promtoolCheck } from '../src/testing-promtool.ts';

/** A pino destination that keeps every line, parsed. */
function logCapture(): { lines: Array<Record<string, unknown>>; stream: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, stream };
}

function build(options: { trustProxy?: boolean; requestContext?: boolean } = {}) {
  const log = logCapture();
  const app = createService({
    name: 'edge-test',
    logger: pino({ level: 'info' }, log.stream),
    requestContext: options.requestContext ?? true,
    ...(options.trustProxy !== undefined ? { trustProxy: options.trustProxy } : {}),
  });
  app.get('/json', async () => ({ ok: true }));
  app.get('/page', async (_request, reply) => reply.type('text/html; charset=utf-8').send('<p>hello</p>'));
  app.get('/own-csp', async (_request, reply) =>
    reply.header('content-security-policy', "default-src 'self'").type('text/html').send('<p>x</p>'),
  );
  app.get('/refused', async () => {
    throw new ProtocolError('forbidden', 'not for you');
  });
  app.post('/echo-id', async (request) => {
    // After the body was parsed and after a timer: the id must still be the request's.
    await sleep(1);
    return { seen: currentRequestId(), body: request.body };
  });
  openToBrowsers(app, {
    paths: ['/api/', '/.well-known/netpay'],
    methods: ['GET', 'POST'],
    allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key'],
    exposeHeaders: ['X-Request-Id', 'Retry-After'],
  });
  app.get('/api/thing', async () => ({ thing: 1 }));
  return { app, log };
}

describe('service edge', () => {
  let app: FastifyInstance;
  let proxied: FastifyInstance;
  let log: ReturnType<typeof logCapture>;
  let base = '';
  let proxiedBase = '';
  let admin: AdminListener;

  before(async () => {
    ({ app, log } = build());
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    ({ app: proxied } = build({ trustProxy: true }));
    proxiedBase = await proxied.listen({ host: '127.0.0.1', port: 0 });
    admin = await listenAdmin(app.metrics, { port: 0 });
  });
  after(async () => {
    await admin.close();
    await app.close();
    await proxied.close();
  });

  test('security headers on JSON, HTML, problem and not-found answers; a route’s own CSP is kept', async () => {
    for (const [path, csp] of [
      ['/json', NON_PAGE_CSP],
      ['/refused', NON_PAGE_CSP],
      ['/nowhere', NON_PAGE_CSP],
      ['/page', DEFAULT_PAGE_CSP],
      ['/own-csp', "default-src 'self'"],
    ] as const) {
      const res = await fetch(base + path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
      assert.equal(res.headers.get('content-security-policy'), csp, path);
      assert.equal(res.headers.get('strict-transport-security'), null, `${path}: no HSTS over http`);
    }
    const problem = await fetch(`${base}/refused`);
    assert.equal(problem.status, 403);
    assert.equal(problem.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  });

  test('HSTS only when the request came over https, and X-Forwarded-Proto counts only with trustProxy', async () => {
    const forwarded = { 'x-forwarded-proto': 'https' };
    const trusted = await fetch(`${proxiedBase}/json`, { headers: forwarded });
    assert.match(trusted.headers.get('strict-transport-security') ?? '', /^max-age=31536000/);
    const untrusted = await fetch(`${base}/json`, { headers: forwarded });
    assert.equal(untrusted.headers.get('strict-transport-security'), null);
    assert.equal((await fetch(`${proxiedBase}/json`)).headers.get('strict-transport-security'), null);
  });

  test('X-Request-Id: a well-formed one is echoed, logged as reqId and current in the handler; others replaced', async () => {
    const res = await fetch(`${base}/echo-id`, {
      method: 'POST',
      headers: { 'x-request-id': 'trace-42.a:b_c', 'content-type': 'application/json' },
      body: JSON.stringify({ n: 1 }),
    });
    assert.equal(res.headers.get('x-request-id'), 'trace-42.a:b_c');
    assert.deepEqual(await res.json(), { seen: 'trace-42.a:b_c', body: { n: 1 } });
    const line = log.lines.find((l) => l.reqId === 'trace-42.a:b_c' && l.msg === 'request');
    assert.ok(line, 'the request line carries the caller’s id');

    for (const bad of ['has space', 'x'.repeat(129), '-leading', 'semi;colon']) {
      const r = await fetch(`${base}/json`, { headers: { 'x-request-id': bad } });
      const id = r.headers.get('x-request-id') ?? '';
      assert.notEqual(id, bad);
      assert.match(id, /^[0-9a-f-]{36}$/, `a fresh UUID instead of ${JSON.stringify(bad)}`);
    }
    const none = await fetch(`${base}/nowhere`);
    assert.match(none.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, 'generated even for a 404');
  });

  test('without requestContext the id is still echoed and logged, and no request context is kept', async () => {
    const plain = build({ requestContext: false });
    try {
      const url = await plain.app.listen({ host: '127.0.0.1', port: 0 });
      const res = await fetch(`${url}/echo-id`, {
        method: 'POST',
        headers: { 'x-request-id': 'plain-7', 'content-type': 'application/json' },
        body: JSON.stringify({ n: 2 }),
      });
      assert.equal(res.headers.get('x-request-id'), 'plain-7');
      // No AsyncLocalStorage was entered (its promise hooks would tax every promise of a vendor's paid path).
      assert.deepEqual(await res.json(), { body: { n: 2 } });
      assert.ok(plain.log.lines.find((l) => l.reqId === 'plain-7' && l.msg === 'request'));
    } finally {
      await plain.app.close();
    }
  });
  test('CORS: preflights on opened paths answer 204 without credentials; other paths stay closed', async () => {
    const preflight = await fetch(`${base}/api/thing`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://reader.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, idempotency-key',
      },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), '*');
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Idempotency-Key/);
    assert.equal(preflight.headers.get('access-control-allow-credentials'), null);

    const simple = await fetch(`${base}/api/thing`, { headers: { origin: 'https://reader.example' } });
    assert.equal(simple.headers.get('access-control-allow-origin'), '*');
    assert.match(simple.headers.get('access-control-expose-headers') ?? '', /X-Request-Id/);

    const closed = await fetch(`${base}/json`, {
      method: 'OPTIONS',
      headers: { origin: 'https://reader.example', 'access-control-request-method': 'GET' },
    });
    assert.equal(closed.headers.get('access-control-allow-origin'), null);
    assert.notEqual(closed.status, 204);
  });

  test('metrics are on the admin listener only, with HELP and TYPE, and pass promtool', async (t) => {
    vendorMetrics(app.metrics).payment('paid', 5);
    await fetch(`${base}/json`);
    assert.equal((await fetch(`${base}/metrics`)).status, 404, 'no /metrics on the public port');
    const res = await fetch(admin.metricsUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /# HELP netpay_http_request_duration_seconds /);
    assert.match(text, /# TYPE netpay_http_request_duration_seconds histogram/);
    const count = metricValue(text, 'netpay_http_request_duration_seconds_count', {
      service: 'edge-test',
      method: 'GET',
      route: '/json',
      status: '200',
    });
    assert.ok((count ?? 0) >= 1, 'the request to /json was timed');
    assert.equal(metricValue(text, 'netpay_vendor_payment_amount_minor_total', { outcome: 'paid' }), 5);
    assert.match(text, /# TYPE process_cpu_seconds_total counter/);
    assert.match(text, /# TYPE nodejs_eventloop_lag_seconds gauge/);
    assert.equal((await fetch(admin.metricsUrl.replace('/metrics', '/json'))).status, 404);
    const verdict = promtoolCheck(text);
    if (verdict.kind === 'missing') return t.skip(verdict.message);
    assert.ok(verdict.ok, verdict.output);
  });
});
