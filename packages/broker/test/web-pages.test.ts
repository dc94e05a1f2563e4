import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { tempDir, testEngines } from '@netpay/service-kit/testing';
import { parseDollars } from '../src/web/buy-form.ts';
import { returnUnderSite } from '../src/web/connect-routes.ts';
import { html } from '@netpay/service-kit';
import { WebContext } from '../src/web/web-context.ts';
import type { BrokerDeps } from '../src/deps.ts';
import { type BankUnderTest, type BrokerUnderTest, call, startBank, startBroker } from './harness.ts';
import { csrfOf, inputValue, setCookieLine, WebClient } from './web-client.ts';

const PASSWORD = 'correct horse battery';
let seq = 0;
const newEmail = () => `web${++seq}-${Date.now()}@example.test`;

async function register(client: WebClient, email = newEmail()): Promise<string> {
  const form = await client.get('/register');
  assert.equal(form.status, 200);
  const res = await client.post('/register', { csrf: csrfOf(form.text), email, password: PASSWORD });
  assert.equal(res.status, 303, res.text);
  assert.equal(res.location, '/coins');
  return email;
}

function buyForm(page: string, fields: Partial<Record<string, string>> = {}): Record<string, string> {
  return {
    csrf: csrfOf(page),
    idem: inputValue(page, 'idem') ?? '',
    amount: '2.00',
    card_number: '4242 4242 4242 4242',
    card_expiry: '12/30',
    card_cvc: '123',
    ...fields,
  } as Record<string, string>;
}

describe('web page building blocks', () => {
  test('html escapes every interpolated value, nested templates pass through once', () => {
    const evil = `<script>alert("x")</script>' \``;
    assert.equal(
      html`<p title="${evil}">${evil}${html`<b>${'&'}</b>`}</p>`.text,
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; &#96;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; &#96;<b>&amp;</b></p>',
    );
    assert.equal(html`${[1, '<', null, undefined, false]}`.text, '1&lt;');
  });

  test('dollar amounts become minor units without floats', () => {
    const ok: Array<[string, number]> = [
      ['2.00', 200],
      ['2', 200],
      ['2.5', 250],
      ['0.01', 1],
      ['NZ$1.23', 123],
      ['$ 10', 1000],
    ];
    for (const [text, minor] of ok) assert.deepEqual(parseDollars(text), { ok: true, minor }, text);
    for (const text of ['', '0', '0.00', '2.005', '-1', '1e3', '1,50', '.5', '2.', 'abc', '12345678']) {
      assert.equal(parseDollars(text).ok, false, text);
    }
  });

  test('cookies are Secure when the broker is served over https', () => {
    for (const [publicUrl, secure] of [
      ['https://broker.example', true],
      ['http://127.0.0.1:4000', false],
    ] as const) {
      const ctx = new WebContext({ config: { publicUrl } } as BrokerDeps, Buffer.alloc(32));
      const set: Array<Record<string, unknown>> = [];
      const reply = { setCookie: (_n: string, _v: string, o: Record<string, unknown>) => set.push(o) };
      ctx.setCookie(reply as never, 'np_session', 'v', 60);
      assert.deepEqual(set[0], { path: '/', httpOnly: true, sameSite: 'lax', secure, maxAge: 60 });
    }
  });

  test('a return URL must stay under the vendor site', () => {
    const site = 'https://news.example/planet/';
    assert.ok(returnUnderSite(site, 'https://news.example/planet/netpay/callback?x=1#frag'));
    assert.equal(returnUnderSite(site, 'https://news.example/planet/cb#frag')?.hash, '');
    for (const bad of [
      'https://news.example/planetx/cb',
      'https://news.example/other',
      'http://news.example/planet/cb',
      'https://news.example.evil/planet/cb',
      'https://news.example:444/planet/cb',
      'https://a@news.example/planet/cb',
      'https://news.example/planet/../admin',
      'https://news.example/planet/%2e%2e/admin',
      'https://news.example/planet\\..\\admin',
      '//news.example/planet/cb',
      'javascript:alert(1)',
    ]) {
      assert.equal(returnUnderSite(site, bad), undefined, bad);
    }
  });
});

