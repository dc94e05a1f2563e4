// End-to-end with real processes on loopback: the sandbox bank, the broker and both demo newspapers run as
// `netpay …` child processes (each with its own port and a shared temporary data folder), and the wallet CLI,
// also a child process, registers, buys one coin and reads three paid articles of each newspaper through their
// JSON API, paying for each; the coin moves between the two vendors and the balance carries over.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/bin/netpay.mjs');
const SITES = [
  { id: 'daily-planet', name: 'The Daily Planet' },
  { id: 'the-bugle', name: 'The Bugle' },
];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitHealthy(url: string, child: ChildProcess, log: () => string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited ${child.exitCode}\n${log()}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${url}\n${log()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const children: { name: string; child: ChildProcess; output: string[] }[] = [];
let data: string;
let brokerUrl: string;
const vendorUrls: Record<string, string> = {};

function launch(name: string, args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NETPAY_LOG_LEVEL: process.env.NETPAY_LOG_LEVEL ?? 'warn' },
  });
  const entry = { name, child, output: [] as string[] };
  child.stdout?.on('data', (c: Buffer) => entry.output.push(c.toString()));
  child.stderr?.on('data', (c: Buffer) => entry.output.push(c.toString()));
  children.push(entry);
  return { child, log: () => entry.output.join('').slice(-4000) };
}

function wallet(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, 'wallet', '--file', join(data, 'wallet.json'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, NETPAY_PASSWORD: 'correct horse battery', NETPAY_WALLET_FILE: '' },
    timeout: 60_000,
  });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

before(async () => {
  data = await mkdtemp(join(tmpdir(), 'netpay-e2e-'));
  const [bankPort, brokerPort, ...vendorPorts] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const bankUrl = `http://127.0.0.1:${bankPort}`;
  brokerUrl = `http://127.0.0.1:${brokerPort}`;

  const bank = launch('bank', ['bank', '--data', data, '--port', String(bankPort)]);
  await waitHealthy(bankUrl, bank.child, bank.log);
  const broker = launch('broker', ['broker', '--data', data, '--port', String(brokerPort), '--bank-url', bankUrl]);
  await waitHealthy(brokerUrl, broker.child, broker.log);

  const { loadOrCreateVendorKey } = (await import('@netpay/vendor-sdk')) as unknown as {
    loadOrCreateVendorKey: (dir: string) => { publicKey: Uint8Array; keyId: string };
  };
  const { b64uEncode } = await import('@netpay/protocol');
  for (const [i, site] of SITES.entries()) {
    const url = `http://127.0.0.1:${vendorPorts[i]}`;
    vendorUrls[site.id] = url;
    const dir = join(data, 'vendors', site.id);
    mkdirSync(dir, { recursive: true });
    const key = loadOrCreateVendorKey(dir);
    const added = spawnSync(
      process.execPath,
      [
        BIN,
        'admin',
        'vendor',
        'add',
        '--data',
        data,
        '--id',
        site.id,
        '--name',
        site.name,
        '--url',
        `${url}/`,
        '--release-url',
        `${url}/netpay/release`,
        '--public-key',
        b64uEncode(key.publicKey),
        '--key-id',
        key.keyId,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(added.status, 0, added.stderr);
    writeFileSync(join(dir, 'api-key'), `${JSON.parse(added.stdout).apiKey}\n`, { mode: 0o600 });
    const vendor = launch(site.id, [
      'vendor',
      '--site',
      site.id,
      '--data',
      data,
      '--port',
      String(vendorPorts[i]),
      '--broker-url',
      brokerUrl,
    ]);
    await waitHealthy(url, vendor.child, vendor.log);
  }
});

after(async () => {
  for (const { child } of [...children].reverse()) {
    if (child.exitCode !== null) continue;
    child.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 5000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  if (data) await rm(data, { recursive: true, force: true });
});

test('the wallet CLI buys a coin and reads three paid articles at each newspaper', async () => {
  const dump = () => children.map((c) => `--- ${c.name}\n${c.output.join('').slice(-2000)}`).join('\n');

  const reg = wallet(['register', '--broker', brokerUrl, '--email', `e2e-${Date.now()}@example.com`]);
  assert.equal(reg.code, 0, reg.err + dump());
  const buy = wallet(['buy', '--amount', '500', '--json']);
  assert.equal(buy.code, 0, buy.err + dump());
  const coin = JSON.parse(buy.out) as { chainId: string; remainingMinor: number };
  assert.equal(coin.remainingMinor, 500);

  let spent = 0;
  for (const site of SITES) {
    const base = vendorUrls[site.id] as string;
    const list = (await (await fetch(`${base}/api/articles`)).json()) as {
      articles: { id: string; priceMinor: number }[];
    };
    const paid = list.articles.filter((a) => a.priceMinor > 0).slice(0, 3);
    assert.equal(paid.length, 3, `${site.id} has three paid articles`);
    for (const article of paid) {
      const get = wallet(['get', `${base}/api/articles/${article.id}`, '--max-price', '100', '--json']);
      assert.equal(get.code, 0, `${site.id}/${article.id}: ${get.err}\n${dump()}`);
      const body = JSON.parse(get.out) as { id: string; body: unknown };
      assert.equal(body.id, article.id);
      const info = JSON.parse(get.err) as {
        status: number;
        payments: { status: string; realm: string; amountMinor: number; chainId: string }[];
      };
      assert.equal(info.status, 200);
      const ok = info.payments.filter((p) => p.status === 'paid');
      assert.equal(ok.length, 1, JSON.stringify(info.payments));
      assert.equal(ok[0]?.realm, site.id);
      assert.equal(ok[0]?.amountMinor, article.priceMinor);
      assert.equal(ok[0]?.chainId, coin.chainId, 'one coin pays both newspapers');
      spent += article.priceMinor;
    }
  }

  const balance = wallet(['balance', '--json']);
  assert.equal(balance.code, 0);
  const history = JSON.parse(wallet(['history', '--json']).out) as { kind: string; status?: string }[];
  const payments = history.filter((e) => e.kind === 'payment');
  assert.equal(payments.length, 6);
  assert.ok(payments.every((p) => p.status === 'paid'));
  assert.deepEqual(JSON.parse(balance.out), { NZD: 500 - spent });
});
