/**
 * Secrets at rest in the demo, as `npm start` runs it (`netpay start` as a child process, SQLite in a data folder):
 * the folder and everything in it are private (0700 / 0600, the SQLite -wal and -shm files included, and a folder
 * left open by an older version is tightened), demo.json names no API key, and broker.db holds the signing seed
 * and a broker-made coin's seed only sealed: what is stored opens with the master key file and with nothing else,
 * and the plaintext appears nowhere in the database file or its log.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { b64uDecode, b64uEncode, publicKeyFromSeed } from '@netpay/protocol';
import { looseModes, newMasterKeyText, openDatabase, SecretBox, sql } from '@netpay/service-kit';

const BIN = fileURLToPath(new URL('../bin/netpay.mjs', import.meta.url));

interface Demo {
  broker: { url: string; api: string };
  vendors: Array<{ id: string; url: string; apiKeyFile: string }>;
}

describe('the demo keeps its secrets (netpay start, SQLite)', () => {
  const data = mkdtempSync(join(tmpdir(), 'netpay-demo-secrets-'));
  const base = 4500 + Math.floor(Math.random() * 100);
  let system: ChildProcess | undefined;
  let output = '';

  before(async () => {
    // What an older version left: a folder anyone could list and a demo.json with an API key in it, readable by all.
    chmodSync(data, 0o755);
    writeFileSync(join(data, 'demo.json'), '{"vendors":[{"id":"x","apiKey":"np_vk_old"}]}\n', { mode: 0o644 });
    chmodSync(join(data, 'demo.json'), 0o644);
    const env: NodeJS.ProcessEnv = { ...process.env, NETPAY_LOG_LEVEL: 'warn' };
    delete env.NETPAY_MASTER_KEY;
    delete env.NETPAY_MASTER_KEY_FILE;
    system = spawn(process.execPath, [BIN, 'start', '--data', data, '--port-base', String(base)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
    };
    system.stdout?.on('data', collect);
    system.stderr?.on('data', collect);
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (output.includes('NetPay is running')) resolve();
      };
      system?.stdout?.on('data', check);
      system?.once('exit', (code) => reject(new Error(`netpay start exited (${code}):\n${output}`)));
    });
  });

  after(async () => {
    if (system && system.exitCode === null) {
      const exited = new Promise((resolve) => system?.once('exit', resolve));
      system.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (system.exitCode === null) system.kill('SIGKILL');
    }
    rmSync(data, { recursive: true, force: true });
  });

  test('modes, demo.json and broker.db', async () => {
    const demo = JSON.parse(readFileSync(join(data, 'demo.json'), 'utf8')) as Demo;
    assert.equal(new URL(demo.broker.url).hostname, '127.0.0.2', 'the broker has its own address');
    assert.deepEqual(
      demo.vendors.map((v) => new URL(v.url).hostname),
      ['127.0.0.3', '127.0.0.4'],
    );

    // A customer buys a coin the broker makes (it keeps the seed for server-side wallets).
    const json = { 'content-type': 'application/json' };
    const account = { email: `secrets-${Date.now()}@netpay.test`, password: 'correct horse battery' };
    assert.equal(
      (await fetch(`${demo.broker.api}/customers`, { method: 'POST', headers: json, body: JSON.stringify(account) }))
        .status,
      201,
    );
    const session = await fetch(`${demo.broker.api}/sessions`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify(account),
    });
    const { token } = (await session.json()) as { token: string };
    const bought = await fetch(`${demo.broker.api}/coins`, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${token}`, 'idempotency-key': 'secrets-1' },
      body: JSON.stringify({
        amount: 100,
        payment: { card: { number: '4242 4242 4242 4242', expiry: '12/30', cvc: '123' } },
      }),
    });
    assert.equal(bought.status, 201);
    const coin = (await bought.json()) as { chainId: string; seed: string };
    assert.ok(coin.seed);

    // Every folder 0700 and every file 0600, the databases' -wal and -shm included, while the system runs.
    const files = ['broker.db', 'broker.db-wal', 'broker.db-shm', 'bank.db', 'master-key', 'demo.json'];
    for (const name of files) assert.ok(existsSync(join(data, name)), `${name} exists`);
    assert.deepEqual(looseModes(data), [], 'nothing in the data folder is open to others');

    // demo.json names where the API keys are, never a key.
    const demoText = readFileSync(join(data, 'demo.json'), 'utf8');
    assert.doesNotMatch(demoText, /apiKey"/);
    for (const vendor of demo.vendors) {
      const apiKey = readFileSync(vendor.apiKeyFile, 'utf8').trim();
      assert.ok(apiKey.length > 20);
      assert.ok(!demoText.includes(apiKey), `${vendor.id}'s API key is not in demo.json`);
    }

    // broker.db: the signing seed and the coin's seed are stored sealed; the master key file opens them.
    const box = SecretBox.fromKey(b64uDecode(readFileSync(join(data, 'master-key'), 'utf8').trim(), 32));
    const stranger = SecretBox.fromKey(b64uDecode(newMasterKeyText(), 32));
    const database = openDatabase<unknown>(`sqlite:${join(data, 'broker.db')}`);
    let signingSeed: string;
    try {
      const keys = await sql<{
        key_id: string;
        private_seed: string;
        public_key: string;
      }>`select key_id, private_seed, public_key from signing_keys`.execute(database.db);
      assert.ok(keys.rows.length >= 1);
      const key = keys.rows[0] as (typeof keys.rows)[number];
      const context = `signing_keys.private_seed:${key.key_id}`;
      assert.ok(SecretBox.isSealed(key.private_seed));
      signingSeed = box.open(key.private_seed, context);
      assert.equal(b64uEncode(publicKeyFromSeed(b64uDecode(signingSeed, 32))), key.public_key);
      assert.throws(() => stranger.open(key.private_seed, context), /another master key/);

      const chains = await sql<{ seed: string }>`select seed from chains where chain_id = ${coin.chainId}`.execute(
        database.db,
      );
      const storedSeed = chains.rows[0]?.seed as string;
      assert.ok(SecretBox.isSealed(storedSeed));
      assert.equal(box.open(storedSeed, `chains.seed:${coin.chainId}`), coin.seed);
      assert.throws(() => stranger.open(storedSeed, `chains.seed:${coin.chainId}`));
    } finally {
      await database.close();
    }
    const bytes = ['broker.db', 'broker.db-wal']
      .filter((name) => existsSync(join(data, name)))
      .map((name) => readFileSync(join(data, name)).toString('latin1'))
      .join('');
    assert.ok(!bytes.includes(coin.seed), 'the coin seed is nowhere in broker.db or its log');
    assert.ok(!bytes.includes(signingSeed), 'the signing seed is nowhere in broker.db or its log');
  });
});