for (const engine of testEngines()) {
  describe(`web pages on ${engine}`, () => {
    let bank: BankUnderTest;
    let broker: BrokerUnderTest;
    const data = tempDir('netpay-web-');
    const tokenFile = join(data.path, 'operator-token');
    before(async () => {
      process.env.NETPAY_OPERATOR_TOKEN_FILE = tokenFile;
      bank = await startBank(engine);
      broker = await startBroker(engine, bank, { config: { loginFailures: { perAccountFromAddress: 3 } } });
    });
    after(async () => {
      await broker?.close();
      await bank?.close();
      data.remove();
    });

    test('home, register, wallet, logout and login; cookies are HttpOnly and SameSite=Lax; security headers', async () => {
      const client = new WebClient(broker.url);
      const home = await client.get('/');
      assert.equal(home.status, 200);
      assert.match(home.text, /<meta name="viewport"/);
      assert.match(home.text, /href="\/register"/);
      const csp = home.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|script-src/);
      assert.equal(home.headers.get('x-frame-options'), 'DENY');
      assert.equal(home.headers.get('referrer-policy'), 'no-referrer');
      const css = await client.get('/assets/netpay.css');
      assert.equal(css.status, 200);
      assert.match(css.headers.get('content-type') ?? '', /text\/css/);

      const form = await client.get('/register');
      const csrfCookie = setCookieLine(form, 'np_csrf') ?? '';
      assert.match(csrfCookie, /HttpOnly/i);
      assert.match(csrfCookie, /SameSite=Lax/i);
      assert.match(form.text, /<label for="email">/);
      assert.match(form.text, /<label for="password">/);
      const email = newEmail();
      const res = await client.post('/register', { csrf: csrfOf(form.text), email, password: PASSWORD });
      assert.equal(res.status, 303);
      const session = setCookieLine(res, 'np_session') ?? '';
      assert.match(session, /HttpOnly/i);
      assert.match(session, /SameSite=Lax/i);
      assert.match(session, /Path=\//);
      assert.doesNotMatch(session, /Secure/i, 'http broker: no Secure flag');
      const wallet = await client.get('/coins');
      assert.equal(wallet.status, 200);
      assert.ok(wallet.text.includes(email));
      assert.match(wallet.text, /NetPay balance/);
      assert.match(wallet.text, /Add money/);
      assert.equal(wallet.headers.get('cache-control'), 'no-store');

      const logout = await client.post('/logout', { csrf: csrfOf(wallet.text) });
      assert.equal(logout.status, 303);
      assert.equal(client.jar.has('np_session'), false, 'the session cookie is cleared');
      assert.equal((await client.get('/coins')).location, '/login');

      const login = await client.get('/login');
      const wrong = await client.post('/login', { csrf: csrfOf(login.text), email, password: 'not my password' });
      assert.equal(wrong.status, 401);
      assert.match(wrong.text, /id="password-error"[^>]*>Wrong email or password/);
      assert.equal(inputValue(wrong.text, 'email'), email, 'the email is kept');
      assert.doesNotMatch(wrong.text, /not my password/, 'the password is not echoed');
      const ok = await client.post('/login', { csrf: csrfOf(wrong.text), email, password: PASSWORD });
      assert.equal(ok.status, 303);
      assert.equal(ok.location, '/coins');
      assert.equal((await client.get('/coins')).status, 200);
    });

    test('register form errors sit next to their field and create nothing', async () => {
      const client = new WebClient(broker.url);
      const form = await client.get('/register');
      const before = await broker.counts();
      const bad = await client.post('/register', { csrf: csrfOf(form.text), email: 'nope', password: 'short' });
      assert.equal(bad.status, 422);
      assert.match(bad.text, /<input id="email"[^>]*aria-describedby="email-error"[^>]*aria-invalid="true"/);
      assert.match(bad.text, /id="password-error"/);
      assert.equal(inputValue(bad.text, 'email'), 'nope');
      assert.equal(inputValue(bad.text, 'password'), undefined, 'password fields are emptied');
      assert.deepEqual(await broker.counts(), before);
      const email = await register(new WebClient(broker.url));
      const taken = await client.post('/register', { csrf: csrfOf(bad.text), email, password: PASSWORD });
      assert.equal(taken.status, 409);
      assert.match(taken.text, /id="email-error"[^>]*>An account with this email already exists/);
    });

    test('adding 2.00 through the form raises the NetPay balance by 200; history shows it', async () => {
      const client = new WebClient(broker.url);
      await register(client);
      const wallet = await client.get('/coins');
      assert.match(wallet.text, /id="netpay-balance">NZ\$0\.00</);
      const before = await broker.counts();
      const res = await client.post('/top-ups', buyForm(wallet.text));
      assert.equal(res.status, 303, res.text);
      assert.match(res.location ?? '', /^\/coins\?added=tu_/);
      const after = await broker.counts();
      assert.equal(after.ledger_entries, (before.ledger_entries ?? 0) + 1, 'one top-up entry');
      assert.equal(after.chains, before.chains, 'no coin: money in the balance');
      const page = await client.get(res.location ?? '');
      assert.match(page.text, /NZ\$2\.00 added to your NetPay balance/);
      assert.match(page.text, /id="netpay-balance">NZ\$2\.00</);
      const history = await client.get('/history');
      assert.equal(history.status, 200);
      assert.match(history.text, /Added money \(card ending 4242\)/);
      assert.ok((await broker.audit()).ok);

      // Resubmitting the same form (same idempotency key) does not add twice.
      const again = await client.post('/top-ups', buyForm(wallet.text));
      assert.equal(again.status, 303);
      assert.equal(again.location, res.location);
      assert.equal((await broker.counts()).ledger_entries, after.ledger_entries);
    });

    test('bad add-money input is shown next to its field, the input kept, and nothing changes', async () => {
      const client = new WebClient(broker.url);
      await register(client);
      const wallet = await client.get('/coins');
      const before = await broker.counts();
      const bad = await client.post(
        '/top-ups',
        buyForm(wallet.text, {
          amount: '2.005',
          card_number: '4242 4242 4242 4241',
          card_expiry: '13/30',
          card_cvc: '1',
        }),
      );
      assert.equal(bad.status, 422);
      assert.match(
        bad.text,
        /<input id="amount"[^>]*aria-describedby="amount-hint amount-error"[^>]*aria-invalid="true"/,
      );
      assert.match(bad.text, /id="amount-error"/);
      assert.match(bad.text, /id="card-number-error"/);
      assert.match(bad.text, /id="card-expiry-error"/);
      assert.match(bad.text, /id="card-cvc-error"/);
      assert.equal(inputValue(bad.text, 'amount'), '2.005');
      assert.equal(inputValue(bad.text, 'card_cvc'), undefined, 'the CVC is not echoed');
      const declined = await client.post('/top-ups', buyForm(bad.text, { card_number: '4000 0000 0000 0002' }));
      assert.equal(declined.status, 402);
      assert.match(declined.text, /id="card-number-error"[^>]*>The bank declined this card/);
      const expired = await client.post('/top-ups', buyForm(declined.text, { card_expiry: '01/20' }));
      assert.equal(expired.status, 422);
      assert.match(expired.text, /id="card-expiry-error"[^>]*>This card has expired/);
      assert.deepEqual(await broker.counts(), before, 'no ledger entry');
    });

    test('a missing or wrong CSRF token is 403 and changes nothing', async () => {
      const client = new WebClient(broker.url);
      await register(client);
      const other = new WebClient(broker.url);
      await register(other);
      const wallet = await client.get('/coins');
      const before = await broker.counts();
      const { csrf: _drop, ...noCsrf } = buyForm(wallet.text);
      assert.equal((await client.post('/top-ups', noCsrf)).status, 403);
      const wrong = await client.post('/top-ups', buyForm(wallet.text, { csrf: 'x'.repeat(43) }));
      assert.equal(wrong.status, 403);
      assert.match(wrong.text, /Nothing was changed/);
      // Another session's token does not work here either.
      const otherToken = csrfOf((await other.get('/coins')).text);
      assert.equal((await client.post('/top-ups', buyForm(wallet.text, { csrf: otherToken }))).status, 403);
      assert.equal((await client.post('/logout', { csrf: 'nope' })).status, 403);
      assert.equal((await client.get('/coins')).status, 200, 'still logged in');
      // Logged-out forms: the double-submit token must match this browser's cookie.
      const stranger = new WebClient(broker.url);
      const form = await stranger.get('/register');
      const fresh = new WebClient(broker.url);
      const forged = await fresh.post('/register', { csrf: csrfOf(form.text), email: newEmail(), password: PASSWORD });
      assert.equal(forged.status, 403);
      const noToken = await stranger.post('/login', { email: newEmail(), password: PASSWORD });
      assert.equal(noToken.status, 403);
      assert.deepEqual(await broker.counts(), before);
    });

    test('login attempts are rate-limited per email: 429 with a message on the form', async () => {
      const client = new WebClient(broker.url);
      const email = await register(new WebClient(broker.url));
      let page = await client.get('/login');
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        page = await client.post('/login', { csrf: csrfOf(page.text), email, password: `wrong ${i}` });
        statuses.push(page.status);
      }
      assert.deepEqual(statuses, [401, 401, 401, 429]);
      assert.match(page.text, /role="alert"[\s\S]*Too many login attempts/);
      assert.ok(Number(page.headers.get('retry-after')) >= 1);
      const right = await client.post('/login', { csrf: csrfOf(page.text), email, password: PASSWORD });
      assert.equal(right.status, 429, 'even the right password waits');
      assert.equal(client.jar.has('np_session'), false);
    });

    test('the Refund button refunds the unspent coin of a wallet app to the card, saying how much', async () => {
      const client = new WebClient(broker.url);
      const email = await register(client);
      const session = await call(broker.api, 'POST', '/sessions', { body: { email, password: PASSWORD } });
      assert.equal((await broker.buyCoin(session.body.token, { amount: 150 })).status, 201);
      const page = await client.get('/coins');
      assert.match(page.text, /Coins \(for apps\)/);
      const action = /action="(\/coins\/[A-Za-z0-9_-]{22}\/refund)"/.exec(page.text)?.[1];
      assert.ok(action, 'a refund form for the coin');
      assert.match(page.text, /<button[^>]*aria-label="Refund the rest of coin/);
      const res = await client.post(action, { csrf: csrfOf(page.text) });
      assert.equal(res.status, 303, res.text);
      const after = await client.get(res.location ?? '');
      assert.match(after.text, /NZ\$1\.50 refunded to your card/);
      assert.match(after.text, /status-refunded/);
      const again = await client.post(action, { csrf: csrfOf(after.text) });
      assert.equal(again.status, 409);
      assert.match(again.text, /already refunded/);
      assert.match((await client.get('/history')).text, /NZ\$1\.50 refunded to your card/);
      assert.ok((await broker.audit()).ok);
    });

    test('the operator view needs the operator token and shows the audit', async () => {
      const client = new WebClient(broker.url);
      const closed = await client.get('/operator');
      assert.equal(closed.status, 303);
      assert.equal(closed.location, '/operator/login');
      const token = readFileSync(tokenFile, 'utf8').trim();
      assert.match(token, /^np_op_/);
      const form = await client.get('/operator/login');
      assert.match(form.text, /<label for="token">/);
      const wrong = await client.post('/operator/login', { csrf: csrfOf(form.text), token: 'np_op_guess' });
      assert.equal(wrong.status, 401);
      assert.equal((await client.get('/operator')).status, 303);
      // A customer session is not an operator session.
      const customer = new WebClient(broker.url);
      await register(customer);
      assert.equal((await customer.get('/operator')).status, 303);
      const ok = await client.post('/operator/login', { csrf: csrfOf(wrong.text), token });
      assert.equal(ok.status, 303);
      assert.match(setCookieLine(ok, 'np_operator') ?? '', /HttpOnly/i);
      const view = await client.get('/operator');
      assert.equal(view.status, 200);
      assert.match(view.text, /Audit OK/);
      assert.match(view.text, /Ledger totals/);
      assert.match(view.text, /Vendors/);
      assert.match(view.text, /<th scope="col" class="num">Fees<\/th>/, 'fees per vendor are shown');
      const out = await client.post('/operator/logout', { csrf: csrfOf(view.text) });
      assert.equal(out.status, 303);
      assert.equal((await client.get('/operator')).status, 303);
    });
  });
}
