import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { b64uDecode, b64uEncode, feeFor, PaywordChain, parseReceipt } from '@netpay/protocol';
import { hashToken } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import {
  CONNECT_TTL_MS,
  type ConnectState,
  checkGrant,
  openConnectState,
  parseCookies,
  safeReturnTo,
  sealConnectState,
  serializeCookie,
  stateMatches,
  WALLET_SESSION_COOKIE,
  walletSessionFrom,
} from '../src/index.ts';
import { Browser, inputValue, type Page, radioValues } from './browser-client.ts';
import { startWorld, type TestVendor, type World } from './harness.ts';

describe('server-side wallet: return_to, state and cookies', () => {
  it('keeps local paths and turns everything else into /', () => {
    assert.equal(safeReturnTo('/articles/1?x=2&y=%20'), '/articles/1?x=2&y=%20');
    assert.equal(safeReturnTo('/'), '/');
    for (const bad of [
      '//evil.example/x',
      '/\\evil.example',
      'http://evil.example/',
      'https://evil.example',
      'javascript:alert(1)',
      'articles/1',
      '',
      ' /a',
      '/a b',
      '/a\r\nSet-Cookie: x=1',
      '/\t/evil.example',
      `/${'a'.repeat(3000)}`,
      undefined,
      ['/a'],
      42,
    ]) {
      assert.equal(safeReturnTo(bad), '/', JSON.stringify(bad));
    }
    // Dot segments resolve on our own origin, never off it.
    assert.equal(safeReturnTo('/a/../../b'), '/b');
  });

  it('seals the connect state: tampering, another key and expiry all fail', () => {
    const secret = randomBytes(32);
    const data: ConnectState = { state: 's1', returnTo: '/a', sessionHash: 'h', expiresAtMs: 1_000 + CONNECT_TTL_MS };
    const sealed = sealConnectState(secret, data);
    assert.deepEqual(openConnectState(secret, sealed, 1_000), data);
    assert.equal(openConnectState(secret, sealed, 1_000 + CONNECT_TTL_MS), undefined, 'expired');
    assert.equal(openConnectState(randomBytes(32), sealed, 1_000), undefined, 'another key');
    const [payload, mac] = sealed.split('.') as [string, string];
    const forged = b64uEncode(new TextEncoder().encode(JSON.stringify({ ...data, returnTo: '//evil' })));
    assert.equal(openConnectState(secret, `${forged}.${mac}`, 1_000), undefined, 'payload swapped');
    assert.equal(openConnectState(secret, `${payload}.${mac.slice(0, -2)}AA`, 1_000), undefined, 'mac changed');
    assert.equal(openConnectState(secret, 'garbage', 1_000), undefined);
    assert.equal(openConnectState(secret, undefined, 1_000), undefined);
    // A sealed open redirect (say from an older version) is still made local.
    const evil = sealConnectState(secret, { ...data, returnTo: '//evil.example' });
    assert.equal(openConnectState(secret, evil, 1_000)?.returnTo, '/');
  });

  it('compares state exactly', () => {
    assert.equal(stateMatches('abc', 'abc'), true);
    for (const other of ['abd', 'ab', 'abcd', '', undefined, ['abc'], 1])
      assert.equal(stateMatches('abc', other), false);
  });

  it('parses and writes cookies', () => {
    const id = b64uEncode(randomBytes(32));
    const cookies = parseCookies(`a=1; ${WALLET_SESSION_COOKIE}=${id}; a=2; junk; b="q"`);
    assert.equal(cookies.get('a'), '1');
    assert.equal(cookies.get('b'), 'q');
    assert.equal(walletSessionFrom(`x=y; ${WALLET_SESSION_COOKIE}=${id}`), id);
    assert.equal(walletSessionFrom(`${WALLET_SESSION_COOKIE}=short`), undefined);
    assert.equal(
      serializeCookie('n', 'v', { path: '/', maxAgeSeconds: 60, secure: true }),
      'n=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure',
    );
    assert.throws(() => serializeCookie('n', 'v; Domain=evil', { path: '/', maxAgeSeconds: 1, secure: false }));
  });

  it('refuses a grant whose seed is not the chain of its touchstone', () => {
    const chain = PaywordChain.generate(10);
    const other = PaywordChain.generate(10);
    const grant = {
      chainId: chain.chainIdB64,
      seed: chain.seedB64,
      touchstone: { chainId: chain.chainIdB64, anchor: chain.anchorB64, length: 10 },
      holder: { chainId: chain.chainIdB64 },
    } as unknown as Parameters<typeof checkGrant>[0];
    assert.equal(checkGrant(grant), undefined);
    assert.match(checkGrant({ ...grant, seed: other.seedB64 }) ?? '', /anchor/);
    assert.match(checkGrant({ ...grant, chainId: other.chainIdB64 }) ?? '', /wrong chain/);
  });
});

