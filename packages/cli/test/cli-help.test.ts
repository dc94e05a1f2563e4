/**
 * The command line as people use it: every command and subcommand answers `--help` with the options it declares
 * (read from the same declarations here, so this test cannot drift from them), `--version` prints the package's
 * version, a mistake or a failure is one line and an exit code with no stack, and commands that talk to a service
 * find it from the data folder's demo.json.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BANK_COMMAND } from '@netpay/bank';
import { ADMIN_COMMANDS, BROKER_COMMAND } from '@netpay/broker';
import { BENCH_COMMAND, SITES, VENDOR_COMMANDS } from '@netpay/newspaper';
import { PaywordChain } from '@netpay/protocol';
import { startBenchNetwork } from '@netpay/newspaper/bench';
import { type CliCommand, createLogger } from '@netpay/service-kit';
import { tempDir, testEngines } from '@netpay/service-kit/testing';
import { type BankUnderTest, type BrokerUnderTest, call, item, startBank, startBroker } from '@netpay/test-kit';
import { COMMANDS as WALLET_COMMANDS, WALLET_HELP } from '../../wallet/src/cli-help.ts';
import { type Io, main } from '../src/main.ts';
import { START_COMMAND } from '../src/start.ts';

const BIN = fileURLToPath(new URL('../bin/netpay.mjs', import.meta.url));
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
/** A line of a stack trace. */
const STACK_FRAME = /^\s+at /m;

/** Every declared command with the words that run it after `netpay`. */
const DECLARED: CliCommand[] = [
  START_COMMAND,
  BANK_COMMAND,
  BROKER_COMMAND,
  ...ADMIN_COMMANDS,
  ...VENDOR_COMMANDS,
  BENCH_COMMAND,
];
const wordsOf = (command: CliCommand) => command.name.split(' ').slice(1);

interface Outcome {
  code: number | null;
  out: string;
  err: string;
}

/** `netpay …` in this process, its output captured. */
async function inProcess(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  let out = '';
  let err = '';
  const io: Io = {
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
  };
  const code = await main(argv, io, env);
  return { code, out, err };
}

/** `netpay …` as its own process, as a person runs it. */
function run(argv: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<Outcome> {
  const child = spawn(process.execPath, [BIN, ...argv], {
    env: { ...process.env, NETPAY_LOG_LEVEL: 'silent', NETPAY_DEBUG: '', ...env },
    ...(cwd ? { cwd } : {}),
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  child.stderr.on('data', (chunk) => {
    err += chunk;
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err })));
}

function assertOneLineFailure(outcome: Outcome, code: number, start: string): void {
  assert.equal(outcome.code, code, outcome.err);
  assert.equal(outcome.out, '');
  assert.doesNotMatch(outcome.err, STACK_FRAME);
  const lines = outcome.err.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, outcome.err);
  assert.ok(lines[0]?.startsWith(start), `${lines[0]} starts with ${start}`);
}

describe('netpay --help', () => {
  test('netpay and netpay admin list every command', async () => {
    for (const argv of [[], ['--help'], ['help']]) {
      const top = await inProcess(argv);
      assert.equal(top.code, 0);
      for (const name of ['start', 'bank', 'broker', 'admin', 'vendor', 'wallet', 'bench'])
        assert.match(top.out, new RegExp(`^  ${name}\\b`, 'm'));
    }
    const admin = await inProcess(['admin', '--help']);
    assert.equal(admin.code, 0);
    for (const command of ADMIN_COMMANDS)
      assert.match(admin.out, new RegExp(`^  ${wordsOf(command).slice(1).join(' ')} `, 'm'));
  });

  for (const command of DECLARED) {
    test(`${command.name} --help prints every option it takes`, async () => {
      for (const help of ['--help', '-h']) {
        const { code, out, err } = await inProcess([...wordsOf(command), help]);
        assert.equal(code, 0, err);
        assert.equal(err, '');
        assert.ok(out.startsWith(`${command.name}: ${command.summary}`), out);
        for (const option of command.options) {
          const label = option.value === undefined ? `--${option.name}` : `--${option.name} ${option.value}`;
          assert.match(out, new RegExp(`^  ${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `, 'm'), label);
        }
      }
    });
  }

  test('netpay wallet --help is the wallet’s own, and so is each wallet command’s', async () => {
    const wallet = await run(['wallet', '--help']);
    assert.equal(wallet.code, 0, wallet.err);
    assert.equal(wallet.out, WALLET_HELP);
    for (const [name, spec] of Object.entries(WALLET_COMMANDS)) {
      const { code, out } = await inProcess(['wallet', name, '--help']);
      assert.equal(code, 0);
      for (const flag of Object.keys(spec.options)) assert.ok(out.includes(flag), `${name} ${flag}`);
    }
  });

  test('start, bank, broker, vendor and bench answer --help as processes, with no stack', async () => {
    const commands = [START_COMMAND, BANK_COMMAND, BROKER_COMMAND, VENDOR_COMMANDS[0], BENCH_COMMAND];
    const outcomes = await Promise.all(commands.map((c) => run([...wordsOf(c), '--help'])));
    for (const [i, outcome] of outcomes.entries()) {
      const command = commands[i] as CliCommand;
      assert.equal(outcome.code, 0, outcome.err);
      assert.equal(outcome.err, '');
      assert.ok(outcome.out.startsWith(`${command.name}: `));
      for (const option of command.options) assert.ok(outcome.out.includes(`--${option.name}`), option.name);
    }
  });
});

