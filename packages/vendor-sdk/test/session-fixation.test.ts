import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { b64uEncode, type ConnectionGrantResponse, PROBLEM_CONTENT_TYPE } from '@netpay/protocol';
import { hashToken } from '@netpay/service-kit';
import { createTestDatabase, testEngines } from '@netpay/service-kit/testing';
import express from 'express';
import { type ConnectionPort, Connections, safeReturnTo } from '../src/connection.ts';
import { createNetPayVendor, createSpendStore, netpayPayHandler } from '../src/index.ts';
import {
  readWalletSession,
  SECURE_WALLET_SESSION_COOKIE,
  ServerWallets,
  sessionHashOf,
  WALLET_SESSION_COOKIE,
  walletSessionFrom,
  walletTokenBox,
} from '../src/server-wallet.ts';
import { Browser } from './browser-client.ts';
import { Reader } from './connected-reader.ts';
import { startWorld, type TestVendor, type World } from './harness.ts';

const plainId = () => b64uEncode(randomBytes(32));

describe('return_to after dot segments', () => {
  it('never becomes a protocol-relative URL, and a second pass changes nothing', () => {
    for (const raw of ['/..//evil.example', '/.//evil.example/x', '/a/../..//evil.example', '/%2e%2e//evil.example']) {
      assert.equal(safeReturnTo(raw), '/', raw);
    }
    for (const raw of ['/..//evil.example', '/a/b/../c?x=1', '/%2e/%2e%2e//x', '/a//b', '/./', '/a/..%2f/evil']) {
      const once = safeReturnTo(raw);
      assert.ok(once.startsWith('/') && !once.startsWith('//') && !once.startsWith('/\\'), `${raw} → ${once}`);
      assert.equal(safeReturnTo(once), once, `idempotent for ${raw}`);
    }
    assert.equal(safeReturnTo('/a//b'), '/a//b', 'a double slash inside a local path stays local');
  });
});

describe('the session cookie', () => {
  it('refuses a name sent twice instead of taking the first', () => {
    const [one, two] = [plainId(), plainId()];
    const header = `${WALLET_SESSION_COOKIE}=${one}; x=1; ${WALLET_SESSION_COOKIE}=${two}`;
    assert.deepEqual(readWalletSession(header, false), { id: undefined, duplicated: true });
    assert.equal(walletSessionFrom(header), undefined);
    assert.equal(walletSessionFrom(`${WALLET_SESSION_COOKIE}=${one}`), one, 'one plain cookie on a plain-http site');
  });

  it('on https only the __Host- cookie counts, and its ids are never taken from the plain cookie', () => {
    const host = b64uEncode(randomBytes(48));
    assert.equal(walletSessionFrom(`${WALLET_SESSION_COOKIE}=${plainId()}`, true), undefined);
    assert.equal(walletSessionFrom(`${SECURE_WALLET_SESSION_COOKIE}=${host}`, true), host);
    // A caller that does not know the scheme prefers the __Host- cookie over a planted plain one.
    assert.equal(
      walletSessionFrom(`${WALLET_SESSION_COOKIE}=${plainId()}; ${SECURE_WALLET_SESSION_COOKIE}=${host}`),
      host,
    );
    // An https session id copied into the plain cookie (which a sibling subdomain can plant) opens nothing.
    assert.equal(walletSessionFrom(`${WALLET_SESSION_COOKIE}=${host}`), undefined);
    assert.equal(walletSessionFrom(`${SECURE_WALLET_SESSION_COOKIE}=${plainId()}`), undefined, 'plain-length id');
  });
});

/**
 * Connections of an https site over a broker that grants every code (the grant's checks are not what is tested
 * here), on a real SQLite spend store; `close` drops it.
 */
async function httpsSite() {
  const db = await createTestDatabase('sqlite');
  const store = await createSpendStore(db.url);
  const close = async () => {
    await store.close();
    await db.drop();
  };
  const chainId = b64uEncode(randomBytes(16));
  const grant = {
    chainId,
    touchstone: { chainId },
    holder: { chainId, epoch: 1 },
    previous: null,
    start: null,
    allowance: {
      index: 20,
      payword: b64uEncode(randomBytes(32)),
      expiresAt: new Date(Date.now() + 3600e3).toISOString(),
    },
    refreshToken: 'refresh-token-0123456789',
    balance: 480,
    limits: { autoPayMaxMinor: 25 },
  } as unknown as ConnectionGrantResponse;
  const port: ConnectionPort = {
    exchangeGrant: async () => grant,
    requestAllowance: async () => {
      throw new Error('not here');
    },
    adoptClaim: async () => undefined,
    checkAllowance: async () => undefined,
    wallets: new ServerWallets(store, walletTokenBox(randomBytes(32))),
    store,
    now: () => Date.now(),
    logWarn: () => {},
  };
  const connections = new Connections({
    vendorId: 'news',
    publicUrl: 'https://news.example',
    brokerUrl: 'https://broker.example',
    releaseUrl: 'https://news.example/netpay/release',
    secret: randomBytes(32),
    port,
  });
  return { connections, store, close };
}

