import { browserTestSkip, launchBrowser } from '@netpay/test-kit';
/**
 * Issue 8 end to end in a real Chromium against `netpay start` (what `npm start` runs): a reader registers at the
 * broker and adds NZ$5.00 by card (saved); reads at The Daily Planet after connecting once (one click on the
 * consent page); reads at The Bugle with no second consent, the balance carrying on; a story above the auto-pay
 * price asks first ("Read for NZ$0.12"); the daily cap stops payments with a clear message and a link to change
 * it; revoking The Bugle on the connected sites page makes its next story ask to connect again. On every page the
 * broker's NetPay balance, each paper's figures and the history agree to the cent (a paper's balance is labelled
 * "as of" the time the broker gave it, and then equals the history's running balance at that point).
 * Screenshots go to test-artifacts/issue8/ (the folder is printed).
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
import type { Browser, Page } from 'playwright-core';

const BIN = fileURLToPath(new URL('../bin/netpay.mjs', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/issue8/', import.meta.url));
const skip = browserTestSkip();
const run = promisify(execFile);

function article(site: 'daily-planet' | 'the-bugle', id: string): Article {
  const found = SITES[site].articles.find((a) => a.id === id);
  assert.ok(found, `${site} has ${id}`);
  return found;
}

/** 'NZ$4.50' (or '−NZ$0.50', '+NZ$0.02') in minor units, signed. */
function minor(text: string | null): number {
  const t = (text ?? '').trim();
  const m = /^([+−-])?NZ\$([0-9,]+)\.([0-9]{2})$/.exec(t);
  assert.ok(m, `an amount: ${JSON.stringify(t)}`);
  const value = Number((m[2] ?? '').replace(/,/g, '')) * 100 + Number(m[3]);
  return m[1] === '−' || m[1] === '-' ? -value : value;
}

function money(minorUnits: number): string {
  return `NZ$${Math.floor(minorUnits / 100)}.${String(minorUnits % 100).padStart(2, '0')}`;
}