describe('netpay --version', () => {
  test('prints the version in package.json, for netpay and for every command', async () => {
    const top = await run(['--version']);
    assert.deepEqual(top, { code: 0, out: `netpay ${VERSION}\n`, err: '' });
    for (const argv of [...DECLARED.map(wordsOf), ['admin'], ['wallet'], ['wallet', 'balance']]) {
      const outcome = await inProcess([...argv, '--version']);
      assert.deepEqual(outcome, { code: 0, out: `netpay ${VERSION}\n`, err: '' }, argv.join(' '));
    }
  });
});

describe('mistakes and failures are one line and an exit code', () => {
  test('an unknown option exits 2 naming the command and its help, for every command', async () => {
    for (const command of DECLARED) {
      const outcome = await inProcess([...wordsOf(command), '--no-such-option']);
      assert.equal(outcome.code, 2, command.name);
      assert.equal(outcome.out, '');
      assert.equal(
        outcome.err,
        `${command.name}: unknown option --no-such-option (see ${command.name} --help)\n`,
        command.name,
      );
    }
    const wallet = await inProcess(['wallet', 'balance', '--no-such-option']);
    assert.equal(wallet.code, 2);
    assertOneLineFailure(wallet, 2, 'netpay wallet: unknown option --no-such-option');
    assertOneLineFailure(await inProcess(['frobnicate']), 2, "netpay: unknown command 'frobnicate'");
    assertOneLineFailure(await inProcess(['admin', 'frobnicate']), 2, "netpay admin: unknown command 'frobnicate'");
  });

  test('as a process: an unknown option, a bad value, a missing option, a failing command', async () => {
    const dir = tempDir('netpay-cli-failures-');
    try {
      // A file where the database's folder should be: the store cannot be opened.
      const notAFolder = join(dir.path, 'not-a-folder');
      writeFileSync(notAFolder, '');
      const [unknown, badValue, missing, failing, debug] = await Promise.all([
        run(['broker', '--foo']),
        run(['admin', 'payouts', '--data', dir.path, '--settlement-window-seconds', 'soon']),
        run(['admin', 'vendor', 'add', '--data', dir.path, '--id', 'v']),
        run(['admin', 'audit', '--data', dir.path, '--db', `sqlite:${join(notAFolder, 'x.db')}`]),
        run(['admin', 'audit', '--data', dir.path, '--db', `sqlite:${join(notAFolder, 'x.db')}`], {
          NETPAY_DEBUG: '1',
        }),
      ]);
      assert.deepEqual(unknown, {
        code: 2,
        out: '',
        err: 'netpay broker: unknown option --foo (see netpay broker --help)\n',
      });
      assertOneLineFailure(
        badValue,
        2,
        "netpay admin payouts: --settlement-window-seconds must be a whole number (got 'soon')",
      );
      assertOneLineFailure(missing, 2, 'netpay admin vendor add: missing --name, --url, --release-url, --public-key');
      assertOneLineFailure(failing, 1, 'netpay admin audit: ');
      assert.ok(failing.err.includes('not-a-folder'), failing.err);
      // The stack is there for a developer who asks.
      assert.equal(debug.code, 1);
      assert.match(debug.err, STACK_FRAME);
    } finally {
      dir.remove();
    }
  });

  test('a service that cannot take its port says so in one line and exits 1', async () => {
    const dir = tempDir('netpay-cli-port-');
    const { createServer } = await import('node:net');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const outcome = await run(['bank', '--data', dir.path, '--port', String(port), '--metrics-port', '0']);
      assert.equal(outcome.code, 1);
      assert.doesNotMatch(outcome.err, STACK_FRAME);
      assert.match(outcome.err, new RegExp(`^netpay bank: .*EADDRINUSE.*${port}$`, 'm'));
    } finally {
      taken.close();
      dir.remove();
    }
  });
});

