import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { b64uEncode, generateSigningKey, PaywordChain } from '@netpay/protocol';
import { tempDir } from '@netpay/service-kit/testing';
import { type BankUnderTest, call, freePort, GOOD_CARD, item, startBank } from './harness.ts';

const BIN = fileURLToPath(new URL('../../cli/bin/netpay.mjs', import.meta.url));

const exits = new WeakMap<ChildProcess, Promise<unknown>>();

function startBrokerProcess(data: string, port: number, bankUrl: string): ChildProcess {
  const child = spawn(
    process.execPath,
    // Metrics on a port the system picks: the default (the port + 200) was never checked free.
    [BIN, 'broker', '--data', data, '--port', String(port), '--bank-url', bankUrl, '--metrics-port', '0'],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, NETPAY_LOG_LEVEL: 'warn' },
    },
  );
  exits.set(child, new Promise((r) => child.once('exit', r)));
  return child;
}

const exited = (child: ChildProcess) => exits.get(child);

async function waitHealthy(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`broker exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error('broker did not come up');
    await new Promise((r) => setTimeout(r, 100));
  }
}

function admin(data: string, ...args: string[]) {
  return spawnSync(process.execPath, [BIN, 'admin', ...args, '--data', data], { encoding: 'utf8' });
}

// One engine is enough here: the point is a real process killed mid-write on its own SQLite file.
describe('the broker killed while redeeming', () => {
  let bank: BankUnderTest;
  const dir = tempDir('netpay-crash-');
  let child: ChildProcess | undefined;
  before(async () => {
    bank = await startBank('sqlite');
    writeFileSync(join(dir.path, 'bank-api-key'), `${bank.apiKey}\n`);
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await bank?.close();
    dir.remove();
  });

  test('SIGKILL mid-batch, restart, retry the same keys: nothing paid twice, answers as committed, audit holds', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const api = `${url}/api/v1`;
    child = startBrokerProcess(dir.path, port, bank.url);
    await waitHealthy(url, child);

    const key = generateSigningKey();
    const added = admin(
      dir.path,
      'vendor',
      'add',
      '--id',
      'crash-vendor',
      '--name',
      'Crash Vendor',
      '--url',
      'http://127.0.0.1:9/',
      '--release-url',
      'http://127.0.0.1:9/release',
      '--public-key',
      b64uEncode(key.publicKey),
    );
    assert.equal(added.status, 0, added.stderr);
    const { apiKey } = JSON.parse(added.stdout) as { apiKey: string };

    const email = `crash-${Date.now()}@example.test`;
    await call(api, 'POST', '/customers', { body: { email, password: 'crash-password' } });
    const { token } = (await call(api, 'POST', '/sessions', { body: { email, password: 'crash-password' } })).body;
    const chains: PaywordChain[] = [];
    for (let i = 0; i < 30; i++) {
      const chain = PaywordChain.generate(200);
      const bought = await call(api, 'POST', '/coins', {
        token,
        key: `coin-${i}`,
        body: { amount: 200, chainId: chain.chainIdB64, anchor: chain.anchorB64, payment: { card: GOOD_CARD } },
      });
      assert.equal(bought.status, 201, bought.text);
      const claimed = await call(api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: apiKey,
        body: { proof: { index: 1, payword: chain.b64(1) } },
      });
      assert.equal(claimed.status, 200);
      chains.push(chain);
    }
    const batches = chains.map((chain) => ({
      items: Array.from({ length: 20 }, (_, j) => item(chain, 1, j * 10, j * 10 + 10)),
    }));

    const first = new Map<number, string>();
    let killed = false;
    const inFlight = batches.map((body, i) =>
      call(api, 'POST', '/redemptions', { token: apiKey, key: `batch-${i}`, body }).then(
        (r) => {
          if (!killed) {
            killed = true;
            child?.kill('SIGKILL');
          }
          if (r.status === 200) first.set(i, r.text);
        },
        () => undefined,
      ),
    );
    await Promise.all(inFlight);
    if (!killed) child.kill('SIGKILL');
    await exited(child);

    child = startBrokerProcess(dir.path, port, bank.url);
    await waitHealthy(url, child);
    let credited = 0;
    for (const [i, body] of batches.entries()) {
      const retry = await call(api, 'POST', '/redemptions', { token: apiKey, key: `batch-${i}`, body });
      assert.equal(retry.status, 200, retry.text);
      const earlier = first.get(i);
      if (earlier !== undefined) assert.equal(retry.text, earlier, `batch ${i} answers what it committed`);
      for (const it of retry.body.items) assert.equal(it.status, 'accepted');
      credited += retry.body.credited;
      const again = await call(api, 'POST', '/redemptions', { token: apiKey, key: `batch-${i}`, body });
      assert.equal(again.text, retry.text);
    }
    const account = await call(api, 'GET', '/vendor/account', { token: apiKey });
    assert.equal(account.body.balance, credited);
    // 6000 cents redeemed in 10-cent items: the 2% fee is taken on the vendor's running total (120), not
    // rounded away per item.
    assert.equal(credited, 30 * 200 - 120, 'every chain redeemed exactly once, the fee on the total');

    const audited = admin(dir.path, 'audit');
    assert.equal(audited.status, 0, audited.stderr);
    assert.equal(JSON.parse(audited.stdout).ok, true);
    const ranges = JSON.parse(audited.stdout).totals.ranges;
    assert.equal(ranges, 30 * 20);

    child.kill('SIGTERM');
    await exited(child);
    process.stdout.write(`# ${first.size} of ${batches.length} batches answered before the kill\n`);
  });
});
