import { browserTestSkip, launchBrowser } from '@netpay/test-kit';
// End-to-end in a real Chromium: the esbuild bundle of the browser entry is loaded by a page served from the test
// peer's loopback origin, and a wallet on IndexedDbCoinStore registers, buys a coin and pays the test vendor, then
// pays again after a reload from what IndexedDB kept.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { buildBrowserBundle } from '../src/index.ts';
import { type TestNet, startTestNet } from './helpers/test-net.ts';

const skip = browserTestSkip();

let net: TestNet;
let browser: Browser;
let dir: string;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'netpay-bundle-'));
  const bundle = join(dir, 'netpay-wallet.js');
  await buildBrowserBundle(bundle);
  net = await startTestNet({
    statics: {
      '/netpay-wallet.js': { type: 'text/javascript', body: await readFile(bundle) },
      '/index.html': { type: 'text/html', body: '<!doctype html><title>wallet</title><p>wallet test</p>' },
    },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await net?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// Scripts are strings, not functions: tsx's transform may add helpers to a function's text that the page lacks.
const SETUP = `
  const { createWallet, IndexedDbCoinStore, WalletError } = await import('/netpay-wallet.js');
  const wallet = createWallet({ brokerUrl: location.origin, store: new IndexedDbCoinStore('netpay-e2e') });
`;

test('the bundled wallet pays from a page with IndexedDB, across a reload', { skip }, async () => {
  const bundle = await readFile(join(dir, 'netpay-wallet.js'), 'utf8');
  assert.doesNotMatch(bundle, /from ['"]node:/, 'the browser bundle imports no Node module');

  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${net.url}/index.html`);

  const first = (await page.evaluate(`(async () => {
    ${SETUP}
    await wallet.register('browser@example.com', 'correct horse battery');
    await wallet.login('browser@example.com', 'correct horse battery');
    const coin = await wallet.buy({ amountMinor: 50, card: { number: '4242424242424242', expiry: '12/30', cvc: '123' } });
    const a = await wallet.fetch(location.origin + '/v/daily-planet/articles/1');
    const b = await wallet.fetchWithPayment(location.origin + '/v/the-bugle/articles/2');
    let refused = '';
    try { await wallet.fetch(location.origin + '/v/daily-planet/articles/3', undefined, { maxPriceMinor: 1 }); }
    catch (e) { refused = e instanceof WalletError ? e.code : String(e); }
    return {
      chainId: coin.chainId,
      a: { status: a.status, body: await a.json() },
      b: { status: b.response.status, receipt: b.payments[0].receipt },
      refused,
      balance: await wallet.balance(),
    };
  })()`)) as {
    chainId: string;
    a: { status: number; body: { resource: string } };
    b: { status: number; receipt: { index: number; balanceMinor: number } };
    refused: string;
    balance: Record<string, number>;
  };
  assert.equal(first.a.status, 200);
  assert.equal(first.a.body.resource, 'articles/1');
  assert.equal(first.b.status, 200);
  assert.deepEqual(first.b.receipt, { index: 8, balanceMinor: 42 });
  assert.equal(first.refused, 'price_too_high');
  assert.deepEqual(first.balance, { NZD: 42 });

  await page.reload();
  const second = (await page.evaluate(`(async () => {
    ${SETUP}
    const before = await wallet.balance();
    const res = await wallet.fetchWithPayment(location.origin + '/v/daily-planet/articles/4');
    return {
      before,
      status: res.response.status,
      index: res.payments[0].index,
      session: await wallet.session(),
      history: (await wallet.history()).map((e) => e.kind + ':' + (e.status ?? '')),
      after: await wallet.balance(),
    };
  })()`)) as {
    before: Record<string, number>;
    status: number;
    index: number;
    session: { loggedIn: boolean };
    history: string[];
    after: Record<string, number>;
  };
  assert.deepEqual(second.before, { NZD: 42 });
  assert.equal(second.status, 200);
  assert.equal(second.index, 13);
  assert.equal(second.session.loggedIn, true);
  assert.deepEqual(second.history, ['purchase:', 'payment:paid', 'payment:paid', 'payment:paid']);
  assert.deepEqual(second.after, { NZD: 37 });

  const sent = net.received.filter((r) => r.chain === first.chainId).map((r) => [r.realm, r.index, r.accepted]);
  assert.deepEqual(sent, [
    ['daily-planet', 5, true],
    ['the-bugle', 8, true],
    ['daily-planet', 13, true],
  ]);
  assert.deepEqual(errors, []);
});