/** The cookies a browser holds after a set of Set-Cookie lines (a Max-Age=0 line deletes). */
function keep(jar: Map<string, string>, lines: string[]): void {
  for (const line of lines) {
    const [name, value] = (line.split(';')[0] ?? '').split('=') as [string, string];
    if (/Max-Age=0/.test(line)) jar.delete(name);
    else jar.set(name, value);
  }
}
const header = (jar: Map<string, string>) => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');

describe('connect on an https site', () => {
  const closes: (() => Promise<void>)[] = [];
  after(async () => {
    for (const close of closes) await close();
  });

  it('keeps the session in a __Host- cookie, ignores a planted plain one and connects under a fresh id', async () => {
    const { connections, store, close } = await httpsSite();
    closes.push(close);
    const planted = plainId();
    const jar = new Map([[WALLET_SESSION_COOKIE, planted]]);
    const start = connections.connect({
      returnTo: '/articles/1',
      cookie: header(jar),
      request: { secFetchSite: 'same-origin' },
    });
    assert.equal(start.status, 303);
    const line = start.cookies.find((c) => c.startsWith(`${SECURE_WALLET_SESSION_COOKIE}=`));
    assert.ok(line, 'an https site sets the __Host- cookie');
    assert.match(line, /; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax; Secure$/);
    assert.doesNotMatch(line, /Domain/i);
    keep(jar, start.cookies);
    const before = jar.get(SECURE_WALLET_SESSION_COOKIE);
    const state = new URL(start.headers.location ?? '').searchParams.get('state');

    const done = await connections.callback({ query: { code: 'c0de', state }, cookie: header(jar) });
    assert.equal(done.status, 303, done.html);
    assert.equal(done.headers.location, '/articles/1');
    keep(jar, done.cookies);
    const fresh = jar.get(SECURE_WALLET_SESSION_COOKIE);
    assert.ok(fresh && fresh !== before, 'a new session id once a wallet is attached');
    assert.equal(jar.has(WALLET_SESSION_COOKIE), false, 'the plain cookie is dropped');
    assert.ok(await store.getServerWallet(sessionHashOf(fresh)), 'the wallet hangs on the new id');
    assert.equal(await store.getServerWallet(hashToken(planted)), undefined, 'and not on the planted one');

    // Reverse fixation: that id, planted in another browser as the plain cookie, opens nothing there.
    assert.equal(walletSessionFrom(`${WALLET_SESSION_COOKIE}=${fresh}`), undefined);
    assert.equal(walletSessionFrom(`${WALLET_SESSION_COOKIE}=${fresh}`, true), undefined);
  });

  it('refuses a browser that sends the session cookie twice', async () => {
    const { connections, close } = await httpsSite();
    closes.push(close);
    const cookie = `${SECURE_WALLET_SESSION_COOKIE}=${b64uEncode(randomBytes(48))}; ${SECURE_WALLET_SESSION_COOKIE}=${b64uEncode(randomBytes(48))}`;
    const start = connections.connect({ returnTo: '/articles/1', cookie, request: { secFetchSite: 'same-origin' } });
    assert.equal(start.status, 400);
    assert.equal(start.cookies.length, 0);
  });
});

async function lastIndexAt(vendor: TestVendor, chainId: string): Promise<number> {
  const loaded = await vendor.store.loadChain(chainId);
  return Math.max(0, ...(loaded?.epochs ?? []).map((e) => e.last?.index ?? 0));
}

