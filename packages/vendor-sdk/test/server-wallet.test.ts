import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { b64uDecode, b64uEncode, PaywordChain } from '@netpay/protocol';
import { hashToken } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import {
  CONNECT_TTL_MS,
  type ConnectState,
  INTENT_TTL_MS,
  openConnectState,
  openIntent,
  parseCookies,
  payFormToken,
  payFormTokenMatches,
  paywordBelow,
  readPayForm,
  safeReturnTo,
  sameOriginPost,
  sameSiteNavigation,
  sealConnectState,
  sealIntent,
  serializeCookie,
  stateMatches,
  WALLET_SESSION_COOKIE,
  walletProofs,
  walletSessionFrom,
} from '../src/index.ts';
import { Browser, inputValue, type Page } from './browser-client.ts';
import { payFormOf, Reader } from './connected-reader.ts';
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

  it('derives w_k from the allowance for every k up to it, and nothing above', () => {
    const chain = PaywordChain.generate(100);
    const allowance = { index: 60, payword: chain.b64(60) };
    for (const k of [0, 1, 37, 59, 60]) assert.equal(paywordBelow(chain.chainIdB64, allowance, k), chain.b64(k));
    for (const k of [61, 100, -1, 1.5]) assert.equal(paywordBelow(chain.chainIdB64, allowance, k), undefined);
  });

  it("derives a claim's proof at or below the allowance only", () => {
    const chain = PaywordChain.generate(100);
    const allowance = { index: 20, payword: chain.b64(20) };
    const wallet = { allowanceIndex: 20, payword: (i: number) => paywordBelow(chain.chainIdB64, allowance, i) };
    assert.deepEqual(walletProofs(wallet, 15, 3)(undefined), { index: 18, payword: chain.b64(18) });
    // The broker knows a higher point: above it, still within the allowance…
    assert.deepEqual(walletProofs(wallet, 15, 3)(17), { index: 20, payword: chain.b64(20) });
    // …and never beyond: the wallet asks the broker for the next allowance instead.
    assert.equal(walletProofs(wallet, 15, 3)(18), undefined);
    assert.equal(walletProofs(wallet, 18, 3)(undefined), undefined);
  });

  it('pays only for navigations on this site: Sec-Fetch-Site, or a same-origin Referer without it', () => {
    const site = 'https://news.example';
    assert.equal(sameSiteNavigation({ secFetchSite: 'same-origin' }, site), true);
    assert.equal(sameSiteNavigation({ secFetchSite: 'none' }, site), true);
    assert.equal(sameSiteNavigation({ secFetchSite: 'cross-site', referer: `${site}/` }, site), false);
    assert.equal(sameSiteNavigation({ secFetchSite: 'same-site' }, site), false, 'another origin of the site');
    const page = 'text/html,application/xhtml+xml,*/*;q=0.8';
    assert.equal(sameSiteNavigation({ referer: `${site}/articles/1`, accept: page }, site), true, 'an old browser');
    assert.equal(
      sameSiteNavigation({ referer: `${site}/articles/1`, accept: 'image/webp,*/*' }, site),
      false,
      "an old browser's <img> on the site's page",
    );
    assert.equal(sameSiteNavigation({ referer: 'https://evil.example/' }, site), false);
    assert.equal(sameSiteNavigation({}, site), false, 'no header and no referer: not known to be ours');
    assert.equal(sameOriginPost({ secFetchSite: 'same-origin' }, site), true);
    assert.equal(sameOriginPost({ secFetchSite: 'none' }, site), false);
    assert.equal(sameOriginPost({ secFetchSite: 'cross-site', origin: site }, site), false);
    assert.equal(sameOriginPost({ origin: site }, site), true);
    assert.equal(sameOriginPost({ origin: 'null', referer: `${site}/a` }, site), true);
    assert.equal(sameOriginPost({ origin: 'https://evil.example' }, site), false);
  });

  it('binds the pay form token and the intent to the session, the page and the time', () => {
    const secret = randomBytes(32);
    const token = payFormToken(secret, 'session-a');
    assert.equal(payFormTokenMatches(secret, 'session-a', token), true);
    assert.equal(payFormTokenMatches(secret, 'session-b', token), false);
    assert.equal(payFormTokenMatches(randomBytes(32), 'session-a', token), false);
    assert.equal(payFormTokenMatches(secret, 'session-a', ''), false);
    const intent = { sessionHash: 'session-a', path: '/articles/1', upToMinor: 12, expiresAtMs: 1_000 + INTENT_TTL_MS };
    const sealed = sealIntent(secret, intent);
    assert.deepEqual(openIntent(secret, sealed, 'session-a', 1_000), intent);
    assert.equal(openIntent(secret, sealed, 'session-b', 1_000), undefined);
    assert.equal(openIntent(secret, sealed, 'session-a', 1_000 + INTENT_TTL_MS), undefined);
    // A connect state is no intent, even under the same key.
    const state = sealConnectState(secret, { state: 's', returnTo: '/', sessionHash: 'session-a', expiresAtMs: 2e12 });
    assert.equal(openIntent(secret, state, 'session-a', 1_000), undefined);
    assert.deepEqual(readPayForm('csrf=t&return_to=%2Farticles%2F1&price=12'), {
      csrf: 't',
      returnTo: '/articles/1',
      priceMinor: 12,
    });
    for (const bad of ['csrf=t&return_to=%2F', 'csrf=t&return_to=%2F&price=-1', 'price=1e3&csrf=t&return_to=%2F', 42]) {
      assert.equal(readPayForm(bad), undefined, String(bad));
    }
  });
});

