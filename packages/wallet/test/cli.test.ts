import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runWallet } from '../src/index.ts';
import { type TestNet, startTestNet } from './helpers/test-net.ts';

let net: TestNet;
let dir: string;
before(async () => {
  net = await startTestNet();
  dir = await mkdtemp(join(tmpdir(), 'netpay-cli-'));
});
after(async () => {
  await net.close();
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[], env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const body: Uint8Array[] = [];
  const code = await runWallet(args, env, {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    writeBody: async (b) => {
      body.push(b);
    },
  });
  return { code, out, err, body: Buffer.concat(body).toString('utf8') };
}

test('help, usage errors and missing login', async () => {
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /netpay wallet/);
  assert.match(help.out, /get URL/);
  assert.equal((await run([])).code, 2);
  const file = join(dir, 'nologin.json');
  assert.equal((await run(['--file', file, 'frobnicate'])).code, 2);
  assert.equal((await run(['--file', file, 'buy'])).code, 2, '--amount is required');
  assert.equal((await run(['--file', file, 'buy', '--amount', '1.5'])).code, 2);
  assert.equal((await run(['--file', file, '--bogus'])).code, 2);
  const login = await run(['--file', file, 'login', '--broker', net.brokerUrl, '--email', 'a@b.co']);
  assert.equal(login.code, 2);
  assert.match(login.err, /NETPAY_PASSWORD/);
  const buy = await run(['--file', file, 'buy', '--amount', '10']);
  assert.equal(buy.code, 1);
  assert.match(buy.err, /no_broker|not_logged_in/);
  const json = await run(['--file', file, 'buy', '--amount', '10', '--json']);
  assert.equal(JSON.parse(json.err).error, 'no_broker');
});

test('register, buy, balance, get (body to stdout, payment to stderr), coins, history, refund', async () => {
  const file = join(dir, 'w.json');
  const f = ['--file', file];
  const reg = await run([...f, 'register', '--broker', net.brokerUrl, '--email', 'cli@example.com'], {
    NETPAY_PASSWORD: 'correct horse battery',
  });
  assert.equal(reg.code, 0, reg.err);
  assert.match(reg.out, /registered and logged in as cli@example\.com/);
  assert.equal((await stat(file)).mode & 0o777, 0o600);

  const buy = await run([...f, 'buy', '--amount', '100', '--json']);
  assert.equal(buy.code, 0, buy.err);
  const coin = JSON.parse(buy.out);
  assert.equal(coin.remainingMinor, 100);
  assert.equal(coin.seed, undefined, 'the seed is never printed');

  assert.equal((await run([...f, 'balance'])).out.trim(), 'NZD 1.00');

  const get = await run([...f, 'get', `${net.url}/v/daily-planet/articles/7`, '--max-price', '10']);
  assert.equal(get.code, 0, get.err);
  assert.equal(JSON.parse(get.body).resource, 'articles/7');
  assert.match(get.err, /paid NZD 0\.05 to daily-planet .* index 5, NZD 0\.95 left/);

  const getJson = await run([...f, 'get', `${net.url}/v/the-bugle/articles/8`, '--json']);
  assert.equal(getJson.code, 0);
  const info = JSON.parse(getJson.err);
  assert.equal(info.status, 200);
  assert.deepEqual(
    info.payments.map((p: { index: number; status: string }) => [p.index, p.status]),
    [[8, 'paid']],
  );

  const tooDear = await run([...f, 'get', `${net.url}/v/daily-planet/articles/9`, '--max-price', '2']);
  assert.equal(tooDear.code, 1);
  assert.match(tooDear.err, /price_too_high/);
  const overBudget = await run([...f, 'get', `${net.url}/v/daily-planet/articles/9`, '--budget', '4', '--json']);
  assert.equal(JSON.parse(overBudget.err).error, 'budget_exceeded');

  const free = await run([...f, 'get', `${net.url}/free`]);
  assert.equal(free.code, 0);
  assert.equal(free.err, '');
  const other = await run([...f, 'get', `${net.url}/other-402`]);
  assert.equal(other.code, 1);
  assert.equal(other.body, 'pay some other way');

  const coins = await run([...f, 'coins']);
  assert.match(coins.out, new RegExp(`${coin.chainId}\\s+active\\s+NZD 0\\.92 left of NZD 1\\.00`));
  const history = await run([...f, 'history', '--json']);
  assert.deepEqual(
    JSON.parse(history.out).map((e: { kind: string }) => e.kind),
    ['purchase', 'payment', 'payment'],
  );
  assert.match((await run([...f, 'history'])).out, /paid\s+NZD 0\.03\s+to the-bugle/);

  const refund = await run([...f, 'refund', coin.chainId]);
  assert.equal(refund.code, 0, refund.err);
  assert.match(refund.out, /refunded NZD 0\.92 of chain/);
  assert.match((await run([...f, 'balance'])).out, /no coins/);

  const again = await run([...f, 'refund', coin.chainId]);
  assert.equal(again.code, 1);
  assert.match(again.err, /not_refundable/);

  assert.equal((await run([...f, 'logout'])).code, 0);
  assert.match((await run([...f, 'buy', '--amount', '5'])).err, /not_logged_in/);
  const login = await run([
    ...f,
    'login',
    '--broker',
    net.brokerUrl,
    '--email',
    'cli@example.com',
    '--password',
    'correct horse battery',
  ]);
  assert.equal(login.code, 0);
});

test('the wallet file defaults to $NETPAY_WALLET_FILE', async () => {
  const file = join(dir, 'env.json');
  const res = await run(['register', '--broker', net.brokerUrl, '--email', 'env@example.com'], {
    NETPAY_PASSWORD: 'correct horse battery',
    NETPAY_WALLET_FILE: file,
  });
  assert.equal(res.code, 0, res.err);
  assert.ok((await stat(file)).isFile());
});
