import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { describe, test } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { CookieJar } from '@netpay/test-kit/cookie-jar';
import {
  addressKey,
  DEFAULT_LOGIN_FAILURE_LIMITS,
  type LoginFailureLimits,
  loginRefusal,
} from '../src/login-throttle.ts';
import { brokerSuite } from './harness.ts';
import { csrfOf } from './web-client.ts';

const PASSWORD = 'correct horse battery';
let seq = 0;
const newEmail = (who: string) => `${who}${++seq}-${Date.now()}@example.test`;

interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * One client machine: every request leaves from its own loopback address (the broker does not trust proxy
 * headers, so the socket's address is what it counts), with a cookie jar for the web form's CSRF cookie.
 */
class Client {
  readonly jar = new CookieJar();
  constructor(
    readonly base: string,
    readonly address: string,
  ) {}

  send(method: string, path: string, body?: { json?: unknown; form?: Record<string, string> }): Promise<HttpReply> {
    const url = new URL(this.base + path);
    const headers: Record<string, string> = { accept: body?.json === undefined ? 'text/html' : 'application/json' };
    let payload: string | undefined;
    if (body?.json !== undefined) {
      payload = JSON.stringify(body.json);
      headers['content-type'] = 'application/json';
    } else if (body?.form) {
      payload = new URLSearchParams(body.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    if (this.jar.size > 0) headers.cookie = this.jar.header();
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: url.hostname, port: url.port, path: url.pathname, method, headers, localAddress: this.address },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            this.jar.store(res.headers['set-cookie'] ?? []);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** POST /api/v1/sessions. */
  apiLogin(email: string, password: string): Promise<HttpReply> {
    return this.send('POST', '/api/v1/sessions', { json: { email, password } });
  }

  /** The login form as a browser submits it: GET /login for the CSRF token, then POST /login. */
  async webLogin(email: string, password: string): Promise<HttpReply> {
    const form = await this.send('GET', '/login');
    assert.equal(form.status, 200);
    return this.send('POST', '/login', { form: { csrf: csrfOf(form.text), email, password } });
  }

  async register(email: string): Promise<void> {
    const r = await this.send('POST', '/api/v1/customers', { json: { email, password: PASSWORD } });
    assert.equal(r.status, 201, r.text);
  }
}

function json(reply: HttpReply): { code?: string; token?: string; retryAfter?: number } {
  return JSON.parse(reply.text);
}

function assertRefused(reply: HttpReply, what: string): void {
  assert.equal(reply.status, 429, `${what}: ${reply.status} ${reply.text.slice(0, 200)}`);
  assert.ok(Number(reply.headers['retry-after']) >= 1, `${what}: Retry-After`);
}

describe('login failure rule (pure)', () => {
  const limits: LoginFailureLimits = { windowSeconds: 900, perAddress: 30, perAccountFromAddress: 10, perAccount: 100 };
  test('an address with no failures of its own is refused only past the distributed ceiling', () => {
    assert.equal(loginRefusal({ fromAddress: 0, onAccountFromAddress: 0, onAccount: 99 }, limits), undefined);
    assert.equal(loginRefusal({ fromAddress: 0, onAccountFromAddress: 0, onAccount: 100 }, limits), 'account');
  });
  test('per address and per account from that address', () => {
    assert.equal(loginRefusal({ fromAddress: 9, onAccountFromAddress: 9, onAccount: 9 }, limits), undefined);
    assert.equal(
      loginRefusal({ fromAddress: 10, onAccountFromAddress: 10, onAccount: 10 }, limits),
      'account_from_address',
    );
    assert.equal(loginRefusal({ fromAddress: 30, onAccountFromAddress: 0, onAccount: 0 }, limits), 'address');
  });
  test('the default ceiling is out of reach of one address', () => {
    const d = DEFAULT_LOGIN_FAILURE_LIMITS;
    assert.ok(d.perAccount >= 10 * d.perAddress);
    assert.ok(d.perAccountFromAddress <= d.perAddress);
  });
  test('IPv6 addresses are counted per /64, IPv4-mapped ones as IPv4', () => {
    assert.equal(addressKey('127.0.0.1'), '127.0.0.1');
    assert.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(addressKey('2001:db8:0:1:aaaa::1'), '2001:db8:0:1::/64');
    assert.equal(addressKey('2001:db8:0:1:bbbb:cccc:dddd:eeee'), '2001:db8:0:1::/64');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  });
});

for (const [n, engine] of testEngines().entries()) {
  describe(`login throttling over HTTP on ${engine}`, () => {
    // The ceiling is lowered so a test can reach it from three addresses; the rest are the defaults.
    const suite = brokerSuite(engine, { broker: { config: { loginFailures: { perAccount: 25 } } } });
    // Each test uses its own source addresses, 127.<engine>.<test>.<host>, so no test sees another's failures.
    const from = (testNo: number, host: number) => new Client(suite.broker.url, `127.${10 + n}.${testNo}.${host}`);

    test('an attacker guessing from one address does not lock out the owner, on the web form or the API', async () => {
      const victim = newEmail('victim');
      await from(1, 9).register(victim);
      const attacker = from(1, 1);
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) {
        const r =
          i % 2 === 0 ? await attacker.apiLogin(victim, `guess ${i}`) : await attacker.webLogin(victim, `guess ${i}`);
        statuses.push(r.status);
      }
      assert.ok(statuses.includes(429), `the attacker is refused at some point: ${statuses}`);
      const owner = from(1, 2);
      const api = await owner.apiLogin(victim, PASSWORD);
      assert.equal(api.status, 200, api.text);
      assert.match(json(api).token ?? '', /^np_st_/);
      const web = await owner.webLogin(victim, PASSWORD);
      assert.equal(web.status, 303, web.text.slice(0, 300));
      assert.equal(web.headers.location, '/coins');
      assert.ok(owner.jar.has('np_session'), 'the owner has a session cookie');
    });

    test('failures are counted once across the web form and the API', async () => {
      const victim = newEmail('split');
      await from(2, 9).register(victim);
      const attacker = from(2, 1);
      for (let i = 0; i < 5; i++) {
        assert.equal((await attacker.webLogin(victim, `web guess ${i}`)).status, 401);
        const api = await attacker.apiLogin(victim, `api guess ${i}`);
        assert.equal(api.status, 401);
        assert.equal(json(api).code, 'invalid_credentials');
      }
      const eleventhApi = await attacker.apiLogin(victim, 'api guess 11');
      assertRefused(eleventhApi, 'the 11th guess on the API');
      assert.equal(json(eleventhApi).code, 'rate_limited');
      const eleventhWeb = await attacker.webLogin(victim, 'web guess 11');
      assertRefused(eleventhWeb, 'the 11th guess on the web form');
      assert.match(eleventhWeb.text, /role="alert"[\s\S]*Too many login attempts/);
    });

    test('the guessing address is refused even with the right password; a fresh address is not', async () => {
      const victim = newEmail('right');
      await from(3, 9).register(victim);
      const attacker = from(3, 1);
      for (let i = 0; i < 10; i++) assert.equal((await attacker.apiLogin(victim, `guess ${i}`)).status, 401);
      assertRefused(await attacker.apiLogin(victim, PASSWORD), 'the right password from the guessing address (API)');
      const web = await attacker.webLogin(victim, PASSWORD);
      assertRefused(web, 'the right password from the guessing address (web)');
      assert.equal(attacker.jar.has('np_session'), false);
      assert.equal((await from(3, 2).apiLogin(victim, PASSWORD)).status, 200);
      assert.equal((await from(3, 3).webLogin(victim, PASSWORD)).status, 303);
      // The owner's success elsewhere does not clear the attacker's record.
      assertRefused(await attacker.apiLogin(victim, 'guess 10'), 'the attacker after the owner logged in');
    });

    test('one address spraying guesses over many accounts is refused, and only that address', async () => {
      const sprayer = from(4, 1);
      const accounts: string[] = [];
      for (let i = 0; i < 31; i++) accounts.push(newEmail('spray'));
      await from(4, 9).register(accounts[30] as string);
      const statuses: number[] = [];
      for (const email of accounts.slice(0, 30)) statuses.push((await sprayer.apiLogin(email, 'Summer2024!')).status);
      assert.deepEqual(new Set(statuses), new Set([401]), 'unknown emails count as failures like wrong passwords');
      assertRefused(await sprayer.apiLogin(accounts[30] as string, PASSWORD), 'the 31st failure-free account');
      assertRefused(await sprayer.webLogin(accounts[30] as string, PASSWORD), 'the same on the web form');
      assert.equal((await from(4, 2).apiLogin(accounts[30] as string, PASSWORD)).status, 200);
    });

    test('concurrent guesses from one address cannot overrun the budget', async () => {
      const victim = newEmail('burst');
      await from(5, 9).register(victim);
      const attacker = from(5, 1);
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) => attacker.apiLogin(victim, `burst guess ${i}`)),
      );
      const checked = replies.filter((r) => r.status === 401).length;
      assert.ok(checked <= 10, `at most 10 of 20 concurrent guesses were checked, got ${checked}`);
      assert.equal(replies.filter((r) => r.status !== 401 && r.status !== 429).length, 0);
    });

    test("the owner's own typos are forgotten once the right password is given", async () => {
      const owner = newEmail('typo');
      await from(6, 9).register(owner);
      const laptop = from(6, 1);
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 9; i++) assert.equal((await laptop.apiLogin(owner, `typo ${i}`)).status, 401);
        // A new browser on the same machine: the previous round's session cookie would skip the form.
        assert.equal((await from(6, 1).webLogin(owner, PASSWORD)).status, 303, `round ${round}`);
      }
    });

    test('a distributed attack past the per-account ceiling refuses everyone for that account', async () => {
      const victim = newEmail('ceiling');
      await from(7, 9).register(victim);
      for (let host = 1; host <= 3; host++) {
        for (let i = 0; i < 10; i++) await from(7, host).apiLogin(victim, `guess ${host}.${i}`);
      }
      assertRefused(await from(7, 4).apiLogin(victim, PASSWORD), 'a clean address past the ceiling');
      const other = newEmail('bystander');
      await from(7, 9).register(other);
      assert.equal((await from(7, 4).apiLogin(other, PASSWORD)).status, 200, 'other accounts are unaffected');
    });
  });
}