const PASSWORD = 'correct horse battery staple';
let seq = 0;

async function register(browser: Browser, brokerUrl: string): Promise<void> {
  const form = await browser.get(`${brokerUrl}/register`);
  assert.equal(form.status, 200, form.text);
  const res = await browser.post(`${brokerUrl}/register`, {
    csrf: inputValue(form.text, 'csrf') ?? '',
    email: `reader${++seq}-${Date.now()}@netpay.test`,
    password: PASSWORD,
  });
  assert.equal(res.status, 303, res.text);
}

/** The consent form's answer: buy a new coin (`amount` like '2.00') or pick an existing one (`coin` = chainId). */
function consentForm(page: string, choice: { amount: string } | { coin: string }): Record<string, string> {
  const base = {
    csrf: inputValue(page, 'csrf') ?? '',
    vendor: inputValue(page, 'vendor') ?? '',
    return: inputValue(page, 'return') ?? '',
    state: inputValue(page, 'state') ?? '',
    action: 'connect',
  };
  if ('coin' in choice) return { ...base, coin: choice.coin };
  return {
    ...base,
    idem: inputValue(page, 'idem') ?? '',
    coin: 'new',
    amount: choice.amount,
    card_number: '4242 4242 4242 4242',
    card_expiry: '12/30',
    card_cvc: '123',
  };
}

/** Paywall button → vendor connect → broker consent page. */
async function startConnect(browser: Browser, vendor: TestVendor, returnTo: string, brokerUrl: string): Promise<Page> {
  const hops = await browser.follow(`${vendor.url}/netpay/connect?return_to=${encodeURIComponent(returnTo)}`);
  assert.equal(hops[0]?.status, 303);
  const consent = hops.at(-1) as Page;
  assert.ok(consent.url.startsWith(`${brokerUrl}/connect?`), consent.url);
  assert.equal(consent.status, 200, consent.text.slice(0, 500));
  return consent;
}

/** Consents at the broker; the redirect back to the vendor's callback (not followed). */
async function consent(browser: Browser, brokerUrl: string, page: Page, choice: { amount: string } | { coin: string }) {
  const answer = await browser.post(`${brokerUrl}/connect`, consentForm(page.text, choice));
  assert.equal(answer.status, 303, answer.text.slice(0, 500));
  return answer.location as string;
}

/** Runs connect end to end and returns where the callback sent the browser. */
async function connect(
  browser: Browser,
  vendor: TestVendor,
  returnTo: string,
  brokerUrl: string,
  choice: { amount: string } | { coin: string },
): Promise<string> {
  const page = await startConnect(browser, vendor, returnTo, brokerUrl);
  const callback = await consent(browser, brokerUrl, page, choice);
  assert.ok(callback.startsWith(`${vendor.url}/netpay/callback?`), callback);
  const back = await browser.get(callback);
  assert.equal(back.status, 303, back.text);
  return back.location as string;
}

interface Read {
  status: number;
  balance: number | undefined;
  charged: boolean | undefined;
  page: Page;
}

async function read(browser: Browser, vendor: TestVendor, id: string): Promise<Read> {
  const page = await browser.get(`${vendor.url}/articles/${id}`);
  const receipt = page.headers.get('netpay-receipt');
  let charged: boolean | undefined;
  try {
    charged = (JSON.parse(page.text) as { paid?: { charged: boolean } }).paid?.charged;
  } catch {
    charged = undefined;
  }
  return {
    status: page.status,
    balance: receipt ? parseReceipt(receipt).balance : undefined,
    charged,
    page,
  };
}

function sessionOf(browser: Browser): string {
  const id = browser.jar.get(WALLET_SESSION_COOKIE);
  assert.ok(id, 'the browser has a wallet session');
  return id;
}

