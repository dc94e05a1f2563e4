/**
 * Every service of `netpay start` (real processes) serves Prometheus metrics at the `metricsUrl` demo.json lists, on
 * a loopback admin port and never on its public port; `promtool check metrics` accepts each scrape (the test fails
 * under CI when promtool is missing, and skips with a message elsewhere); a paid read at a newspaper moves the
 * vendor's payment, amount and spend-store commit metrics, the broker's claim and purchase metrics and the bank's
 * charges; every service serves the security headers and echoes X-Request-Id.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatAuthorization, PaywordChain } from '@netpay/protocol';
import { metricValue, promtoolCheck } from '@netpay/service-kit/testing/promtool';

const BIN = fileURLToPath(new URL('../bin/netpay.mjs', import.meta.url));

interface Service {
  url: string;
  metricsUrl: string;
}
interface Demo {
  bank: Service;
  broker: Service & { api: string };
  vendors: Array<Service & { id: string }>;
}

describe('metrics of every service of netpay start', () => {
  const data = mkdtempSync(join(tmpdir(), 'netpay-metrics-'));
  // Public ports base..base+2 and base+100, admin ports base+200..base+202 and base+300: clear of the other e2e tests.
  const base = 5200 + Math.floor(Math.random() * 100);
  let system: ChildProcess | undefined;
  let output = '';
  let demo: Demo;

  before(async () => {
    system = spawn(process.execPath, [BIN, 'start', '--data', data, '--port-base', String(base)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NETPAY_LOG_LEVEL: 'warn' },
    });
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
    };
    system.stdout?.on('data', collect);
    system.stderr?.on('data', collect);
    await new Promise<void>((resolve, reject) => {
      system?.stdout?.on('data', () => {
        if (output.includes('NetPay is running')) resolve();
      });
      system?.once('exit', (code) => reject(new Error(`netpay start exited (${code}):\n${output}`)));
    });
    demo = JSON.parse(readFileSync(join(data, 'demo.json'), 'utf8')) as Demo;
  });

  after(async () => {
    if (system && system.exitCode === null) {
      const exited = new Promise((resolve) => system?.once('exit', resolve));
      system.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (system.exitCode === null) system.kill('SIGKILL');
    }
    rmSync(data, { recursive: true, force: true });
  });

  const services = () => [
    { name: 'bank', url: demo.bank.url, metricsUrl: demo.bank.metricsUrl },
    { name: 'broker', url: demo.broker.url, metricsUrl: demo.broker.metricsUrl },
    ...demo.vendors.map((v) => ({ name: v.id, url: v.url, metricsUrl: v.metricsUrl })),
  ];

  test('demo.json lists a loopback metricsUrl per service, apart from its public port', async () => {
    assert.equal(services().length, 4);
    for (const s of services()) {
      const metrics = new URL(s.metricsUrl);
      assert.match(metrics.hostname, /^127\./, `${s.name} metrics on loopback`);
      assert.notEqual(metrics.port, new URL(s.url).port, `${s.name} metrics on a port of their own`);
      assert.equal((await fetch(`${s.url}/metrics`)).status, 404, `${s.name}: no /metrics on the public port`);
      const res = await fetch(`${s.url}/healthz`, { headers: { 'x-request-id': `e2e-${s.name}` } });
      assert.equal(res.headers.get('x-request-id'), `e2e-${s.name}`, s.name);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', s.name);
      assert.ok(res.headers.get('content-security-policy'), s.name);
    }
  });

  test('a paid read moves the business metrics of the newspaper, the broker and the bank', async () => {
    const scrape = async (url: string) => (await fetch(url)).text();
    const vendor = demo.vendors[0] as Service & { id: string };
    const before = {
      vendor: await scrape(vendor.metricsUrl),
      broker: await scrape(demo.broker.metricsUrl),
      bank: await scrape(demo.bank.metricsUrl),
    };

    const json = { 'content-type': 'application/json' };
    const account = { email: `metrics-${Date.now()}@netpay.test`, password: 'correct horse battery' };
    await fetch(`${demo.broker.api}/customers`, { method: 'POST', headers: json, body: JSON.stringify(account) });
    const session = await fetch(`${demo.broker.api}/sessions`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify(account),
    });
    const { token } = (await session.json()) as { token: string };
    const chain = PaywordChain.generate(100);
    const bought = await fetch(`${demo.broker.api}/coins`, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${token}`, 'idempotency-key': 'metrics-1' },
      body: JSON.stringify({
        amount: 100,
        unit: 1,
        chainId: chain.chainIdB64,
        anchor: chain.anchorB64,
        payment: { card: { number: '4242 4242 4242 4242', expiry: '12/30', cvc: '123' } },
      }),
    });
    assert.equal(bought.status, 201, await bought.text());

    const list = (await (await fetch(`${vendor.url}/api/articles`)).json()) as {
      articles: Array<{ id: string; priceMinor: number }>;
    };
    const article = list.articles.find((a) => a.priceMinor > 0);
    assert.ok(article, 'a priced article');
    const unpaid = await fetch(`${vendor.url}/api/articles/${article.id}`);
    assert.equal(unpaid.status, 402);
    const index = article.priceMinor;
    const paid = await fetch(`${vendor.url}/api/articles/${article.id}`, {
      headers: { authorization: formatAuthorization({ chain: chain.chainIdB64, index, payword: chain.b64(index) }) },
    });
    assert.equal(paid.status, 200, await paid.text());

    const after = {
      vendor: await scrape(vendor.metricsUrl),
      broker: await scrape(demo.broker.metricsUrl),
      bank: await scrape(demo.bank.metricsUrl),
    };
    const moved = (which: keyof typeof after, name: string, labels: Record<string, string> = {}) =>
      (metricValue(after[which], name, labels) ?? 0) - (metricValue(before[which], name, labels) ?? 0);
    assert.equal(moved('vendor', 'netpay_vendor_payments_total', { outcome: 'paid' }), 1);
    assert.equal(moved('vendor', 'netpay_vendor_payment_amount_minor_total', { outcome: 'paid' }), article.priceMinor);
    assert.equal(moved('vendor', 'netpay_vendor_payments_total', { outcome: 'payment_required' }), 1);
    assert.equal(moved('vendor', 'netpay_vendor_spend_store_commit_duration_seconds_count'), 1);
    assert.equal(moved('vendor', 'netpay_vendor_spend_store_commit_payments_sum'), 1);
    // The claim's writes and the payment's commit each waited for an fsync of the WAL, wherever this disk put it.
    const fsyncs = ['loop', 'threadpool'].map((place) =>
      moved('vendor', 'netpay_vendor_wal_fsync_duration_seconds_count', { place }),
    );
    const [onLoop = 0, onThreadpool = 0] = fsyncs;
    assert.ok(onLoop + onThreadpool >= 2, `fsyncs on the loop and the threadpool: ${fsyncs}`);
    assert.equal(moved('broker', 'netpay_broker_claims_total', { outcome: 'granted' }), 1);
    assert.equal(moved('broker', 'netpay_broker_ledger_entries_total', { kind: 'purchase' }), 1);
    assert.equal(moved('bank', 'netpay_bank_operations_total', { kind: 'charge', outcome: 'succeeded' }), 1);
    assert.equal(moved('bank', 'netpay_bank_amount_minor_total', { kind: 'charge' }), 100);
  });

  test('promtool check metrics accepts every service’s scrape', async (t) => {
    for (const s of services()) {
      const res = await fetch(s.metricsUrl);
      assert.equal(res.status, 200, s.name);
      const text = await res.text();
      assert.match(text, /# TYPE netpay_http_request_duration_seconds histogram/, s.name);
      assert.match(text, /# TYPE process_cpu_seconds_total counter/, s.name);
      const verdict = promtoolCheck(text);
      if (verdict.kind === 'missing') return t.skip(verdict.message);
      assert.ok(verdict.ok, `${s.name}: ${verdict.output}`);
    }
  });
});
