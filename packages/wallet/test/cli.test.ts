import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { runWallet } from '../src/index.ts';
import { type TestNet, startTestNet } from './helpers/test-net.ts';

const BIN = fileURLToPath(new URL('../../cli/bin/netpay.mjs', import.meta.url));

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

test("a chain id that starts with '-' is an argument, not an option (one id in 32 does)", async () => {
  const file = join(dir, 'dash-id.json');
  const id = '-Rk3nXq0b9Zt4Yv1Wc8uPa';
  // No broker yet: reaching the wallet's refund (code 1, no_broker) shows the id was taken as the chain id.
  for (const args of [
    ['refund', id],
    [id, 'refund'],
    ['refund', '--', id],
    ['refund', id, '--json'],
  ]) {
    const result = await run(['--file', file, ...args]);
    assert.equal(result.code, 1, `${args.join(' ')}: ${result.err}`);
    assert.match(result.err, /no_broker/);
  }
  assert.equal((await run(['--file', file, 'refund', '-x'])).code, 2, 'a short unknown option is still one');
  assert.match((await run(['--file', file, 'refund', '--bogus'])).err, /unknown option --bogus/);
  const two = await run(['--file', file, 'refund', id, `${id.slice(0, -1)}b`]);
  assert.equal(two.code, 2);
  assert.match(two.err, /unexpected argument/);
  // After an option that takes a value it stays with that option (Node's parser then asks for --broker=VALUE).
  assert.match((await run(['--file', file, 'refund', 'abc', '--broker', id])).err, /--broker needs a value/);
});

/** Each subcommand and what its help must name. */
const SUBCOMMANDS: Record<string, string[]> = {
  register: ['--broker URL', '--email E', '--password P', 'NETPAY_PASSWORD'],
  login: ['--broker URL', '--email E', '--password P', 'NETPAY_PASSWORD'],
  logout: [],
  buy: ['--amount CENTS', '--unit CENTS', '--card N', '--expiry MM/YY', '--cvc C', 'NZ$2.00'],
  balance: [],
  coins: [],
  history: [],
  sync: [],
  refund: ['CHAIN_ID'],
  get: ['URL', '--max-price CENTS', '--budget CENTS'],
};

test('--help on every subcommand exits 0 and names its options; netpay wallet --help lists them all', async () => {
  const main = await run(['--help']);
  assert.equal(main.code, 0);
  for (const name of Object.keys(SUBCOMMANDS)) assert.match(main.out, new RegExp(`^  ${name} `, 'm'), name);
  for (const [name, options] of Object.entries(SUBCOMMANDS)) {
    const help = await run([name, '--help']);
    assert.equal(help.code, 0, name);
    assert.equal(help.err, '');
    assert.match(help.out, new RegExp(`^netpay wallet ${name}: `));
    assert.match(help.out, new RegExp(`^Usage: netpay wallet \\[--file PATH\\] ${name}\\b`, 'm'));
    for (const option of [...options, '--file PATH', '--json'])
      assert.ok(help.out.includes(option), `${name}: ${option}`);
    assert.equal((await run(['help', name])).out, help.out, `netpay wallet help ${name}`);
    assert.equal((await run([name, '-h'])).code, 0);
  }
  // An option of another command is named as such, not ignored.
  const stray = await run(['balance', '--amount', '5']);
  assert.equal(stray.code, 2);
  assert.equal(stray.err, 'netpay wallet: balance takes no --amount (see netpay wallet balance --help)\n');
});

