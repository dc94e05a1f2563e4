import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  checkWire,
  ConnectionGrantResponseSchema,
  findKey,
  verifyHolderCertificate,
  verifyPaywordB64,
  verifyTouchstone,
} from '@netpay/protocol';
import { ManualClock } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { type BrokerUnderTest, brokerSuite, call, type TestVendor } from './harness.ts';
import { csrfOf, inputValue, WebClient } from './web-client.ts';

const PASSWORD = 'correct horse battery';
let seq = 0;

async function loggedIn(broker: BrokerUnderTest): Promise<WebClient> {
  const client = new WebClient(broker.url);
  const form = await client.get('/register');
  const res = await client.post('/register', {
    csrf: csrfOf(form.text),
    email: `connect${++seq}-${Date.now()}@example.test`,
    password: PASSWORD,
  });
  assert.equal(res.status, 303, res.text);
  return client;
}

function connectPath(vendorId: string, returnUrl: string, state: string): string {
  return `/connect?${new URLSearchParams({ vendor: vendorId, return: returnUrl, state })}`;
}

/** The consent form's fields: connect, adding NZ$2.00 by card (the balance of a new customer is empty). */
function consentForm(page: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    csrf: csrfOf(page),
    vendor: inputValue(page, 'vendor') ?? '',
    return: inputValue(page, 'return') ?? '',
    state: inputValue(page, 'state') ?? '',
    idem: inputValue(page, 'idem') ?? '',
    pay_with: 'card',
    amount: '2.00',
    card_number: '4242 4242 4242 4242',
    card_expiry: '12/30',
    card_cvc: '123',
    action: 'connect',
    ...extra,
  };
}

