// End-to-end with real processes on loopback, once per database engine: the sandbox bank, the broker and both demo
// newspapers run as `netpay …` child processes (each with its own port, its own database and a shared temporary
// data folder), and the wallet CLI, also a child process, registers, buys a coin and reads paid articles through
// their JSON API: three at each newspaper (the coin moves between the two vendors and the balance carries over),
// and one article read again, which presents the payment that bought it and pays nothing.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { type TestDatabase, createTestDatabase, testEngines } from '@netpay/service-kit/testing';
import { freePort } from '@netpay/test-kit/free-port';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/bin/netpay.mjs');
const SITES = [
  { id: 'daily-planet', name: 'The Daily Planet' },
  { id: 'the-bugle', name: 'The Bugle' },
];

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

interface PaidArticle {
  id: string;
  priceMinor: number;
}

interface GetInfo {
  status: number;
  payments: { status: string; realm: string; amountMinor: number; chainId: string; index: number }[];
  entitlement?: {
    status: string;
    realm: string;
    chainId: string;
    index: number;
    amountMinor: number;
    receipt?: { index: number; balanceMinor: number };
  };
}

for (const engine of testEngines()) {
  describe(`the wallet CLI against real services on ${engine}`, () => {
    const children: { name: string; child: ChildProcess; output: string[] }[] = [];
    const databases: TestDatabase[] = [];
    const vendorUrls: Record<string, string> = {};
    const vendorDbs: Record<string, string> = {};
    let data: string;
    let brokerUrl: string;

    const dump = () => children.map((c) => `--- ${c.name}\n${c.output.join('').slice(-2000)}`).join('\n');

    function launch(name: string, args: string[]) {
      // Metrics on a port the system picks: the default (the port + 200) was never checked free, and a test running
      // beside this one may hold it, which ends the child at start.
      const child = spawn(process.execPath, [BIN, ...args, '--metrics-port', '0'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NETPAY_LOG_LEVEL: process.env.NETPAY_LOG_LEVEL ?? 'warn' },
      });
      const entry = { name, child, output: [] as string[] };
      child.stdout?.on('data', (c: Buffer) => entry.output.push(c.toString()));
      child.stderr?.on('data', (c: Buffer) => entry.output.push(c.toString()));
      children.push(entry);
      return { child, log: () => entry.output.join('').slice(-4000) };
    }

    async function database(): Promise<string> {
      const db = await createTestDatabase(engine);
      databases.push(db);
      return db.url;
    }

    function wallet(file: string, args: string[]) {
      const result = spawnSync(process.execPath, [BIN, 'wallet', '--file', join(data, file), ...args], {
        encoding: 'utf8',
        env: { ...process.env, NETPAY_PASSWORD: 'correct horse battery', NETPAY_WALLET_FILE: '' },
        timeout: 60_000,
      });
      return { code: result.status, out: result.stdout, err: result.stderr };
    }

    /** What the vendor has taken in payments, from its own records (`netpay vendor account`). */
    function vendorEarned(site: string): number {
      const result = spawnSync(
        process.execPath,
        [
          BIN,
          'vendor',
          'account',
          '--site',
          site,
          '--data',
          data,
          '--db',
          vendorDbs[site] as string,
          '--broker-url',
          brokerUrl,
        ],
        { encoding: 'utf8', env: { ...process.env, NETPAY_LOG_LEVEL: 'silent' }, timeout: 60_000 },
      );
      assert.equal(result.status, 0, result.stderr);
      return (JSON.parse(result.stdout) as { earnedMinor: number }).earnedMinor;
    }

    async function paidArticles(site: string): Promise<PaidArticle[]> {
      const list = (await (await fetch(`${vendorUrls[site]}/api/articles`)).json()) as { articles: PaidArticle[] };
      return list.articles.filter((a) => a.priceMinor > 0);
    }

    before(async () => {
      data = await mkdtemp(join(tmpdir(), 'netpay-e2e-'));
      const [bankPort, brokerPort, ...vendorPorts] = await Promise.all([
        freePort(),
        freePort(),
        freePort(),
        freePort(),
      ]);
      const bankUrl = `http://127.0.0.1:${bankPort}`;
      brokerUrl = `http://127.0.0.1:${brokerPort}`;

      const bank = launch('bank', ['bank', '--data', data, '--db', await database(), '--port', String(bankPort)]);
      await waitHealthy(bankUrl, bank.child, bank.log);
      const brokerDb = await database();
      const broker = launch('broker', [
        'broker',
        '--data',
        data,
        '--db',
        brokerDb,
        '--port',
        String(brokerPort),
        '--bank-url',
        bankUrl,
      ]);
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
            '--db',
            brokerDb,
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
        vendorDbs[site.id] = await database();
        const vendor = launch(site.id, [
          'vendor',
          '--site',
          site.id,
          '--data',
          data,
          '--db',
          vendorDbs[site.id] as string,
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
      for (const db of databases) await db.drop();
      if (data) await rm(data, { recursive: true, force: true });
    });

    test('the wallet CLI buys a coin and reads three paid articles at each newspaper', async () => {
      const reg = wallet('wallet.json', ['register', '--broker', brokerUrl, '--email', `e2e-${engine}@example.com`]);
      assert.equal(reg.code, 0, reg.err + dump());
      const buy = wallet('wallet.json', ['buy', '--amount', '500', '--json']);
      assert.equal(buy.code, 0, buy.err + dump());
      const coin = JSON.parse(buy.out) as { chainId: string; remainingMinor: number };
      assert.equal(coin.remainingMinor, 500);

      let spent = 0;
      for (const site of SITES) {
        const base = vendorUrls[site.id] as string;
        const paid = (await paidArticles(site.id)).slice(0, 3);
        assert.equal(paid.length, 3, `${site.id} has three paid articles`);
        for (const article of paid) {
          const get = wallet('wallet.json', [
            'get',
            `${base}/api/articles/${article.id}`,
            '--max-price',
            '100',
            '--json',
          ]);
          assert.equal(get.code, 0, `${site.id}/${article.id}: ${get.err}\n${dump()}`);
          const body = JSON.parse(get.out) as { id: string; body: unknown };
          assert.equal(body.id, article.id);
          const info = JSON.parse(get.err) as GetInfo;
          assert.equal(info.status, 200);
          const ok = info.payments.filter((p) => p.status === 'paid');
          assert.equal(ok.length, 1, JSON.stringify(info.payments));
          assert.equal(ok[0]?.realm, site.id);
          assert.equal(ok[0]?.amountMinor, article.priceMinor);
          assert.equal(ok[0]?.chainId, coin.chainId, 'one coin pays both newspapers');
          spent += article.priceMinor;
        }
      }

      const balance = wallet('wallet.json', ['balance', '--json']);
      assert.equal(balance.code, 0);
      const history = JSON.parse(wallet('wallet.json', ['history', '--json']).out) as {
        kind: string;
        status?: string;
      }[];
      const payments = history.filter((e) => e.kind === 'payment');
      assert.equal(payments.length, 6);
      assert.ok(payments.every((p) => p.status === 'paid'));
      assert.deepEqual(JSON.parse(balance.out), { NZD: 500 - spent });
    });

    test('the wallet CLI reads the same paid article twice and pays once', async () => {
      const site = 'daily-planet';
      const [article, other] = (await paidArticles(site)).slice(-2) as [PaidArticle, PaidArticle];
      const url = `${vendorUrls[site]}/api/articles/${article.id}`;
      const file = 'reader.json';
      assert.equal(wallet(file, ['register', '--broker', brokerUrl, '--email', `again-${engine}@example.com`]).code, 0);
      const buy = wallet(file, ['buy', '--amount', '100', '--json']);
      assert.equal(buy.code, 0, buy.err + dump());
      const coin = JSON.parse(buy.out) as { chainId: string };
      const earnedBefore = vendorEarned(site);

      const first = wallet(file, ['get', url, '--json']);
      assert.equal(first.code, 0, first.err + dump());
      const paid = JSON.parse(first.err) as GetInfo;
      assert.deepEqual(
        paid.payments.map((p) => [p.status, p.chainId, p.index, p.amountMinor]),
        [['paid', coin.chainId, article.priceMinor, article.priceMinor]],
      );
      const articleBody = JSON.parse(first.out) as { id: string; body: string };
      assert.equal(articleBody.id, article.id);

      // Read again: the same article, the point that bought it presented, nothing paid.
      const second = wallet(file, ['get', url, '--json']);
      assert.equal(second.code, 0, second.err + dump());
      assert.deepEqual(JSON.parse(second.out), articleBody, 'the second output is the article');
      const reread = JSON.parse(second.err) as GetInfo;
      assert.deepEqual(reread.payments, []);
      assert.equal(reread.entitlement?.status, 'served');
      assert.deepEqual([reread.entitlement?.chainId, reread.entitlement?.index], [coin.chainId, article.priceMinor]);
      assert.deepEqual(reread.entitlement?.receipt, {
        index: article.priceMinor,
        balanceMinor: 100 - article.priceMinor,
      });

      // Another article moves the chain on; the first is still the reader's (an entitlement, not only a retry).
      const next = wallet(file, ['get', `${vendorUrls[site]}/api/articles/${other.id}`, '--json']);
      assert.equal((JSON.parse(next.err) as GetInfo).payments[0]?.status, 'paid');
      const third = wallet(file, ['get', url]);
      assert.equal(third.code, 0, third.err + dump());
      assert.deepEqual(JSON.parse(third.out), articleBody);
      assert.match(
        third.err,
        /^netpay: read again free: bought for NZ\$\d\.\d\d with chain \S+ index \d+ at daily-planet; nothing paid/,
      );

      // The coin's spent index and the vendor's takings moved once per article.
      const [view] = JSON.parse(wallet(file, ['coins', '--json']).out) as {
        spentIndex: number;
        remainingMinor: number;
      }[];
      assert.equal(view?.spentIndex, article.priceMinor + other.priceMinor);
      assert.equal(view?.remainingMinor, 100 - article.priceMinor - other.priceMinor);
      const history = JSON.parse(wallet(file, ['history', '--json']).out) as { kind: string; url?: string }[];
      assert.deepEqual(
        history.filter((e) => e.kind === 'payment').map((e) => e.url),
        [url, `${vendorUrls[site]}/api/articles/${other.id}`],
      );
      assert.equal(vendorEarned(site) - earnedBefore, article.priceMinor + other.priceMinor);
    });
  });
}
