import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { emptyState } from '../src/coin-store.ts';
import { FileCoinStore, WalletError, createWallet } from '../src/index.ts';
import { TEST_CARD, startTestNet } from './helpers/test-net.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'netpay-wallet-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('load of a missing file is undefined; save creates directories and a 0600 file; reload is equal', async () => {
  const dir = await tempDir();
  const path = join(dir, 'nested', 'wallet.json');
  const store = new FileCoinStore(path);
  assert.equal(await store.load(), undefined);
  const state = { ...emptyState(), token: 'secret', email: 'a@b.co', brokerUrl: 'http://x' };
  await store.save(state);
  assert.deepEqual(await new FileCoinStore(path).load(), state);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, 'nested'))).mode & 0o777, 0o700);
  assert.deepEqual(await readdir(join(dir, 'nested')), ['wallet.json'], 'no temporary file left behind');
});

test('saves replace the file atomically: concurrent readers only ever see a whole state', async () => {
  const path = join(await tempDir(), 'wallet.json');
  const store = new FileCoinStore(path);
  await store.save(emptyState());
  let stop = false;
  let reads = 0;
  const reader = (async () => {
    while (!stop) {
      const state = await new FileCoinStore(path).load(); // throws corrupt_store on a torn file
      assert.ok(state && state.history.length >= 0);
      reads++;
    }
  })();
  for (let i = 0; i < 40; i++) {
    const big = emptyState();
    big.nextEntryId = i;
    big.history = Array.from({ length: 200 }, (_, j) => ({
      id: j,
      kind: 'purchase' as const,
      at: '2026-11-24T00:00:00Z',
      chainId: `c${i}-${j}`,
      amountMinor: j,
      currency: 'NZD',
    }));
    await store.save(big);
  }
  stop = true;
  await reader;
  assert.ok(reads > 0);
  assert.equal((await store.load())?.nextEntryId, 39);
});

test('a file that is not a wallet is reported as corrupt_store, not overwritten', async () => {
  const path = join(await tempDir(), 'wallet.json');
  await writeFile(path, '{"hello":');
  await assert.rejects(new FileCoinStore(path).load(), (e) => e instanceof WalletError && e.code === 'corrupt_store');
  await writeFile(path, '{"version":2}');
  await assert.rejects(new FileCoinStore(path).load(), (e) => e instanceof WalletError && e.code === 'corrupt_store');
  assert.equal(await readFile(path, 'utf8'), '{"version":2}');
});

test('a wallet on a file store survives a restart: session, coins with seeds, spent index, history', async () => {
  const net = await startTestNet();
  try {
    const path = join(await tempDir(), 'wallet.json');
    const first = createWallet({ brokerUrl: net.brokerUrl, store: new FileCoinStore(path) });
    await first.register('file@example.com', 'correct horse battery');
    await first.login('file@example.com', 'correct horse battery');
    const coin = await first.buy({ amountMinor: 30, card: TEST_CARD });
    assert.equal((await first.fetch(`${net.url}/v/daily-planet/a`)).status, 200);

    // No brokerUrl: it comes from the file.
    const second = createWallet({ store: new FileCoinStore(path) });
    assert.deepEqual(await second.session(), {
      brokerUrl: net.brokerUrl,
      email: 'file@example.com',
      loggedIn: true,
    });
    assert.deepEqual(await second.balance(), { NZD: 25 });
    const res = await second.fetchWithPayment(`${net.url}/v/daily-planet/b`);
    assert.deepEqual(
      res.payments.map((p) => [p.chainId, p.index, p.status]),
      [[coin.chainId, 10, 'paid']],
    );
    const raw = JSON.parse(await readFile(path, 'utf8'));
    assert.equal(typeof raw.coins[0].seed, 'string');
    assert.equal(raw.coins[0].spentIndex, 10);
    assert.equal(raw.history.length, 3);
  } finally {
    await net.close();
  }
});