for (const engine of testEngines()) {
  describe(`server-side wallets over HTTP on ${engine} (bank, broker, two vendors)`, () => {
    let world: World;
    let a: TestVendor;
    let b: TestVendor;
    const pricesA = { '1': 5, '2': 3, '3': 7, '6': 2 };
    const pricesB = { '4': 6, '5': 4 };

    before(async () => {
      world = await startWorld({ engine, feeBps: 200 });
      a = await world.addVendor(`wallet-a-${engine}`, { prices: pricesA });
      b = await world.addVendor(`wallet-b-${engine}`, { prices: pricesB });
    });
    after(async () => world?.close());

    it('connects a coin at A, reads three, moves it to B and reads two, comes back to A; redemption and audit are exact', async () => {
      const browser = new Browser();
      await register(browser, world.brokerUrl);

      const wall = await browser.get(`${a.url}/articles/1`);
      assert.equal(wall.status, 402);
      assert.ok(wall.text.includes('href="/netpay/connect?return_to=%2Farticles%2F1"'), wall.text);

      const page = await startConnect(browser, a, '/articles/1', world.brokerUrl);
      const sessionCookie = page.url && browser.jar.get(WALLET_SESSION_COOKIE);
      assert.ok(sessionCookie);
      const callback = await consent(browser, world.brokerUrl, page, { amount: '2.00' });
      const back = await browser.get(callback);
      assert.equal(back.status, 303, back.text);
      assert.equal(back.location, `${a.url}/articles/1`);
      const session = sessionOf(browser);
      const stored = await a.store.getServerWallet(hashToken(session));
      assert.ok(stored, 'the wallet is stored under a hash of the session');
      const chainId = stored.chainId;

      let expected = 200;
      for (const id of ['1', '2', '3']) {
        const r = await read(browser, a, id);
        expected -= pricesA[id as keyof typeof pricesA];
        assert.equal(r.status, 200, r.page.text);
        assert.equal(r.balance, expected, `balance after article ${id}`);
        assert.equal(r.charged, true);
        assert.deepEqual(await a.vendor.walletBalance(session), { chainId, balanceMinor: expected });
      }
      assert.equal(expected, 185);
      // A re-read is free.
      const again = await read(browser, a, '1');
      assert.equal(again.status, 200);
      assert.equal(again.charged, false);
      assert.equal(again.balance, 185);

      // At B the session has no wallet yet: the paywall, then connect picking the same coin (no new purchase).
      assert.equal((await read(browser, b, '4')).status, 402);
      const pageB = await startConnect(browser, b, '/articles/4', world.brokerUrl);
      assert.deepEqual(
        radioValues(pageB.text, 'coin').filter((v) => v !== 'new'),
        [chainId],
      );
      const callbackB = await consent(browser, world.brokerUrl, pageB, { coin: chainId });
      const backB = await browser.get(callbackB);
      assert.equal(backB.status, 303, backB.text);
      assert.equal(backB.location, `${b.url}/articles/4`);
      assert.deepEqual(await b.vendor.walletBalance(session), { chainId, balanceMinor: 185 });
      for (const id of ['4', '5']) {
        const r = await read(browser, b, id);
        expected -= pricesB[id as keyof typeof pricesB];
        assert.equal(r.status, 200, r.page.text);
        assert.equal(r.balance, expected, `balance after article ${id} at B`);
      }
      assert.equal(expected, 175);

      // Back at A: its wallet is still attached; a new article makes A claim the coin again (B releases).
      const six = await read(browser, a, '6');
      assert.equal(six.status, 200, six.page.text);
      assert.equal(six.balance, 173);

      const ra = await a.vendor.redeemNow();
      const rb = await b.vendor.redeemNow();
      assert.deepEqual(ra, {
        batches: 1,
        accepted: 2,
        rejected: 0,
        credited: 15 - feeFor(15, 200) + (2 - feeFor(2, 200)),
      });
      assert.deepEqual(rb, { batches: 1, accepted: 1, rejected: 0, credited: 10 - feeFor(10, 200) });
      assert.equal((await world.vendorAccount(a.apiKey)).balance, 17 - feeFor(15, 200) - feeFor(2, 200));
      assert.equal((await world.vendorAccount(b.apiKey)).balance, 10 - feeFor(10, 200));
      const audit = await world.audit();
      assert.equal(audit.ok, true, audit.discrepancies.join('\n'));
    });

    it('when the coin runs out the paywall says so and links to the broker', async () => {
      const browser = new Browser();
      await register(browser, world.brokerUrl);
      const where = await connect(browser, a, '/articles/1', world.brokerUrl, { amount: '0.10' });
      assert.equal(where, `${a.url}/articles/1`);
      const first = await read(browser, a, '1');
      assert.equal(first.balance, 5);
      const out = await read(browser, a, '3');
      assert.equal(out.status, 402);
      assert.match(out.page.headers.get('content-type') ?? '', /text\/html/);
      assert.match(out.page.text, /Your NetPay coin has run out\./);
      assert.ok(out.page.text.includes(`href="${world.brokerUrl}/coins"`));
      assert.ok(out.page.text.includes('href="/netpay/connect?return_to=%2Farticles%2F3"'));
      assert.equal((await a.vendor.walletBalance(sessionOf(browser)))?.balanceMinor, 5);
    });

    it('refuses a callback with the wrong state or from another browser, and stores nothing', async () => {
      const browser = new Browser();
      await register(browser, world.brokerUrl);
      const page = await startConnect(browser, a, '/articles/2', world.brokerUrl);
      const callback = new URL(await consent(browser, world.brokerUrl, page, { amount: '1.00' }));
      const session = sessionOf(browser);

      const wrong = new URL(callback);
      wrong.searchParams.set('state', `${callback.searchParams.get('state')}x`);
      const refused = await browser.get(wrong.toString());
      assert.equal(refused.status, 400);
      assert.match(refused.text, /not started here/);
      assert.equal(await a.store.getServerWallet(hashToken(session)), undefined);
      assert.equal(await a.vendor.walletBalance(session), null);
      // The refusal also dropped the connect cookie: even the right state is refused now.
      const late = await browser.get(callback.toString());
      assert.equal(late.status, 400);
      assert.equal(await a.store.getServerWallet(hashToken(session)), undefined);

      // A code taken to another browser (no session, no connect cookie) is refused too.
      const other = await new Browser().get(callback.toString());
      assert.equal(other.status, 400);

      // A state made for another session does not fit this one.
      const p2 = await startConnect(browser, a, '/articles/2', world.brokerUrl);
      const cb2 = await consent(browser, world.brokerUrl, p2, { amount: '1.00' });
      const thief = new Browser();
      for (const [k, v] of browser.jar) if (k !== WALLET_SESSION_COOKIE) thief.jar.set(k, v);
      thief.jar.set(WALLET_SESSION_COOKIE, b64uEncode(randomBytes(32)));
      assert.equal((await thief.get(cb2)).status, 400);
      assert.equal(await a.store.getServerWallet(hashToken(thief.jar.get(WALLET_SESSION_COOKIE) ?? '')), undefined);
    });

    it('never redirects off the site: return_to //evil or http://… becomes /', async () => {
      const browser = new Browser();
      await register(browser, world.brokerUrl);
      const start = await browser.get(`${a.url}/netpay/connect?return_to=${encodeURIComponent('//evil.example/x')}`);
      assert.equal(start.status, 303);
      const sealed = [...browser.jar].find(([k]) => k.startsWith('np_connect_'))?.[1] ?? '';
      const payload = JSON.parse(new TextDecoder().decode(b64uDecode(sealed.split('.')[0] ?? ''))) as ConnectState;
      assert.equal(payload.returnTo, '/');
      const cookieLine = start.setCookies.find((c) => c.startsWith(`${WALLET_SESSION_COOKIE}=`)) ?? '';
      assert.match(cookieLine, /; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
      const location = new URL(start.location ?? '');
      assert.equal(location.searchParams.get('return'), `${a.url}/netpay/callback`);

      const where = await connect(browser, a, 'http://evil.example/', world.brokerUrl, { amount: '1.00' });
      assert.equal(where, `${a.url}/`);
    });

    it('a cancelled consent attaches nothing and returns to the article', async () => {
      const browser = new Browser();
      await register(browser, world.brokerUrl);
      const page = await startConnect(browser, b, '/articles/5', world.brokerUrl);
      const answer = await browser.post(`${world.brokerUrl}/connect`, {
        ...consentForm(page.text, { amount: '1.00' }),
        action: 'cancel',
      });
      assert.equal(answer.status, 303);
      const back = await browser.get(answer.location ?? '');
      assert.equal(back.status, 303);
      assert.equal(back.location, `${b.url}/articles/5`);
      assert.equal(await b.vendor.walletBalance(sessionOf(browser)), null);
    });
  });
}
