import { browserTestSkip, launchBrowser } from '@netpay/test-kit';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { b64uEncode, generateSigningKey } from '@netpay/protocol';
import { tempDir } from '@netpay/service-kit/testing';
import type { Browser, Locator, Page } from 'playwright-core';
import { registerVendor } from '../src/vendor-registry.ts';
import { type BankUnderTest, type BrokerUnderTest, call, startBank, startBroker } from './harness.ts';

const text = async (locator: Locator) => (await locator.textContent()) ?? '';
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/broker/', import.meta.url));
const skip = browserTestSkip();

describe('the broker pages in a real Chromium', { skip }, () => {
  let bank: BankUnderTest;
  let broker: BrokerUnderTest;
  let browser: Browser;
  let vendorSite: Server;
  let vendorUrl = '';
  const vendorKeys = new Map<string, string>();
  /** What the vendor does with the code it got back: exchange it for a connection. */
  const exchange = async (vendorId: string, code: string) => {
    const res = await call(broker.api, 'POST', `/wallet-grants/${code}`, { token: vendorKeys.get(vendorId) ?? '' });
    assert.equal(res.status, 200, res.text);
  };
  const data = tempDir('netpay-web-e2e-');
  const cspViolations: string[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    process.env.NETPAY_OPERATOR_TOKEN_FILE = join(data.path, 'operator-token');
    bank = await startBank('sqlite');
    broker = await startBroker('sqlite', bank);
    // A stand-in vendor callback page: shows what the broker sent back.
    vendorSite = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(
        `<!doctype html><title>Vendor</title><h1>Connected</h1><p id="code">${url.searchParams.get('code') ?? ''}</p><p id="state">${url.searchParams.get('state') ?? ''}</p>`,
      );
    });
    await new Promise<void>((resolve) => vendorSite.listen(0, '127.0.0.1', resolve));
    const address = vendorSite.address();
    vendorUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    for (const [id, name] of [
      ['daily-planet', 'The Daily Planet'],
      ['the-bugle', 'The Bugle'],
    ] as const) {
      const { apiKey } = await registerVendor(broker.database.db, {
        id,
        name,
        url: `${vendorUrl}/`,
        releaseUrl: `${vendorUrl}/netpay/release`,
        publicKey: b64uEncode(generateSigningKey().publicKey),
      });
      vendorKeys.set(id, apiKey);
    }
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await new Promise((r) => vendorSite?.close(r));
    await broker?.close();
    await bank?.close();
    data.remove();
  });

  function watch(page: Page): Page {
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) cspViolations.push(m.text());
    });
    return page;
  }
  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  test('register, add NZ$2.00, see the balance, history, connect two sites, connected sites, revoke and the operator view', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const page = watch(await context.newPage());
    await page.goto(`${broker.url}/`);
    assert.match(await page.title(), /NetPay/);
    await shot(page, '01-home');

    await page.getByRole('link', { name: 'Create an account' }).first().click();
    await page.getByLabel('Email').fill(`browser-${Date.now()}@example.test`);
    await page.getByLabel('Password').fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    assert.match(await text(page.locator('#password-error')), /at least 8/);
    await shot(page, '02-register-error');
    await page.getByLabel('Password').fill('correct horse battery');
    await shot(page, '03-register');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/coins$/);
    assert.equal(await text(page.locator('#netpay-balance')), 'NZ$0.00');
    await shot(page, '04-wallet-empty');

    await page.getByLabel('Amount in NZ$').fill('abc');
    await page.getByRole('button', { name: 'Add money' }).click();
    assert.match(await text(page.locator('#amount-error')), /Enter an amount/);
    await shot(page, '05-add-money-errors');

    await page.getByLabel('Amount in NZ$').fill('2.00');
    await page.getByLabel('Card number').fill('4242 4242 4242 4242');
    await page.getByLabel('Expiry (MM/YY)').fill('12/30');
    await page.getByLabel('Security code (CVC)').fill('123');
    await page.getByLabel(/Save this card/).check();
    await page.getByRole('button', { name: 'Add money' }).click();
    await page.waitForURL(/added=/);
    assert.match(await text(page.locator('[role=status]')), /NZ\$2\.00 added to your NetPay balance/);
    assert.equal(await text(page.locator('#netpay-balance')), 'NZ$2.00');
    await shot(page, '06-wallet-with-balance');

    // The first connect: one consent page stating the limits, one button; back at the vendor with a code.
    const ret = `${vendorUrl}/netpay/connected`;
    await page.goto(
      `${broker.url}/connect?${new URLSearchParams({ vendor: 'daily-planet', return: ret, state: 'n1' })}`,
    );
    assert.match(await text(page.locator('h1')), /Connect The Daily Planet to your NetPay balance/);
    assert.match(await text(page.locator('main')), /Articles up to NZ\$0\.10 are paid without asking/);
    await shot(page, '07-connect-consent');
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForURL((url) => url.toString().startsWith(ret));
    assert.match(await text(page.locator('#code')), /^np_wg_/);
    assert.equal(await text(page.locator('#state')), 'n1');
    await exchange('daily-planet', await text(page.locator('#code')));

    // A second site: no page at all, when the reader's click starts it (a page going there by itself gets the page).
    const second = `${broker.url}/connect?${new URLSearchParams({ vendor: 'the-bugle', return: `${ret}?site=bugle`, state: 'n2' })}`;
    await page.setContent(`<a id="pay" href="${second.replaceAll('&', '&amp;')}">Pay with NetPay</a>`);
    await page.click('#pay');
    await page.waitForURL((url) => url.toString().startsWith(ret));
    assert.equal(await text(page.locator('#state')), 'n2');
    await exchange('the-bugle', await text(page.locator('#code')));

    await page.goto(`${broker.url}/sites`);
    assert.match(await text(page.locator('table')), /The Bugle/);
    await shot(page, '08-connected-sites');
    await page.getByRole('button', { name: 'Revoke The Bugle' }).click();
    await page.waitForURL(/revoked=/);
    assert.match(await text(page.locator('[role=status]')), /The Bugle is disconnected/);
    assert.doesNotMatch(await text(page.locator('table')), /The Bugle/);

    await page.getByRole('link', { name: 'History' }).click();
    assert.match(await text(page.locator('table')), /Added money \(card ending 4242\)/);
    await shot(page, '09-history');

    // On a phone.
    const phone = watch(await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage());
    await phone.context().addCookies(await context.cookies());
    await phone.goto(`${broker.url}/coins`);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `no sideways scrolling on a phone (overflow ${overflow}px)`);
    await shot(phone, '10-wallet-phone');

    const operator = watch(await (await browser.newContext()).newPage());
    await operator.goto(`${broker.url}/operator`);
    await operator.waitForURL(/\/operator\/login$/);
    await shot(operator, '11-operator-login');
    const { readFileSync } = await import('node:fs');
    const token = readFileSync(join(data.path, 'operator-token'), 'utf8').trim();
    await operator.getByLabel('Operator token', { exact: true }).fill(token);
    await operator.getByRole('button', { name: 'Log in' }).click();
    await operator.waitForURL(/\/operator$/);
    assert.match(await text(operator.locator('#audit-result')), /Audit OK/);
    await shot(operator, '12-operator');

    await page.goto(`${broker.url}/coins`);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(`${broker.url}/`);
    assert.deepEqual(cspViolations, [], 'no page needed anything the CSP forbids');
  });
});