for (const engine of testEngines()) {
  describe(`commands find the services from the data folder (${engine})`, () => {
    let bank: BankUnderTest;
    let broker: BrokerUnderTest;
    const data = tempDir('netpay-cli-data-');
    before(async () => {
      bank = await startBank(engine);
      broker = await startBroker(engine, bank);
      writeFileSync(join(data.path, 'bank-api-key'), `${bank.apiKey}\n`, { mode: 0o600 });
    });
    after(async () => {
      await broker?.close();
      await bank?.close();
      data.remove();
    });

    const writeDemo = (bankUrl: string) =>
      writeFileSync(
        join(data.path, 'demo.json'),
        `${JSON.stringify({ bank: { url: bankUrl }, broker: { url: broker.url, api: broker.api }, vendors: [] })}\n`,
      );

    /** A vendor owed what it redeemed of a coin, settled at once (`--settlement-window-seconds 0`). */
    const creditedVendor = async (id: string) => {
      const { token } = await broker.customer();
      const chain = PaywordChain.generate(100);
      const bought = await broker.buyCoin(token, { amount: 1000, unit: 10, chain });
      assert.equal(bought.status, 201, bought.text);
      const vendor = await broker.addVendor(id);
      const claimed = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: vendor.apiKey,
        body: { proof: { index: 50, payword: chain.b64(50) } },
      });
      assert.equal(claimed.status, 200, claimed.text);
      const redeemed = await call(broker.api, 'POST', '/redemptions', {
        token: vendor.apiKey,
        key: `r-${id}`,
        body: { items: [item(chain, 1, 0, 50)] },
      });
      assert.equal(redeemed.status, 200, redeemed.text);
      return { vendorId: id, credited: redeemed.body.credited as number };
    };

    const payouts = () =>
      run(['admin', 'payouts', '--data', data.path, '--db', broker.database.url, '--settlement-window-seconds', '0']);

    const bankPayouts = async () => {
      const statement = await bank.statement();
      assert.equal(statement.status, 200, statement.text);
      return (statement.body.lines as Array<{ kind: string; amount: number; reference: string }>).filter(
        (l) => l.kind === 'payout',
      );
    };

    test('admin payouts with only --data pays through the bank demo.json names', async () => {
      // Where no bank listens: the payout cannot be made, and the real bank sees nothing.
      const { createServer } = await import('node:net');
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const deadPort = (closed.address() as { port: number }).port;
      await new Promise((resolve) => closed.close(resolve));
      const { vendorId, credited } = await creditedVendor(`cli-demo-${engine}`);
      writeDemo(`http://127.0.0.1:${deadPort}`);
      const unreachable = await payouts();
      const report = JSON.parse(unreachable.out) as { paid: unknown[]; pending: Array<{ reason: string }> };
      assert.deepEqual(report.paid, []);
      assert.match(report.pending[0]?.reason ?? '', /unreachable/);
      assert.deepEqual(await bankPayouts(), []);

      writeDemo(bank.url);
      const paid = await payouts();
      assert.equal(paid.code, 0, paid.err);
      const done = JSON.parse(paid.out) as { paid: Array<{ vendorId: string; amount: number }> };
      assert.deepEqual(
        done.paid.map((p) => [p.vendorId, p.amount]),
        [[vendorId, credited]],
      );
      assert.deepEqual(
        (await bankPayouts()).map((l) => [l.reference, -l.amount]),
        [[`vendor:${vendorId}`, credited]],
      );
    });

    test('wallet login without --broker logs in at the broker demo.json names', async () => {
      writeDemo(bank.url);
      const { email } = await broker.customer();
      const wallet = join(data.path, 'wallet.json');
      const outcome = await run(
        ['wallet', '--file', wallet, 'login', '--data', data.path, '--email', email, '--json'],
        { NETPAY_PASSWORD: 'correct horse' },
      );
      assert.equal(outcome.code, 0, outcome.err);
      assert.deepEqual(JSON.parse(outcome.out), { ok: true, email, broker: broker.url });
    });
  });
}

describe('vendor account with only --data', () => {
  test("uses demo.json's broker and the site's apiKeyFile", async () => {
    const world = tempDir('netpay-cli-vendor-world-');
    const data = tempDir('netpay-cli-vendor-data-');
    const site = SITES['daily-planet'];
    const net = await startBenchNetwork({ dir: world.path, site, logger: createLogger('test', 'silent') });
    try {
      // The key where demo.json says, not where the vendor would look without it.
      const keyFile = join(data.path, 'keys', 'planet-api-key');
      mkdirSync(join(data.path, 'keys'));
      writeFileSync(keyFile, `${net.apiKey}\n`, { mode: 0o600 });
      writeFileSync(
        join(data.path, 'demo.json'),
        JSON.stringify({
          broker: { url: net.brokerUrl },
          vendors: [{ id: site.vendorId, url: net.vendorUrl, apiKeyFile: keyFile }],
        }),
      );
      const outcome = await run(['vendor', 'account', '--site', site.vendorId, '--data', data.path]);
      assert.equal(outcome.code, 0, outcome.err);
      const account = JSON.parse(outcome.out) as { currency: string; earnedMinor: number };
      assert.equal(account.currency, site.currency);
      assert.equal(account.earnedMinor, 0);
    } finally {
      await net.close();
      world.remove();
      data.remove();
    }
  });
});
