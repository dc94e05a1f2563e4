import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { formatAuthorization } from '@netpay/protocol';
import { createLogger } from '@netpay/service-kit';
import { startBenchNetwork } from '../src/bench.ts';
import { parseVendorArgs, readApiKey, runVendor, runVendorAccount, runVendorRedeem } from '../src/main.ts';
import { SITES } from '../src/site.ts';

describe('netpay vendor arguments', () => {
  it('defaults from the site', () => {
    const c = parseVendorArgs(['--site', 'the-bugle']);
    assert.equal(c.site.vendorId, 'the-bugle');
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 4002);
    assert.equal(c.vendorDir, resolve('./data/vendors/the-bugle'));
    assert.equal(c.dbUrl, `sqlite:${resolve('./data/vendors/the-bugle/spend.db')}`);
    assert.equal(c.brokerUrl, 'http://127.0.0.1:4000');
    assert.equal(c.publicUrl, 'http://127.0.0.1:4002');
  });

  it('takes overrides', () => {
    // A data folder that does not exist (a fixed path such as /tmp/x may be anything on a shared machine).
    const parent = mkdtempSync(join(tmpdir(), 'netpay-args-'));
    const data = join(parent, 'data');
    const c = parseVendorArgs([
      '--site',
      'daily-planet',
      '--port',
      '5001',
      '--data',
      data,
      '--db',
      'postgres://u@h/db',
      '--broker-url',
      'http://b.example/',
      '--public-url',
      'https://planet.example',
    ]);
    assert.equal(c.port, 5001);
    assert.equal(c.vendorDir, join(data, 'vendors', 'daily-planet'));
    assert.equal(c.dbUrl, 'postgres://u@h/db');
    assert.equal(c.brokerUrl, 'http://b.example');
    assert.equal(c.publicUrl, 'https://planet.example');
    rmSync(parent, { recursive: true, force: true });
  });

  it('fails clearly', () => {
    assert.throws(() => parseVendorArgs([]), /--site is required/);
    assert.throws(() => parseVendorArgs(['--site', 'nope']), /unknown site nope/);
    assert.throws(() => parseVendorArgs(['--site', 'the-bugle', '--port', 'x']), /--port/);
    assert.throws(() => parseVendorArgs(['--site', 'the-bugle', '--frobnicate']), /unknown option --frobnicate/);
  });

  it('refuses to start without the API key the start command writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'netpay-vendor-'));
    try {
      assert.throws(() => readApiKey(dir), /no broker API key at .*api-key: register the vendor/);
      await assert.rejects(runVendor(['--site', 'the-bugle', '--data', dir, '--port', '0']), /no broker API key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('netpay vendor redeem / account', () => {
  it('redeem prints progress and a JSON summary; account prints the account view', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'netpay-vendor-cli-'));
    const site = SITES['daily-planet'];
    const net = await startBenchNetwork({ dir, site, logger: createLogger('test', 'silent') });
    try {
      const vendorDir = join(dir, 'vendors', site.vendorId);
      writeFileSync(join(vendorDir, 'api-key'), `${net.apiKey}\n`);
      const chain = await net.buyChain(10);
      const priced = site.articles.find((a) => a.priceMinor === 4)!;
      const res = await fetch(`${net.vendorUrl}/api/articles/${priced.id}`, {
        headers: { authorization: formatAuthorization({ chain: chain.chainIdB64, index: 4, payword: chain.b64(4) }) },
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();

      const args = ['--site', site.vendorId, '--data', dir, '--broker-url', net.brokerUrl];
      const lines: string[] = [];
      await runVendorRedeem(args, (line) => lines.push(line));
      assert.match(lines[0] ?? '', /^batch 1\/1: 1 accepted, 0 rejected/);
      const summary = JSON.parse(lines.at(-1) ?? '{}') as { accepted: number; credited: number };
      assert.equal(summary.accepted, 1);
      assert.equal(summary.credited, 4);

      const out: string[] = [];
      await runVendorAccount(args, (line) => out.push(line));
      const account = JSON.parse(out.join('\n')) as Record<string, unknown>;
      assert.equal(account.earnedMinor, 4);
      assert.equal(account.redeemedMinor, 4);
      assert.equal(account.pendingMinor, 0);
      assert.equal(account.currency, 'NZD');
    } finally {
      await net.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