for (const engine of testEngines()) {
  describe(`connect and connection grants on ${engine}`, () => {
    let planet: TestVendor;
    let bugle: TestVendor;
    const clock = new ManualClock(new Date());
    const site = (v: TestVendor) => `http://127.0.0.1:9/${v.id}/`;
    const callback = (v: TestVendor) => `${site(v)}netpay/connected?from=paywall`;

    const suite = brokerSuite(engine, { broker: { clock } });
    before(async () => {
      planet = await suite.broker.addVendor('daily-planet');
      bugle = await suite.broker.addVendor('the-bugle');
    });

    const exchange = (code: string, vendor?: TestVendor) =>
      call(
        suite.broker.api,
        'POST',
        `/wallet-grants/${encodeURIComponent(code)}`,
        vendor ? { token: vendor.apiKey } : {},
      );

    /** Connect a site: the consent page (adding NZ$2.00) the first time, no page after; the code from the redirect. */
    async function connectNew(client: WebClient, vendor: TestVendor, state = 'st-1'): Promise<string> {
      const consent = await client.get(connectPath(vendor.id, callback(vendor), state));
      if (consent.status === 303) return new URL(consent.location ?? '').searchParams.get('code') ?? '';
      assert.equal(consent.status, 200, consent.text);
      const res = await client.post('/connect', consentForm(consent.text));
      assert.equal(res.status, 303, res.text);
      const location = new URL(res.location ?? '');
      assert.equal(location.searchParams.get('state'), state);
      return location.searchParams.get('code') ?? '';
    }

    test('a return URL outside the vendor site, an unknown vendor or a missing state: error page, never a redirect', async () => {
      const client = await loggedIn(suite.broker);
      const bad: Array<[string, string, string]> = [
        [planet.id, 'http://evil.example/daily-planet/cb', 's'],
        [planet.id, 'http://127.0.0.1:9/the-bugle/cb', 's'],
        [planet.id, 'http://127.0.0.1:9/daily-planetx/cb', 's'],
        [planet.id, 'http://127.0.0.1:9/daily-planet/../admin', 's'],
        [planet.id, 'http://127.0.0.1:9/daily-planet/%2e%2e/admin', 's'],
        [planet.id, 'http://user:pw@127.0.0.1:9/daily-planet/cb', 's'],
        [planet.id, 'https://127.0.0.1:9/daily-planet/cb', 's'],
        [planet.id, '/daily-planet/cb', 's'],
        [planet.id, 'javascript:alert(1)//127.0.0.1:9/daily-planet/', 's'],
        [planet.id, callback(planet), ''],
        ['no-such-vendor', callback(planet), 's'],
        ['broker', `${suite.broker.url}/`, 's'],
      ];
      for (const [vendor, ret, state] of bad) {
        for (const who of [client, new WebClient(suite.broker.url)]) {
          const res = await who.get(connectPath(vendor, ret, state));
          assert.equal(res.status, 400, `${vendor} ${ret} ${state}`);
          assert.equal(res.location, null);
          assert.match(res.text, /not valid/);
        }
      }
      const page = await client.get(connectPath(planet.id, callback(planet), 's'));
      const forged = await client.post('/connect', {
        ...consentForm(page.text),
        return: 'http://evil.example/daily-planet/cb',
      });
      assert.equal(forged.status, 400);
      assert.equal(forged.location, null);
    });

    test('logged out: log in, consent (adding money on the page), redirect with a code; the grant hands over a claimed chain and an allowance, never a seed', async () => {
      const email = `flow-${Date.now()}@example.test`;
      await call(suite.broker.api, 'POST', '/customers', { body: { email, password: PASSWORD } });
      const client = new WebClient(suite.broker.url);
      const start = await client.get(connectPath(planet.id, callback(planet), 'nonce-42'));
      assert.equal(start.status, 200);
      assert.equal(start.headers.get('referrer-policy'), 'no-referrer');
      assert.match(start.text, /Log in<\/strong>|Log in to let/);
      assert.equal(inputValue(start.text, 'return'), callback(planet));
      const login = await client.post('/login', {
        csrf: csrfOf(start.text),
        email,
        password: PASSWORD,
        vendor: inputValue(start.text, 'vendor') ?? '',
        return: inputValue(start.text, 'return') ?? '',
        state: inputValue(start.text, 'state') ?? '',
      });
      assert.equal(login.status, 303);
      assert.ok(login.location?.startsWith('/connect?'), `back to connect, got ${login.location}`);
      const consent = await client.get(login.location ?? '');
      assert.equal(consent.status, 200);
      assert.match(consent.text, /<h1>Connect Vendor daily-planet to your NetPay balance<\/h1>/);
      assert.match(consent.headers.get('content-security-policy') ?? '', /form-action 'self' http:\/\/127\.0\.0\.1:9/);
      assert.match(consent.text, /Add money first/, 'an empty balance: money is added on the same page');
      assert.match(consent.text, /<label for="amount">/);
      assert.match(consent.text, /<button type="submit" name="action" value="connect">Connect<\/button>/);
      assert.doesNotMatch(consent.text, /name="coin"/, 'no coin to pick');

      const empty = await client.post('/connect', consentForm(consent.text, { amount: '' }));
      assert.equal(empty.status, 422, 'an empty balance cannot be connected');
      assert.match(empty.text, /id="amount-error"[^>]*>Your balance is empty/);

      const res = await client.post('/connect', consentForm(consent.text));
      assert.equal(res.status, 303, res.text);
      const location = new URL(res.location ?? '');
      assert.equal(`${location.origin}${location.pathname}`, 'http://127.0.0.1:9/daily-planet/netpay/connected');
      assert.equal(location.searchParams.get('from'), 'paywall', 'the vendor’s own query is kept');
      assert.equal(location.searchParams.get('state'), 'nonce-42');
      const code = location.searchParams.get('code') ?? '';
      assert.match(code, /^np_wg_/);

      const grant = await exchange(code, planet);
      assert.equal(grant.status, 200, grant.text);
      assert.ok(checkWire(ConnectionGrantResponseSchema, grant.body), grant.text);
      assert.deepEqual(Object.keys(grant.body).sort(), [
        'allowance',
        'balance',
        'chainId',
        'holder',
        'limits',
        'previous',
        'refreshToken',
        'start',
        'touchstone',
      ]);
      assert.ok(!grant.text.includes(email), 'nothing identifies the customer');
      const { chainId, touchstone, holder, allowance } = grant.body;
      assert.equal(touchstone.length, 200, 'a chain funded from the NZ$2.00 balance');
      assert.ok(verifyPaywordB64({ chainId, known: { index: 0, payword: touchstone.anchor }, presented: allowance }));
      assert.equal(allowance.index, 50);
      assert.equal(grant.body.balance, 150);
      assert.equal(holder.vendorId, planet.id);
      assert.equal(holder.epoch, 1);
      assert.equal(grant.body.previous, null);
      assert.equal(grant.body.start, null);
      const discovery = await call(suite.broker.url, 'GET', '/.well-known/netpay');
      const key = findKey(discovery.body.keys, touchstone.keyId);
      assert.ok(key);
      assert.ok(verifyTouchstone(touchstone, key));
      assert.ok(verifyHolderCertificate(holder, findKey(discovery.body.keys, holder.keyId) ?? new Uint8Array()));
      // Exactly what the vendor's own claim answers (the current holder's claim is idempotent).
      const claim = await call(suite.broker.api, 'POST', `/chains/${chainId}/claim`, { token: planet.apiKey });
      assert.equal(claim.status, 200);
      assert.deepEqual(claim.body.holder, holder);
      assert.deepEqual(claim.body.touchstone, touchstone);
      // No other site can take the connection's chain.
      const foreign = await call(suite.broker.api, 'POST', `/chains/${chainId}/claim`, {
        token: bugle.apiKey,
        body: { proof: { index: 1, payword: allowance.payword } },
      });
      assert.equal(foreign.status, 403);

      const reuse = await exchange(code, planet);
      assert.equal(reuse.status, 400);
      assert.equal(reuse.body.code, 'grant_invalid');
      assert.equal(reuse.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.ok((await suite.broker.audit()).ok);
    });

    test('a code for another vendor, an expired, unknown or malformed code is grant_invalid; no key is 401', async () => {
      const client = await loggedIn(suite.broker);
      const code = await connectNew(client, planet);
      const wrong = await exchange(code, bugle);
      assert.equal(wrong.status, 400);
      assert.equal(wrong.body.code, 'grant_invalid');
      assert.equal((await exchange(code)).status, 401);
      assert.equal((await exchange(code, planet)).status, 200, 'a refused attempt did not burn the code');

      const late = await connectNew(client, planet, 'st-late');
      clock.advance(61_000);
      const expired = await exchange(late, planet);
      assert.equal(expired.status, 400);
      assert.equal(expired.body.code, 'grant_invalid');

      assert.equal((await exchange(`np_wg_${'A'.repeat(43)}`, planet)).body.code, 'grant_invalid');
      assert.equal((await exchange('garbage', planet)).body.code, 'grant_invalid');
    });

    test('concurrent exchanges of one code: exactly one wins', async () => {
      const client = await loggedIn(suite.broker);
      const code = await connectNew(client, planet);
      const results = await Promise.all(Array.from({ length: 6 }, () => exchange(code, planet)));
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, 400, 400, 400, 400, 400]);
    });

    test('a further site connects with no page; asking before each site brings the page back; the same site again keeps its chain', async () => {
      const client = await loggedIn(suite.broker);
      const first = await exchange(await connectNew(client, planet, 'first'), planet);
      assert.equal(first.status, 200, first.text);

      const next = await client.get(connectPath(bugle.id, callback(bugle), 'second'));
      assert.equal(next.status, 303, 'no page for a further site');
      const second = await exchange(new URL(next.location ?? '').searchParams.get('code') ?? '', bugle);
      assert.equal(second.status, 200, second.text);
      assert.notEqual(second.body.chainId, first.body.chainId, 'each site its own chain');
      assert.equal(second.body.balance, 100);

      // The same site again (a new browser session there): the same chain and allowance, a new refresh token.
      const again = await client.get(connectPath(planet.id, callback(planet), 'again'));
      const third = await exchange(new URL(again.location ?? '').searchParams.get('code') ?? '', planet);
      assert.equal(third.body.chainId, first.body.chainId);
      assert.deepEqual(third.body.allowance, first.body.allowance);
      assert.notEqual(third.body.refreshToken, first.body.refreshToken);
      const old = await call(suite.broker.api, 'POST', '/allowances', {
        token: planet.apiKey,
        body: {
          refreshToken: first.body.refreshToken,
          chainId: first.body.chainId,
          epoch: 1,
          spent: { index: 0, payword: first.body.touchstone.anchor },
        },
      });
      // The first grant's session may be another device of the customer's: its token keeps working (a connection
      // keeps its ten newest; connections.test.ts retires the eleventh).
      assert.equal(old.status, 200, old.text);
      assert.equal(old.body.chainId, first.body.chainId);

      const sites = await client.get('/sites');
      const ask = await client.post('/sites/settings', {
        csrf: csrfOf(sites.text),
        auto_pay: '0.10',
        daily_cap: '2.00',
        ask_each_site: 'on',
      });
      assert.equal(ask.status, 303);
      const page = await client.get(connectPath(bugle.id, callback(bugle), 'asked'));
      assert.equal(page.status, 200, 'the customer asked to be asked');
      assert.doesNotMatch(page.text, /Add money first/, 'the balance is not empty');
      assert.ok((await suite.broker.audit()).ok);
    });

    test('Cancel goes back with error=access_denied; a bad CSRF token is 403 and issues nothing', async () => {
      const client = await loggedIn(suite.broker);
      const consent = await client.get(connectPath(planet.id, callback(planet), 'cancel-me'));
      const grantsBefore = await grantCount(suite.broker);
      const forged = await client.post('/connect', { ...consentForm(consent.text), csrf: 'forged' });
      assert.equal(forged.status, 403);
      assert.equal(forged.location, null);
      assert.equal(await grantCount(suite.broker), grantsBefore);
      const cancel = await client.post('/connect', { ...consentForm(consent.text), action: 'cancel' });
      assert.equal(cancel.status, 303);
      const location = new URL(cancel.location ?? '');
      assert.equal(location.searchParams.get('error'), 'access_denied');
      assert.equal(location.searchParams.get('state'), 'cancel-me');
      assert.equal(location.searchParams.get('code'), null);
      assert.equal(await grantCount(suite.broker), grantsBefore);
    });
  });
}

async function grantCount(broker: BrokerUnderTest): Promise<number> {
  // biome-ignore lint/suspicious/noExplicitAny: wallet_grants is the web module's table, not in BrokerSchema
  const db = broker.database.db as any;
  const row = await db
    .selectFrom('wallet_grants')
    .select((eb: { fn: { countAll: () => { as: (n: string) => unknown } } }) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