for (const engine of testEngines()) {
  describe(`session fixation on ${engine}`, () => {
    let world: World;
    let a: TestVendor;
    before(async () => {
      world = await startWorld({ engine, broker: { allowanceMaxMinor: 100, connectionBlockMinor: 200 } });
      a = await world.addVendor(`fix-a-${engine}`, { prices: {} }); // every article 1c
    });
    after(async () => world?.close());

    it('a planted session id is replaced at connect: its planter spends nothing, the reader keeps the article', async () => {
      const victim = await Reader.open(world, 300);
      const planted = plainId();
      victim.browser.jar.set(WALLET_SESSION_COOKIE, planted);
      const connected = await victim.connect(a, '1');
      assert.equal(connected.read.status, 200, connected.read.page.text.slice(0, 300));
      assert.equal(connected.read.charged, true, 'the article connected for is paid on return, under the new id');
      assert.notEqual(victim.session, planted, 'a new id once the wallet is attached');
      assert.equal(await a.store.getServerWallet(hashToken(planted)), undefined);
      const wallet = await a.store.getServerWallet(hashToken(victim.session));
      assert.ok(wallet);
      assert.equal(await lastIndexAt(a, wallet.chainId), 1, 'paid once');

      const attacker = new Browser();
      attacker.jar.set(WALLET_SESSION_COOKIE, planted);
      const page = await attacker.get(`${a.url}/articles/42`, { site: 'none' });
      assert.equal(page.status, 402);
      assert.equal(await lastIndexAt(a, wallet.chainId), 1, 'the planter spent nothing');

      const again = await victim.read(a, '1');
      assert.equal(again.status, 200);
      assert.equal(again.charged, false, 'a re-read with the new id is free');
      assert.equal(await lastIndexAt(a, wallet.chainId), 1);
    });

    it('connecting again moves the wallet to a new id and forgets the old one', async () => {
      const reader = await Reader.open(world, 300);
      await reader.connect(a, '1');
      const first = reader.session;
      await reader.browser.follow(`${a.url}/netpay/connect?return_to=%2Farticles%2F2`, 8, {
        from: `${a.url}/articles/2`,
        user: true,
      });
      assert.notEqual(reader.session, first);
      assert.equal(await a.store.getServerWallet(hashToken(first)), undefined);
      assert.ok(await a.store.getServerWallet(hashToken(reader.session)));
    });

    it('what the browser bought before connecting again stays free to re-read under its new id', async () => {
      const reader = await Reader.open(world, 300);
      await reader.connect(a, '60');
      assert.equal((await reader.read(a, '61')).charged, true);
      await reader.revoke(a);
      assert.equal((await reader.read(a, '62')).reason, 'connection_revoked');
      const before = reader.session;
      const back = await reader.connect(a, '62'); // a new chain of a new connection, under a new id
      assert.equal(back.read.charged, true);
      assert.notEqual(reader.session, before);
      for (const id of ['60', '61']) {
        const again = await reader.read(a, id);
        assert.equal(again.status, 200);
        assert.equal(again.charged, false, `article ${id} was bought before: its re-read is free`);
      }
    });

    it('a request with the session cookie twice is not connected', async () => {
      const cookie = `${WALLET_SESSION_COOKIE}=${plainId()}; ${WALLET_SESSION_COOKIE}=${plainId()}`;
      const res = await fetch(`${a.url}/netpay/connect?return_to=%2Farticles%2F1`, {
        headers: { cookie, 'sec-fetch-site': 'same-origin' },
        redirect: 'manual',
      });
      assert.equal(res.status, 400);
      assert.match(await res.text(), /two NetPay sessions/);
    });

    it('the pay form answers a malformed or oversized body with a problem', async () => {
      const bad = await fetch(`${a.url}/netpay/pay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: a.url },
        body: '{not json',
      });
      assert.equal(bad.status, 400);
      assert.equal(bad.headers.get('content-type')?.split(';')[0], PROBLEM_CONTENT_TYPE);
      const problem = (await bad.json()) as Record<string, unknown>;
      assert.equal(problem.type, 'urn:netpay:error:bad_request');
      assert.equal(problem.status, 400);
      assert.equal(typeof problem.title, 'string');
      assert.equal(typeof problem.detail, 'string');
      assert.equal(problem.statusCode, undefined, 'not Fastify’s own error body');

      const big = await fetch(`${a.url}/netpay/pay`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: a.url },
        body: `csrf=${'x'.repeat(10_000)}`,
      });
      assert.equal(big.status, 413);
      assert.equal(big.headers.get('content-type')?.split(';')[0], PROBLEM_CONTENT_TYPE);
      const tooBig = (await big.json()) as Record<string, unknown>;
      assert.equal(tooBig.type, 'urn:netpay:error:payload_too_large');
      assert.equal(tooBig.status, 413);
      assert.equal(typeof tooBig.detail, 'string');
    });

    it('the Express pay handler answers an oversized body with a problem too', async () => {
      const identity = await world.registerVendorIdentity(`fix-express-${engine}`);
      const store = await createSpendStore(identity.storeUrl);
      const vendor = createNetPayVendor({
        vendorId: identity.id,
        brokerUrl: world.brokerUrl,
        apiKey: identity.apiKey,
        signingKey: identity.signingKey,
        releaseUrl: `${identity.url}/netpay/release`,
        store,
      });
      const app = express();
      app.post('/netpay/pay', netpayPayHandler(vendor));
      const server = app.listen(identity.port, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      try {
        const big = await fetch(`${identity.url}/netpay/pay`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: identity.url },
          body: `csrf=${'x'.repeat(10_000)}`,
        });
        assert.equal(big.status, 413);
        assert.equal(big.headers.get('content-type')?.split(';')[0], PROBLEM_CONTENT_TYPE);
        assert.equal(((await big.json()) as { type?: string }).type, 'urn:netpay:error:payload_too_large');
      } finally {
        await new Promise((r) => server.close(r));
        await vendor.close();
        await store.close();
      }
    });
  });
}
