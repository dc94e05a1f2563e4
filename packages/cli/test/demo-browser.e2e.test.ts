import { browserTestSkip, CHROMIUM_LAUNCH_OPTIONS } from '@netpay/service-kit/testing';
/**
 * The demo end to end in a real Chromium: `netpay start` (what `npm start` runs) as a child process, a new
 * customer buys NZ$2.00 at the broker, reads three priced stories at The Daily Planet through the server-side
 * wallet (connect), moves to The Bugle with the same coin and reads two more, both vendors redeem, the operator
 * view shows their credits, and the customer refunds the rest. Each service has its own loopback address, so the
 * newspapers are never sent the broker's cookies, and the broker's session cookie is no API token. Screenshots go
 * to test-artifacts/e2e/.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Article, SITES } from '@netpay/newspaper';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

const BIN = fileURLToPath(new URL('../bin/netpay.mjs', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/e2e/', import.meta.url));
const skip = browserTestSkip();
const run = promisify(execFile);

const planetArticles = SITES['daily-planet'].articles.filter((a) => a.priceMinor > 0).slice(0, 3);
const bugleArticles = SITES['the-bugle'].articles.filter((a) => a.priceMinor > 0).slice(0, 2);

function money(minor: number): string {
  return `NZ$${Math.floor(minor / 100)}.${String(minor % 100).padStart(2, '0')}`;
}

describe('the NetPay demo in a real Chromium (netpay start, broker pages, two newspapers)', { skip }, () => {
  const data = mkdtempSync(join(tmpdir(), 'netpay-demo-e2e-'));
  const base = 4400 + Math.floor(Math.random() * 100);
  // The addresses `netpay start` gives each service by default (DEMO_HOSTS in src/start.ts).
  const brokerUrl = `http://127.0.0.2:${base}`;
  const planetUrl = `http://127.0.0.3:${base + 1}`;
  const bugleUrl = `http://127.0.0.4:${base + 2}`;
  let system: ChildProcess | undefined;
  let output = '';
  let browser: Browser | undefined;
  let shots = 0;

  const shot = async (page: Page, name: string) => {
    shots += 1;
    await page.screenshot({ path: join(ARTIFACTS, `${String(shots).padStart(2, '0')}-${name}.png`), fullPage: true });
  };

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    system = spawn(process.execPath, [BIN, 'start', '--data', data, '--port-base', String(base)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        NETPAY_LOG_LEVEL: 'warn',
        NETPAY_OPERATOR_TOKEN_FILE: join(data, 'operator-token'),
      },
    });
    system.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    system.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`netpay start did not come up:\n${output}`)), 120_000);
      const check = () => {
        if (output.includes('NetPay is running') && existsSync(join(data, 'demo.json'))) {
          clearTimeout(timer);
          resolve();
        }
      };
      system?.stdout?.on('data', check);
      system?.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`netpay start exited (${code}):\n${output}`));
      });
    });
    browser = await chromium.launch(CHROMIUM_LAUNCH_OPTIONS);
  });

  after(async () => {
    await browser?.close();
    if (system && system.exitCode === null) {
      const exited = new Promise((resolve) => system?.once('exit', resolve));
      system.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (system.exitCode === null) system.kill('SIGKILL');
    }
    rmSync(data, { recursive: true, force: true });
  });

  /** The balance in the newspaper's wallet bar, in minor units (undefined when the session has no wallet). */
  async function shownBalance(page: Page): Promise<number | undefined> {
    const bar = page.locator('#netpay-wallet [data-netpay-balance]');
    if ((await bar.count()) === 0) return undefined;
    return Number(await bar.getAttribute('data-netpay-balance'));
  }

  async function readStory(page: Page, siteUrl: string, article: Article, before: number, name: string) {
    await page.goto(`${siteUrl}/articles/${article.id}`);
    const status = page.locator('.notice[role="status"]');
    assert.match(
      (await status.textContent()) ?? '',
      new RegExp(`You paid ${money(article.priceMinor).replace('$', '\\$')}`),
    );
    assert.equal(await shownBalance(page), before - article.priceMinor, `balance after ${article.id}`);
    assert.match(
      (await status.textContent()) ?? '',
      new RegExp(`${money(before - article.priceMinor).replace('$', '\\$')} left`),
    );
    await shot(page, name);
    return before - article.priceMinor;
  }

  /** On a paywall: "Pay with NetPay" → broker consent (the one coin preselected) → Connect → back on the story. */
  async function connectFromPaywall(page: Page, siteUrl: string, article: Article, name: string) {
    await page.getByRole('link', { name: /with NetPay/ }).click();
    await page.waitForURL((url) => url.toString().startsWith(`${brokerUrl}/connect?`));
    const coins = page.locator('input[name="coin"]:not([value="new"])');
    assert.equal(await coins.count(), 1, 'the customer has one coin to pick');
    assert.equal(await coins.first().isChecked(), true);
    await shot(page, `${name}-consent`);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForURL(`${siteUrl}/articles/${article.id}`);
  }

  /** The Cookie header of every request the browser sends to the newspapers, as sent on the wire. */
  function newspaperCookieHeaders(context: BrowserContext): Array<Promise<string>> {
    const sent: Array<Promise<string>> = [];
    context.on('request', (request) => {
      if (request.url().startsWith(planetUrl) || request.url().startsWith(bugleUrl)) {
        sent.push(request.allHeaders().then((headers) => headers.cookie ?? ''));
      }
    });
    return sent;
  }

  /** The broker's cookies are its own: no newspaper is sent one, and its session cookie does not open the API. */
  async function assertBrokerCookiesStayHome(context: BrowserContext, sentToNewspapers: Array<Promise<string>>) {
    const brokerCookies = await context.cookies(brokerUrl);
    const session = brokerCookies.find((c) => c.name === 'np_session');
    assert.ok(session, 'the broker keeps its session in a cookie');
    assert.equal(session.domain, '127.0.0.2');
    for (const siteUrl of [planetUrl, bugleUrl]) {
      const seen = await context.cookies(siteUrl);
      assert.ok(seen.length > 0, `${siteUrl} has cookies of its own (its wallet session)`);
      for (const cookie of seen) {
        assert.ok(
          !brokerCookies.some((b) => b.name === cookie.name || b.value === cookie.value),
          `${siteUrl} would be sent the broker's cookie ${cookie.name}`,
        );
      }
    }
    const headers = await Promise.all(sentToNewspapers);
    assert.ok(headers.length > 10, 'the newspapers were visited');
    for (const header of headers) {
      for (const cookie of brokerCookies) assert.ok(!header.includes(cookie.value), `a newspaper got ${cookie.name}`);
    }
    for (const path of ['/coins', '/history']) {
      const res: Response = await fetch(`${brokerUrl}/api/v1${path}`, {
        headers: { authorization: `Bearer ${session.value}` },
      });
      assert.equal(res.status, 401, `the session cookie as a Bearer token on ${path}`);
      assert.equal(((await res.json()) as { code: string }).code, 'unauthorized');
    }
  }

  test('register, buy NZ$2.00, read three at The Daily Planet, two at The Bugle, redeem, operator view, refund', async () => {
    assert.ok(browser);
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const sentToNewspapers = newspaperCookieHeaders(context);
    const page = await context.newPage();

    // The broker: register and buy NZ$2.00.
    await page.goto(`${brokerUrl}/`);
    await shot(page, 'broker-home');
    await page.getByRole('link', { name: 'Create an account' }).first().click();
    await page.getByLabel('Email').fill(`reader-${Date.now()}@netpay.test`);
    await page.getByLabel('Password').fill('correct horse battery staple');
    await shot(page, 'broker-register');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/coins$/);
    await page.getByLabel('Amount in NZ$').fill('2.00');
    await page.getByLabel('Card number').fill('4242 4242 4242 4242');
    await page.getByLabel('Expiry (MM/YY)').fill('12/30');
    await page.getByLabel('Security code (CVC)').fill('123');
    await page.getByRole('button', { name: 'Buy coins' }).click();
    await page.waitForURL(/done=bought/);
    assert.match((await page.locator('table').textContent()) ?? '', /NZ\$2\.00/);
    await shot(page, 'broker-wallet-bought');

    // The Daily Planet: front page, a paywall, connect, then three stories.
    await page.goto(`${planetUrl}/`);
    assert.equal(await shownBalance(page), undefined);
    await shot(page, 'planet-front');
    const [p1, p2, p3] = planetArticles as [Article, Article, Article];
    await page.goto(`${planetUrl}/articles/${p1.id}`);
    assert.match((await page.locator('#paywall-title').textContent()) ?? '', /Read this story for/);
    await shot(page, 'planet-paywall');
    await connectFromPaywall(page, planetUrl, p1, 'planet');
    let balance = 200 - p1.priceMinor;
    assert.equal(await shownBalance(page), balance);
    assert.match((await page.locator('#netpay-wallet').textContent()) ?? '', /Your NetPay balance: NZ\$\d+\.\d\d/);
    await shot(page, 'planet-article-1');
    balance = await readStory(page, planetUrl, p2, balance, 'planet-article-2');
    balance = await readStory(page, planetUrl, p3, balance, 'planet-article-3');
    await page.goto(`${planetUrl}/`);
    assert.equal(await shownBalance(page), balance, 'the front page shows the balance too');
    await shot(page, 'planet-front-balance');

    // The Bugle: its paywall runs connect there; the same coin moves over; no new purchase.
    const [b1, b2] = bugleArticles as [Article, Article];
    await page.goto(`${bugleUrl}/articles/${b1.id}`);
    assert.equal(await shownBalance(page), undefined);
    await shot(page, 'bugle-paywall');
    await connectFromPaywall(page, bugleUrl, b1, 'bugle');
    balance -= b1.priceMinor;
    assert.equal(await shownBalance(page), balance, 'the balance carries on from The Daily Planet');
    await shot(page, 'bugle-article-1');
    balance = await readStory(page, bugleUrl, b2, balance, 'bugle-article-2');
    const spentPlanet = p1.priceMinor + p2.priceMinor + p3.priceMinor;
    const spentBugle = b1.priceMinor + b2.priceMinor;
    assert.equal(balance, 200 - spentPlanet - spentBugle);
    await assertBrokerCookiesStayHome(context, sentToNewspapers);

    // Both vendors redeem.
    for (const site of ['daily-planet', 'the-bugle']) {
      const { stdout } = await run(
        process.execPath,
        [BIN, 'vendor', 'redeem', '--site', site, '--data', data, '--broker-url', brokerUrl],
        { env: { ...process.env, NETPAY_LOG_LEVEL: 'warn' } },
      );
      const summary = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { rejected: number; error?: string };
      assert.equal(summary.rejected, 0, stdout);
      assert.equal(summary.error, undefined, stdout);
    }

    // The operator view shows both vendors' credits (fees round down to 0 on these small amounts: 2 %).
    const operator = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
    await operator.goto(`${brokerUrl}/operator`);
    await operator.waitForURL(/\/operator\/login$/);
    const token = readFileSync(join(data, 'operator-token'), 'utf8').trim();
    await operator.getByLabel('Operator token', { exact: true }).fill(token);
    await operator.getByRole('button', { name: 'Log in' }).click();
    await operator.waitForURL(/\/operator$/);
    assert.match((await operator.locator('#audit-result').textContent()) ?? '', /Audit OK/);
    for (const [vendorId, spent] of [
      ['daily-planet', spentPlanet],
      ['the-bugle', spentBugle],
    ] as const) {
      const cells = await operator
        .locator(`tr:has(code:text-is("${vendorId}"))`)
        .first()
        .locator('td.num')
        .allTextContents();
      // The last three: owed, payout pending, paid out (before them: redeemed gross, fees, rate).
      const credited = cells
        .slice(-3)
        .map((c) => Math.round(Number(c.replace(/[^0-9.]/g, '')) * 100))
        .reduce((sum, v) => sum + v, 0);
      assert.equal(
        credited,
        spent - Math.floor((spent * 200) / 10_000),
        `${vendorId} credited (owed + pending + paid out)`,
      );
    }
    await shot(operator, 'operator-view');

    // Refund the rest at the broker's wallet page.
    await page.goto(`${brokerUrl}/coins`);
    await shot(page, 'broker-wallet-before-refund');
    await page.getByRole('button', { name: /Refund the rest of coin/ }).click();
    await page.waitForURL(/done=refunded/);
    await shot(page, 'broker-wallet-refunded');
    await page.getByRole('link', { name: 'History' }).click();
    const refundRow = page.locator('tr:has(td:text-is("Refunded"))').first();
    const refunded = (await refundRow.locator('td.num').textContent()) ?? '';
    assert.equal(refunded.trim(), money(200 - spentPlanet - spentBugle));
    await shot(page, 'broker-history');

    // After the refund the newspaper no longer takes the coin: its paywall links to the broker to buy more.
    const p4 = SITES['daily-planet'].articles.filter((a) => a.priceMinor > 0)[3] as Article;
    await page.goto(`${planetUrl}/articles/${p4.id}`);
    assert.match((await page.locator('.paywall').textContent()) ?? '', /Buy more coins from the NetPay broker/);
    assert.equal(await shownBalance(page), 0, 'a refunded coin has nothing to spend');
    await shot(page, 'planet-after-refund');
  });
});