/** The vendor's own record of a chain: how far it was paid (the truth of what was charged). */
async function lastIndexAt(vendor: TestVendor, chainId: string): Promise<number> {
  const loaded = await vendor.store.loadChain(chainId);
  return Math.max(0, ...(loaded?.epochs ?? []).map((e) => e.last?.index ?? 0));
}

/** The highest point of a chain the broker knows spent (checkpoints, allowance requests). */
async function brokerKnows(world: World, chainId: string): Promise<number> {
  const rows = await world.brokerDb
    .selectFrom('epochs')
    .select(['checkpoint_index', 'release_index'])
    .where('chain_id', '=', chainId)
    .execute();
  return Math.max(0, ...rows.map((r) => Math.max(Number(r.checkpoint_index ?? 0), Number(r.release_index ?? 0))));
}

for (const engine of testEngines()) {
  describe(`server-side wallets over HTTP on ${engine} (bank, broker, two vendors)`, () => {
    let world: World;
    let a: TestVendor;
    let b: TestVendor;
    // Allowances of at most 20 cents, so a few articles use one up.
    const pricesA = { '1': 5, '2': 3, '3': 7, '4': 9, '5': 12, '6': 2, '7': 4, '8': 6, '9': 8 };
    const pricesB = { '1': 4, '2': 6 };

    before(async () => {
      world = await startWorld({ engine, feeBps: 200, broker: { allowanceMaxMinor: 20, connectionBlockMinor: 200 } });
      a = await world.addVendor(`wallet-a-${engine}`, { prices: pricesA });
      b = await world.addVendor(`wallet-b-${engine}`, { prices: pricesB });
    });
    after(async () => world?.close());

    const walletAt = async (vendor: TestVendor, reader: Reader) => {
      const view = await vendor.vendor.sessionView(reader.session);
      assert.ok(view.wallet, `${vendor.id} holds a wallet for the session`);
      return view.wallet;
    };

    it('connects once with one click, reads, refreshes the allowance when low, and shows the broker’s figures', async () => {
      const reader = await Reader.open(world, 500);
      const wall = await reader.read(a, '1');
      assert.equal(wall.status, 402);
      assert.ok(wall.page.text.includes('href="/netpay/connect?return_to=%2Farticles%2F1"'), wall.page.text);

      const first = await reader.connect(a, '1');
      assert.equal(first.consent, true, 'the first site shows the consent page, once');
      assert.equal(first.read.status, 200, first.read.page.text.slice(0, 300));
      assert.equal(first.read.charged, true, 'the article the reader connected from is paid on return');
      const stored = await a.store.getServerWallet(hashToken(reader.session));
      assert.ok(stored, 'the wallet is stored under a hash of the session');
      assert.equal(stored.allowance.index, 20, 'an allowance of 20 units, no seed');
      assert.match(stored.refreshTokenSealed, /^nps1\./, 'the refresh token is sealed at rest');
      const chainId = stored.chainId;

      // Block of 2.00 for the connection, 0.20 of it allowed: the NetPay balance is 5.00 − 0.20.
      let broker = await reader.figures();
      assert.equal(broker.balance, 480);
      let wallet = await walletAt(a, reader);
      assert.equal(wallet.balanceMinor, broker.balance);
      assert.equal(wallet.allowanceLeftMinor, 15);
      for (const [id, left] of [
        ['2', 12],
        ['3', 5],
      ] as const) {
        const r = await reader.read(a, id);
        assert.equal(r.status, 200, r.page.text.slice(0, 300));
        assert.equal(r.charged, true);
        wallet = await walletAt(a, reader);
        assert.equal(wallet.allowanceLeftMinor, left, `allowance left after article ${id}`);
        assert.equal(wallet.balanceMinor, 480);
      }
      assert.equal(await brokerKnows(world, chainId), 0, 'spending within the allowance asks nobody');

      // Article 4 (9c) is more than the 5c left: the wallet asks for the next allowance first, reporting 15 spent.
      const four = await reader.read(a, '4');
      assert.equal(four.status, 200, four.page.text.slice(0, 300));
      assert.equal(four.charged, true);
      assert.equal(await brokerKnows(world, chainId), 15);
      wallet = await walletAt(a, reader);
      broker = await reader.figures();
      assert.equal(broker.balance, 465, 'allowance 35 on the chain now');
      assert.equal(wallet.balanceMinor, broker.balance);
      assert.equal(wallet.allowanceLeftMinor, 11);
      const siteA = await reader.site(a);
      // The broker knows the point reported (15); the vendor has spent 9 more since.
      assert.equal(siteA.allowanceLeft, 20);
      assert.equal(siteA.allowanceLeft - wallet.allowanceLeftMinor, pricesA['4']);
      const history = await reader.history();
      for (const id of ['1', '2', '3']) assert.ok(history.includes(`Article ${id}`), `history names article ${id}`);
      assert.ok(history.includes(`Vendor ${a.id}`), 'history names the site');

      // A re-read is free, and the session knows what it bought.
      const again = await reader.read(a, '1');
      assert.equal(again.status, 200);
      assert.equal(again.charged, false);
      assert.equal((await walletAt(a, reader)).allowanceLeftMinor, 11);
      assert.deepEqual([...(await a.vendor.sessionView(reader.session)).bought].sort(), [
        'GET /articles/1',
        'GET /articles/2',
        'GET /articles/3',
        'GET /articles/4',
      ]);

      // The second site connects without a page; the balance carries on.
      assert.equal((await reader.read(b, '1')).status, 402);
      const atB = await reader.connect(b, '1');
      assert.equal(atB.consent, false, 'no second consent');
      assert.equal(atB.read.status, 200, atB.read.page.text.slice(0, 300));
      assert.equal(atB.read.charged, true);
      broker = await reader.figures();
      const walletB = await walletAt(b, reader);
      assert.equal(walletB.balanceMinor, broker.balance);
      assert.equal(broker.balance, 465 - 20, 'B holds an allowance of 20 too');
      assert.equal(walletB.allowanceLeftMinor, 16);
      assert.notEqual(walletB.chainId, chainId, 'each connection draws on a chain of its own');

      // Every vendor redeems exactly what it served; the audit holds.
      const ra = await a.vendor.redeemNow();
      const rb = await b.vendor.redeemNow();
      assert.equal(ra.rejected + rb.rejected, 0);
      assert.equal(ra.accepted + rb.accepted, 2);
      const audit = await world.audit();
      assert.equal(audit.ok, true, audit.discrepancies.join('\n'));
    });

    it('a cross-site navigation gets the paywall and never a charge; the same-site form pays once', async () => {
      const reader = await Reader.open(world, 300);
      assert.equal((await reader.connect(a, '6')).read.charged, true);
      const { chainId } = await walletAt(a, reader);
      const spent = await lastIndexAt(a, chainId);
      const known = await brokerKnows(world, chainId);
      const earned = (await a.store.totals()).earned;
      const unchanged = async () => {
        assert.equal(await lastIndexAt(a, chainId), spent, 'nothing spent at the vendor');
        assert.equal(await brokerKnows(world, chainId), known, 'nothing spent at the broker');
        assert.equal((await a.store.totals()).earned, earned);
        assert.equal((await walletAt(a, reader)).allowanceLeftMinor, 18);
      };

      const cross = await reader.read(a, '7', { site: 'cross-site', referer: true, from: 'http://evil.example/' });
      assert.equal(cross.status, 402);
      assert.equal(cross.reason, 'cross_site');
      assert.match(cross.page.text, /Read for NZ\$0\.04/);
      await unchanged();
      // An old browser (no Sec-Fetch-Site) and no Referer from this site: not known to be ours.
      const old = await reader.read(a, '7', { site: null });
      assert.equal(old.reason, 'cross_site');
      // A program with the cookie asking for JSON from another site.
      const json = await fetch(`${a.url}/articles/7`, {
        headers: { accept: 'application/json', cookie: reader.browser.cookieHeader(), 'sec-fetch-site': 'cross-site' },
      });
      assert.equal(json.status, 402);
      assert.equal(((await json.json()) as { code: string }).code, 'payment_required');
      await unchanged();

      // The pay form posted from another site, or with another session's token, pays nothing.
      const form = payFormOf(cross.page.text);
      assert.ok(form);
      const forged = await reader.browser.post(`${a.url}${form.action}`, form.fields, { site: 'cross-site' });
      assert.equal(forged.status, 403);
      const wrong = await reader.browser.post(
        `${a.url}${form.action}`,
        { ...form.fields, csrf: payFormToken(randomBytes(32), 'x') },
        { from: cross.page.url },
      );
      assert.equal(wrong.status, 403);
      await unchanged();

      // The reader presses "Read for NZ$0.04" on the page: paid once.
      const paid = await reader.pressRead(a, cross.page);
      assert.equal(paid.status, 200, paid.page.text.slice(0, 300));
      assert.equal(paid.charged, true);
      assert.equal(await lastIndexAt(a, chainId), spent + 4);
      const twice = await reader.read(a, '7', { site: 'cross-site' });
      assert.equal(twice.status, 200, 'bought: a re-read is free from anywhere');
      assert.equal(twice.charged, false);
      assert.equal(await lastIndexAt(a, chainId), spent + 4);

      // An old browser that sends a Referer of this site pays as a click here.
      const referred = await reader.read(a, '8', { site: null, from: `${a.url}/`, referer: true });
      assert.equal(referred.status, 200, referred.page.text.slice(0, 300));
      assert.equal(referred.charged, true);
    });

    it('a price above the auto-pay limit asks first, and the same-site form pays it once', async () => {
      const reader = await Reader.open(world, 300);
      await reader.connect(a, '6');
      const { chainId } = await walletAt(a, reader);
      const asked = await reader.read(a, '5');
      assert.equal(asked.status, 402);
      assert.equal(asked.reason, 'confirm');
      assert.match(asked.page.text, /Read for NZ\$0\.12/);
      assert.equal(await lastIndexAt(a, chainId), 2);

      // A form whose price was lowered does not pay the 12c article.
      const form = payFormOf(asked.page.text);
      assert.ok(form);
      const cheap = await reader.browser.post(
        `${a.url}${form.action}`,
        { ...form.fields, price: '2' },
        {
          from: asked.page.url,
        },
      );
      assert.equal(cheap.status, 303);
      const stillAsked = await reader.browser.get(cheap.location ?? '');
      assert.equal(stillAsked.status, 402);
      assert.equal(await lastIndexAt(a, chainId), 2);

      const paid = await reader.pressRead(a, asked.page);
      assert.equal(paid.status, 200, paid.page.text.slice(0, 300));
      assert.equal(paid.charged, true);
      assert.equal(await lastIndexAt(a, chainId), 14);
      assert.equal((await walletAt(a, reader)).allowanceLeftMinor, 6);
      const again = await reader.read(a, '5');
      assert.equal(again.charged, false, 'paid once');
      assert.equal(await lastIndexAt(a, chainId), 14);

      // With the limit raised at the broker, the next allowance carries it and the site no longer asks.
      await reader.setLimits('0.20', '2.00');
      await reader.read(a, '9'); // 8c: more than the 6c left, so the wallet asks the broker and learns the new limit
      assert.equal((await walletAt(a, reader)).autoPayMaxMinor, 20);
    });

    it('a revoked connection asks to connect again; what was bought stays bought', async () => {
      const reader = await Reader.open(world, 300);
      await reader.connect(a, '6');
      assert.equal((await reader.read(a, '7')).charged, true);
      const { chainId } = await walletAt(a, reader);
      await reader.revoke(a);
      const site = (await reader.figures()).sites.find((s) => s.vendorId === a.id);
      assert.ok(site === undefined || site.revoked, 'the site is disconnected');
      // The vendor released the chain at 6: everything else is back in the balance.
      assert.equal((await reader.figures()).balance, 300 - 6);

      const next = await reader.read(a, '8');
      assert.equal(next.status, 402);
      assert.equal(next.reason, 'connection_revoked');
      assert.ok(next.page.text.includes('href="/netpay/connect?return_to=%2Farticles%2F8"'));
      assert.equal((await a.vendor.sessionView(reader.session)).wallet, null, 'the wallet is forgotten');
      assert.equal(await lastIndexAt(a, chainId), 6, 'nothing charged');
      const bought = await reader.read(a, '7');
      assert.equal(bought.status, 200);
      assert.equal(bought.charged, false);

      // Connecting again asks at the broker once more (the customer revoked this site), one click, and pays.
      const back = await reader.connect(a, '8');
      assert.equal(back.consent, true);
      assert.equal(back.read.charged, true);
      assert.equal((await walletAt(a, reader)).balanceMinor, (await reader.figures()).balance);
    });

    it('a limit reached and an empty balance are said on the paywall, with the broker page to act on', async () => {
      const capped = await Reader.open(world, 500);
      await capped.connect(a, '6');
      await capped.setSiteCap(a, '0.20');
      for (const id of ['1', '2', '3']) assert.equal((await capped.read(a, id)).charged, true);
      const limited = await capped.read(a, '4');
      assert.equal(limited.status, 402);
      assert.equal(limited.code, 'limit_reached');
      assert.equal(limited.reason, 'limit_reached');
      assert.ok(limited.page.text.includes(`href="${world.brokerUrl}/sites"`), limited.page.text);
      assert.match(limited.page.text, /Change your limits at NetPay/);
      assert.equal((await walletAt(a, capped)).allowanceLeftMinor, 3, 'nothing charged');
      await capped.setSiteCap(a, '5.00');
      assert.equal((await capped.read(a, '4')).charged, true);

      const poor = await Reader.open(world, 30);
      assert.equal((await poor.connect(a, '1')).read.charged, true);
      for (const id of ['2', '3', '4']) assert.equal((await poor.read(a, id)).charged, true, `article ${id}`);
      const wallet = await walletAt(a, poor);
      assert.equal(wallet.balanceMinor, 0);
      assert.equal(wallet.allowanceLeftMinor, 6);
      const empty = await poor.read(a, '9');
      assert.equal(empty.status, 402);
      assert.equal(empty.code, 'balance_exhausted');
      assert.equal(empty.reason, 'balance_exhausted');
      assert.ok(empty.page.text.includes(`href="${world.brokerUrl}/coins"`), empty.page.text);
      assert.match(empty.page.text, /Add money at NetPay/);
      // What is left still pays a cheaper article.
      assert.equal((await poor.read(a, '6')).charged, true);
      assert.equal((await poor.figures()).balance, 0);
    });

    it('refuses a callback with the wrong state or from another browser, and stores nothing', async () => {
      const reader = await Reader.open(world, 100);
      const browser = reader.browser;
      // The paywall's button, then the broker: a consent page the first time, an immediate redirect after that.
      const start = async () => {
        const hop = await browser.get(`${a.url}/netpay/connect?return_to=%2Farticles%2F2`, {
          from: `${a.url}/articles/2`,
        });
        assert.equal(hop.status, 303);
        const broker = await browser.get(hop.location ?? '');
        if (broker.status === 303) return new URL(broker.location ?? '');
        assert.equal(broker.status, 200, broker.text.slice(0, 300));
        const answer = await browser.post(`${world.brokerUrl}/connect`, {
          csrf: inputValue(broker.text, 'csrf') ?? '',
          vendor: inputValue(broker.text, 'vendor') ?? '',
          return: inputValue(broker.text, 'return') ?? '',
          state: inputValue(broker.text, 'state') ?? '',
          action: 'connect',
        });
        assert.equal(answer.status, 303);
        return new URL(answer.location ?? '');
      };
      const callback = await start();
      const session = reader.session;
      const wrong = new URL(callback);
      wrong.searchParams.set('state', `${callback.searchParams.get('state')}x`);
      const refused = await browser.get(wrong.toString());
      assert.equal(refused.status, 400);
      assert.match(refused.text, /not started here/);
      assert.equal(await a.store.getServerWallet(hashToken(session)), undefined);
      // The refusal also dropped the connect cookie: even the right state is refused now.
      assert.equal((await browser.get(callback.toString())).status, 400);
      assert.equal(await a.store.getServerWallet(hashToken(session)), undefined);
      // A code taken to another browser (no session, no connect cookie) is refused too.
      assert.equal((await new Browser().get(callback.toString())).status, 400);

      // A state made for another session does not fit this one.
      const cb2 = await start();
      const thief = new Browser();
      for (const [k, v] of browser.jar) if (k !== WALLET_SESSION_COOKIE) thief.jar.set(k, v);
      thief.jar.set(WALLET_SESSION_COOKIE, b64uEncode(randomBytes(32)));
      assert.equal((await thief.get(cb2.toString())).status, 400);
      assert.equal(await a.store.getServerWallet(hashToken(thief.jar.get(WALLET_SESSION_COOKIE) ?? '')), undefined);
    });

    it('never redirects off the site: return_to //evil or http://… becomes /', async () => {
      const reader = await Reader.open(world, 100);
      const start = await reader.browser.get(
        `${a.url}/netpay/connect?return_to=${encodeURIComponent('//evil.example/x')}`,
        {
          site: 'none',
        },
      );
      assert.equal(start.status, 303);
      const sealed = [...reader.browser.jar].find(([k]) => k.startsWith('np_connect_'))?.[1] ?? '';
      const payload = JSON.parse(new TextDecoder().decode(b64uDecode(sealed.split('.')[0] ?? ''))) as ConnectState;
      assert.equal(payload.returnTo, '/');
      assert.equal(payload.payOnReturn, true, 'typed into the address bar: the reader’s own doing');
      const cookieLine = start.setCookies.find((c) => c.startsWith(`${WALLET_SESSION_COOKIE}=`)) ?? '';
      assert.match(cookieLine, /; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
      const location = new URL(start.location ?? '');
      assert.equal(location.searchParams.get('return'), `${a.url}/netpay/callback`);
      // From another site, the connect start vouches for nothing.
      await reader.browser.get(`${a.url}/netpay/connect?return_to=%2Farticles%2F1`, { site: 'cross-site' });
      const crossSealed = [...reader.browser.jar].find(([k]) => k.startsWith('np_connect_'))?.[1] ?? '';
      const crossPayload = JSON.parse(
        new TextDecoder().decode(b64uDecode(crossSealed.split('.')[0] ?? '')),
      ) as ConnectState;
      assert.equal(crossPayload.payOnReturn, false);
    });

    it('a connect started from another site connects but charges nothing until the reader clicks here', async () => {
      const reader = await Reader.open(world, 100);
      // Connect at B first, so that A connects with no page at all (the case a third-party page could exploit).
      await reader.connect(b, '2');
      // The reader clicks a link on another site to A's connect.
      const hops = await reader.browser.follow(`${a.url}/netpay/connect?return_to=%2Farticles%2F3`, 8, {
        site: 'cross-site',
        user: true,
      });
      const last = hops.at(-1);
      assert.equal(last?.url, `${a.url}/articles/3`);
      assert.equal(last?.status, 402, 'back on the article, not paid');
      assert.match(last?.text ?? '', /data-netpay-reason="cross_site"/);
      const wallet = await walletAt(a, reader);
      assert.equal(await lastIndexAt(a, wallet.chainId), 0);
    });

    it('a cancelled consent connects nothing and returns to the article', async () => {
      const reader = await Reader.open(world, 100);
      const hops = await reader.browser.follow(`${b.url}/netpay/connect?return_to=%2Farticles%2F2`, 6, {
        from: `${b.url}/articles/2`,
      });
      const consent = hops.at(-1) as Page;
      assert.ok(consent.url.startsWith(`${world.brokerUrl}/connect?`));
      const answer = await reader.browser.post(`${world.brokerUrl}/connect`, {
        csrf: inputValue(consent.text, 'csrf') ?? '',
        vendor: inputValue(consent.text, 'vendor') ?? '',
        return: inputValue(consent.text, 'return') ?? '',
        state: inputValue(consent.text, 'state') ?? '',
        action: 'cancel',
      });
      assert.equal(answer.status, 303);
      const back = await reader.browser.get(answer.location ?? '');
      assert.equal(back.status, 303);
      assert.equal(back.location, `${b.url}/articles/2`);
      assert.equal((await b.vendor.sessionView(reader.session)).wallet, null);
    });
  });
}