describe('one NetPay balance in a real Chromium (netpay start, broker pages, two newspapers)', { skip }, () => {
  const data = mkdtempSync(join(tmpdir(), 'netpay-issue8-e2e-'));
  const base = 4600 + Math.floor(Math.random() * 100);
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
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    console.log(`screenshots: ${ARTIFACTS}`);
    system = spawn(process.execPath, [BIN, 'start', '--data', data, '--port-base', String(base)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NETPAY_LOG_LEVEL: 'warn', NETPAY_OPERATOR_TOKEN_FILE: join(data, 'operator-token') },
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
    browser = await launchBrowser();
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

  /** A paper's figures in its wallet bar; undefined when the session is not connected there. */
  async function paperFigures(page: Page) {
    const bar = page.locator('#netpay-wallet');
    if ((await bar.count()) === 0) return undefined;
    const left = Number(await bar.locator('[data-netpay-allowance-left]').getAttribute('data-netpay-allowance-left'));
    const balance = Number(await bar.locator('[data-netpay-balance]').getAttribute('data-netpay-balance'));
    const text = (await bar.textContent()) ?? '';
    // The figures as the reader sees them say the same as their data attributes.
    assert.ok(text.includes(`Allowance left at `), text);
    assert.ok(text.includes(money(left)), text);
    assert.ok(text.includes(`NetPay balance: ${money(balance)}`), text);
    return { left, balance, asOf: (await bar.locator('.as-of').count()) > 0 };
  }

  /** The broker's NetPay balance on its wallet page, read in the broker's own tab. */
  async function brokerBalance(broker: Page, name?: string): Promise<number> {
    await broker.goto(`${brokerUrl}/coins`);
    const balance = minor(await broker.locator('#netpay-balance').textContent());
    if (name) await shot(broker, name);
    return balance;
  }

  /** A connected site's row on the broker's connected sites page. */
  async function brokerSite(broker: Page, siteName: string) {
    await broker.goto(`${brokerUrl}/sites`);
    const row = broker.locator(`tr:has(th:text-is("${siteName}"))`);
    if ((await row.count()) === 0) return undefined;
    return {
      spent: minor(await row.locator('td[data-label="Spent this month"]').textContent()),
      allowanceLeft: minor(await row.locator('td[data-label="Allowance left"]').textContent()),
    };
  }

  /** Opens a story by clicking its headline on the paper's front page (a navigation on the paper's own site). */
  async function clickStory(page: Page, siteUrl: string, story: Article) {
    await page.goto(`${siteUrl}/`);
    await page.locator(`#h-${story.id} a`).click();
    await page.waitForURL(`${siteUrl}/articles/${story.id}`);
  }

  /** A story paid from the balance: the note says so. */
  async function assertPaid(page: Page, story: Article) {
    assert.match(
      (await page.locator('.notice[role="status"]').textContent()) ?? '',
      new RegExp(`You paid ${money(story.priceMinor).replace('$', '\\$')} for this article from your NetPay balance`),
    );
  }

  test('register, add NZ$5.00, read at both papers, ask above the auto-pay price, hit the cap, revoke The Bugle', async () => {
    assert.ok(browser);
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    // Every Cookie header the browser sends to a newspaper, to prove the broker's cookies never reach one (issue 7).
    const sentToNewspapers: string[] = [];
    context.on('request', (request) => {
      if (request.url().startsWith(planetUrl) || request.url().startsWith(bugleUrl)) {
        sentToNewspapers.push(request.headers().cookie ?? '');
      }
    });
    const page = await context.newPage();
    const broker = await context.newPage();
    const planet = SITES['daily-planet'].name;
    const bugle = SITES['the-bugle'].name;

    // The broker: register, add NZ$5.00 by card and save the card.
    await broker.goto(`${brokerUrl}/`);
    await broker.getByRole('link', { name: 'Create an account' }).first().click();
    await broker.getByLabel('Email').fill(`reader-${Date.now()}@netpay.test`);
    await broker.getByLabel('Password').fill('correct horse battery staple');
    await shot(broker, 'broker-register');
    await broker.getByRole('button', { name: 'Create account' }).click();
    await broker.waitForURL(/\/coins/);
    await broker.getByLabel('Amount in NZ$').fill('5.00');
    await broker.getByLabel('Card number').fill('4242 4242 4242 4242');
    await broker.getByLabel('Expiry (MM/YY)').fill('12/30');
    await broker.getByLabel('Security code (CVC)').fill('123');
    await broker.getByLabel(/Save this card/).check();
    await broker.getByRole('button', { name: 'Add money' }).click();
    await broker.waitForURL(/added=/);
    assert.equal(minor(await broker.locator('#netpay-balance').textContent()), 500);
    assert.match((await broker.locator('body').textContent()) ?? '', /Saved card ending 4242/);
    await shot(broker, 'broker-wallet-added');

    // The Daily Planet: the paywall's button, the consent page once (one click), back on the story, paid.
    const [p1, p2, p3] = [
      article('daily-planet', 'council-approves-light-rail'),
      article('daily-planet', 'tidewater-packaging-plant'),
      article('daily-planet', 'open-traffic-signals'),
    ] as const;
    await page.goto(`${planetUrl}/`);
    assert.equal(await paperFigures(page), undefined);
    await shot(page, 'planet-front');
    await clickStory(page, planetUrl, p1);
    assert.match((await page.locator('#paywall-title').textContent()) ?? '', /Read this story for NZ\$0\.05/);
    await shot(page, 'planet-paywall');
    await page.getByRole('link', { name: /with NetPay/ }).click();
    await page.waitForURL((url) => url.toString().startsWith(`${brokerUrl}/connect?`));
    assert.equal(await page.locator('input[name="coin"]').count(), 0, 'no coin to pick');
    await shot(page, 'planet-consent');
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForURL(`${planetUrl}/articles/${p1.id}`);
    await assertPaid(page, p1);
    // A block of NZ$2.00 for the connection, NZ$0.50 of it allowed to the Planet: NZ$4.50 left in the balance.
    let planetFigures = await paperFigures(page);
    assert.deepEqual({ left: planetFigures?.left, balance: planetFigures?.balance }, { left: 45, balance: 450 });
    await shot(page, 'planet-story-1-paid');
    assert.equal(await brokerBalance(broker, 'broker-after-planet'), 450);

    for (const [story, left] of [
      [p2, 37],
      [p3, 34],
    ] as const) {
      await clickStory(page, planetUrl, story);
      await assertPaid(page, story);
      planetFigures = await paperFigures(page);
      assert.equal(planetFigures?.left, left);
      assert.equal(planetFigures?.balance, 450);
      await shot(page, `planet-${story.id}`);
    }
    assert.equal(await brokerBalance(broker), 450);
    await page.goto(`${planetUrl}/`);
    for (const story of [p1, p2, p3]) {
      assert.equal(await page.locator(`#h-${story.id} ~ .price.bought`).count(), 1, `${story.id} is marked bought`);
    }
    assert.equal(await page.locator('.price.bought').count(), 3);
    assert.equal((await paperFigures(page))?.left, 34);
    await shot(page, 'planet-front-bought');

    // The reader limits spending across sites to NZ$0.70 a day: 0.50 went to the Planet, 0.20 can go to the Bugle.
    await broker.goto(`${brokerUrl}/sites`);
    await broker.getByLabel('At most per day across all sites (NZ$)').fill('0.70');
    await broker.getByRole('button', { name: 'Save limits' }).click();
    await broker.waitForURL(/saved=limits/);
    await shot(broker, 'broker-daily-cap');

    // The Bugle: its paywall's button connects with no page at all; the balance carries on.
    const [b1, b2, long, b3, b4] = [
      article('the-bugle', 'ferry-skipper-rescue'),
      article('the-bugle', 'night-market-returns'),
      article('the-bugle', 'harbour-bridge-long-read'),
      article('the-bugle', 'robot-mower-escape'),
      article('the-bugle', 'netball-final-thriller'),
    ] as const;
    await page.goto(`${bugleUrl}/articles/${b1.id}`);
    assert.equal(await paperFigures(page), undefined);
    await shot(page, 'bugle-paywall');
    const visited: string[] = [];
    const track = (frame: { url(): string }) => visited.push(frame.url());
    page.on('framenavigated', track);
    await page.getByRole('link', { name: /with NetPay/ }).click();
    await page.waitForURL(`${bugleUrl}/articles/${b1.id}`);
    page.off('framenavigated', track);
    assert.ok(!visited.some((u) => u.startsWith(`${brokerUrl}/connect`)), `no consent page: ${visited.join(' ')}`);
    await assertPaid(page, b1);
    let bugleFigures = await paperFigures(page);
    assert.deepEqual({ left: bugleFigures?.left, balance: bugleFigures?.balance }, { left: 18, balance: 430 });
    await shot(page, 'bugle-story-1-paid');
    assert.equal(await brokerBalance(broker, 'broker-after-bugle'), 430);

    await clickStory(page, bugleUrl, b2);
    await assertPaid(page, b2);
    assert.equal((await paperFigures(page))?.left, 17);

    // NZ$0.12 is above the NZ$0.10 the reader lets sites take without asking: the Bugle asks first.
    await clickStory(page, bugleUrl, long);
    assert.equal(await page.locator('.notice[role="status"]:has-text("You paid")').count(), 0, 'not paid yet');
    assert.match(
      (await page.locator('.paywall').textContent()) ?? '',
      /This story costs NZ\$0\.12, more than the NZ\$0\.10 you let sites take without asking/,
    );
    assert.equal((await paperFigures(page))?.left, 17, 'nothing taken before the reader says so');
    await shot(page, 'bugle-asks-first');
    await page.getByRole('button', { name: 'Read for NZ$0.12' }).click();
    await page.waitForURL(`${bugleUrl}/articles/${long.id}`);
    await assertPaid(page, long);
    assert.equal((await paperFigures(page))?.left, 5);
    await shot(page, 'bugle-long-read-paid');
    await page.reload();
    assert.match(
      (await page.locator('.notice[role="status"]').textContent()) ?? '',
      /You bought this article before: reading it again is free/,
    );
    assert.equal((await paperFigures(page))?.left, 5, 'paid once');

    await clickStory(page, bugleUrl, b3);
    await assertPaid(page, b3);
    assert.equal((await paperFigures(page))?.left, 2);

    // 2c left and the daily cap reached: the Bugle cannot take NZ$0.05, and says why and where to change it.
    await clickStory(page, bugleUrl, b4);
    const capped = (await page.locator('.paywall').textContent()) ?? '';
    assert.match(capped, /You have reached a spending limit you set at NetPay, so The Bugle cannot take NZ\$0\.05 now/);
    const change = page.getByRole('link', { name: 'Change your limits at NetPay' });
    assert.equal(await change.getAttribute('href'), `${brokerUrl}/sites`);
    bugleFigures = await paperFigures(page);
    assert.deepEqual({ left: bugleFigures?.left, balance: bugleFigures?.balance }, { left: 2, balance: 430 });
    await shot(page, 'bugle-cap-reached');
    // The Bugle asked for more, reporting what it spent (18c) and the stories: the broker's figures agree.
    assert.equal(await brokerBalance(broker), 430);
    assert.deepEqual(await brokerSite(broker, bugle), { spent: 18, allowanceLeft: 2 });
    await shot(broker, 'broker-sites-capped');

    // Revoke The Bugle: it releases its chain at once, and its unspent 2c come back.
    await broker.getByRole('button', { name: `Revoke ${bugle}` }).click();
    await broker.waitForURL(/revoked=/);
    assert.match(
      (await broker.locator('body').textContent()) ?? '',
      /The Bugle is disconnected\. NZ\$0\.02 of its allowance is back/,
    );
    assert.equal(await brokerSite(broker, bugle), undefined);
    await shot(broker, 'broker-bugle-revoked');
    assert.equal(await brokerBalance(broker, 'broker-wallet-after-revoke'), 432);

    // Its next story asks to connect again; nothing is charged, and the bar of figures is gone.
    await clickStory(page, bugleUrl, b4);
    assert.match(
      (await page.locator('.paywall').textContent()) ?? '',
      /The Bugle is no longer connected to your NetPay balance\. Connect again to read on\./,
    );
    assert.equal(await page.getByRole('link', { name: 'Connect NetPay and pay NZ$0.05' }).count(), 1);
    assert.equal(await paperFigures(page), undefined);
    await shot(page, 'bugle-asks-to-connect-again');
    // What the reader bought stays bought.
    await page.goto(`${bugleUrl}/`);
    assert.equal(await page.locator('.price.bought').count(), 4);
    await shot(page, 'bugle-front-bought');

    // The history: each row with the running balance; the newest equals the wallet page's balance; the Bugle's
    // stories by title and site; the Planet's allowance left the balance at NZ$4.50.
    await broker.goto(`${brokerUrl}/history`);
    const rows = broker.locator('tbody tr');
    const newest = minor(await rows.first().locator('td[data-label="Balance"]').textContent());
    assert.equal(newest, 432);
    const text = (await broker.locator('table').textContent()) ?? '';
    for (const story of [b1, b2, long, b3]) assert.ok(text.includes(`Read “${story.title}” at The Bugle`), story.title);
    const planetRow = rows.filter({ hasText: `Allowance given to ${planet}` });
    assert.equal(minor(await planetRow.locator('td[data-label="Amount"]').textContent()), -50);
    assert.equal(minor(await planetRow.locator('td[data-label="Balance"]').textContent()), 450);
    const back = rows.filter({ hasText: `Unspent allowance back from ${bugle}` });
    assert.equal(minor(await back.locator('td[data-label="Amount"]').textContent()), 2);
    await shot(broker, 'broker-history');

    // Both papers redeem; the broker then knows what the Planet spent, and its figures are the Planet's.
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
    const planetAtBroker = await brokerSite(broker, planet);
    assert.deepEqual(planetAtBroker, { spent: 16, allowanceLeft: 34 });
    await shot(broker, 'broker-sites-after-redeem');
    await page.goto(`${planetUrl}/`);
    planetFigures = await paperFigures(page);
    assert.equal(planetFigures?.left, planetAtBroker?.allowanceLeft);
    // The Planet last heard from the broker when it connected: its balance says "as of" then, and is the
    // history's balance at that point.
    assert.equal(planetFigures?.balance, 450);
    assert.equal(planetFigures?.asOf, true);
    await shot(page, 'planet-front-as-of');

    // Each service on its own loopback address: the broker's cookies are its own, and its session cookie opens no API.
    const brokerCookies = await context.cookies(brokerUrl);
    const session = brokerCookies.find((c) => c.name === 'np_session');
    assert.ok(session, 'the broker keeps its session in a cookie');
    assert.equal(session.domain, '127.0.0.2');
    for (const siteUrl of [planetUrl, bugleUrl]) {
      for (const cookie of await context.cookies(siteUrl)) {
        assert.ok(!brokerCookies.some((b) => b.value === cookie.value), `${siteUrl} holds the broker's ${cookie.name}`);
      }
    }
    assert.ok(sentToNewspapers.length > 10, 'the newspapers were visited');
    for (const header of sentToNewspapers) {
      for (const cookie of brokerCookies) assert.ok(!header.includes(cookie.value), `a newspaper got ${cookie.name}`);
    }
    for (const path of ['/coins', '/history', '/balance']) {
      const res: Response = await fetch(`${brokerUrl}/api/v1${path}`, {
        headers: { authorization: `Bearer ${session.value}` },
      });
      assert.equal(res.status, 401, `the session cookie as a Bearer token on ${path}`);
    }

    // The operator view: the audit holds after all of it, and both papers were credited.
    const operator = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
    await operator.goto(`${brokerUrl}/operator`);
    await operator.waitForURL(/\/operator\/login$/);
    await operator
      .getByLabel('Operator token', { exact: true })
      .fill(readFileSync(join(data, 'operator-token'), 'utf8').trim());
    await operator.getByRole('button', { name: 'Log in' }).click();
    await operator.waitForURL(/\/operator$/);
    assert.match((await operator.locator('#audit-result').textContent()) ?? '', /Audit OK/);
    await shot(operator, 'operator-view');
  });
});