test('a bad --amount is one line in words with exit code 2 and no stack trace, in the real command too', async () => {
  const file = join(dir, 'bad-amount.json');
  for (const [amount, words] of [
    ['1.5', "--amount must be a whole number of cents, e.g. 200 for NZ$2.00 (got '1.5')"],
    ['two', "--amount must be a whole number of cents, e.g. 200 for NZ$2.00 (got 'two')"],
    ['0', '--amount must be at least 1 cent (NZ$0.01)'],
  ] as const) {
    const bad = await run(['--file', file, 'buy', '--amount', amount]);
    assert.equal(bad.code, 2);
    assert.equal(bad.out, '');
    assert.equal(bad.err, `netpay wallet: ${words} (see netpay wallet buy --help)\n`);
  }
  const price = await run(['--file', file, 'get', 'http://127.0.0.1:1/a', '--max-price', '0.1']);
  assert.equal(
    price.err,
    "netpay wallet: --max-price must be a whole number of cents, e.g. 10 for NZ$0.10 (got '0.1') (see netpay wallet get --help)\n",
  );

  const real = spawnSync(process.execPath, [BIN, 'wallet', '--file', file, 'buy', '--amount', '1.5'], {
    encoding: 'utf8',
    env: { ...process.env, NETPAY_WALLET_FILE: '' },
  });
  assert.equal(real.status, 2);
  assert.equal(real.stdout, '');
  const lines = real.stderr.split('\n').filter((l) => l !== '');
  assert.deepEqual(lines, [
    "netpay wallet: --amount must be a whole number of cents, e.g. 200 for NZ$2.00 (got '1.5') (see netpay wallet buy --help)",
  ]);
  assert.doesNotMatch(real.stderr, /\bat .+:\d+:\d+/, 'no stack trace');
  const help = spawnSync(process.execPath, [BIN, 'wallet', 'buy', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--amount CENTS/);
});

test('failures of the wallet and of the broker are one line naming their code', async () => {
  const file = join(dir, 'failures.json');
  const f = ['--file', file];
  const reg = await run([...f, 'register', '--broker', net.brokerUrl, '--email', 'fail@example.com'], {
    NETPAY_PASSWORD: 'correct horse battery',
  });
  assert.equal(reg.code, 0, reg.err);
  const declined = await run([...f, 'buy', '--amount', '100', '--card', '4000000000000002']);
  assert.equal(declined.code, 1);
  assert.match(declined.err, /^netpay wallet: .+ \(card_declined\)\n$/);
  const tooBig = await run([...f, 'buy', '--amount', '200000']);
  assert.equal(tooBig.code, 1);
  assert.match(
    tooBig.err,
    /^netpay wallet: a coin of NZ\$2,000\.00 .* at most 100000 units \(NZ\$1,000\.00 at this unit\) \(invalid_argument\)\n$/,
  );
  assert.equal((await run([...f, 'buy', '--amount', '10'])).code, 0);
  const dear = await run([...f, 'get', `${net.url}/v/daily-planet/articles/1`, '--max-price', '2']);
  assert.equal(dear.code, 1);
  assert.equal(
    dear.err,
    'netpay wallet: the price NZ$0.05 is above the limit of NZ$0.02 per request (price_too_high)\n',
  );
  const broke = await run([...f, 'get', `${net.url}/v/daily-planet/articles/1`, '--budget', '4']);
  assert.equal(
    broke.err,
    'netpay wallet: paying NZ$0.05 would take what this wallet paid to NZ$0.05, above its budget of NZ$0.04 (budget_exceeded)\n',
  );
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

  assert.equal((await run([...f, 'balance'])).out.trim(), 'NZ$1.00');

  const get = await run([...f, 'get', `${net.url}/v/daily-planet/articles/7`, '--max-price', '10']);
  assert.equal(get.code, 0, get.err);
  assert.equal(JSON.parse(get.body).resource, 'articles/7');
  assert.match(get.err, /paid NZ\$0\.05 to daily-planet .* index 5, NZ\$0\.95 left/);
  // The same article again: the point that bought it is presented, and nothing is paid.
  const reread = await run([...f, 'get', `${net.url}/v/daily-planet/articles/7`]);
  assert.equal(reread.code, 0, reread.err);
  assert.equal(JSON.parse(reread.body).resource, 'articles/7');
  assert.match(
    reread.err,
    /^netpay: read again free: bought for NZ\$0\.05 with chain \S+ index 5 at daily-planet; nothing paid \(NZ\$0\.95 left on the coin\)\n$/,
  );
  assert.deepEqual(JSON.parse((await run([...f, 'get', `${net.url}/v/daily-planet/articles/7`, '--json'])).err), {
    status: 200,
    payments: [],
    entitlement: {
      url: `${net.url}/v/daily-planet/articles/7`,
      realm: 'daily-planet',
      chainId: coin.chainId,
      index: 5,
      amountMinor: 5,
      currency: 'NZD',
      status: 'served',
      httpStatus: 200,
      receipt: { index: 5, balanceMinor: 95 },
    },
  });

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
  assert.match(coins.out, new RegExp(`${coin.chainId}\\s+active\\s+NZ\\$0\\.92 left of NZ\\$1\\.00`));
  const history = await run([...f, 'history', '--json']);
  assert.deepEqual(
    JSON.parse(history.out).map((e: { kind: string }) => e.kind),
    ['purchase', 'payment', 'payment'],
  );
  assert.match((await run([...f, 'history'])).out, /paid\s+NZ\$0\.03\s+to the-bugle/);

  const refund = await run([...f, 'refund', coin.chainId]);
  assert.equal(refund.code, 0, refund.err);
  assert.match(refund.out, /refunded NZ\$0\.92 of chain/);
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
