// A server-side wallet's allowance refresh tells the broker how far the chain is spent, and the broker keeps that
// point like a checkpoint (it bounds the site if the chain is later ended without its release). So the point must
// be durable at the vendor: a refresh made while an earlier payment of the chain is still being written waits for
// that write, and never reports a payment whose write then fails. On SQLite the refresh's own read of the store
// waits for the fsync (spend-store.ts #read); on PostgreSQL, where a read sees only committed rows and the index in
// memory runs ahead of the batch statement, it is the wait for the chain's writes (ChainState.settle in
// wallet-payment.ts) that keeps it.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { hashToken } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import type pg from 'pg';
import { Reader } from './connected-reader.ts';
import { gatedDisk } from './gated-disk.ts';
import { startWorld, type TestVendor, type World } from './harness.ts';
import type { VendorOptions } from '@netpay/test-kit';

const { Client } = createRequire(import.meta.url)('pg') as typeof pg;

/** Until `done()` holds, polling every 5 ms for at most 10 s. */
async function until(done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await done())) {
    assert.ok(Date.now() < end, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// Article 1 takes 130 of the 200 allowed, article 2 (60) fits in the rest, article 3 (80) needs a refresh.
const PRICES = { '1': 130, '2': 60, '3': 80 };

/** The broker's checkpoint of the chain's latest epoch (what the site's refreshes and renewals told it). */
async function checkpoint(world: World, chainId: string): Promise<number | null> {
  const rows = await world.brokerDb
    .selectFrom('epochs')
    .select('checkpoint_index')
    .where('chain_id', '=', chainId)
    .orderBy('epoch', 'desc')
    .execute();
  return rows[0]?.checkpoint_index ?? null;
}

/** A reader connected at a new vendor, article 1 paid (index 130 of an allowance of 200). */
async function connected(world: World, name: string, options: VendorOptions = {}) {
  const vendor: TestVendor = await world.addVendor(name, { prices: PRICES, ...options });
  const reader = await Reader.open(world, 2000);
  await reader.setLimits('2.00', '50.00');
  const first = await reader.connect(vendor, '1');
  assert.equal(first.read.charged, true, 'article 1 paid on return');
  const wallet = await vendor.store.getServerWallet(hashToken(reader.session));
  assert.ok(wallet);
  assert.equal(wallet.allowance.index, 200);
  return { vendor, reader, chainId: wallet.chainId };
}

describe('an allowance refresh reports only a spent point that is on disk (SQLite, fsync held)', () => {
  let world: World;
  before(async () => {
    world = await startWorld({ engine: 'sqlite', broker: { allowanceMaxMinor: 200, connectionBlockMinor: 1000 } });
  });
  after(async () => world?.close());

  /** A connected reader at a vendor whose store's fsyncs the test holds. */
  async function gated(name: string) {
    const { gate, disk } = gatedDisk();
    return { gate, ...(await connected(world, name, { storeOptions: { disk, fsync: { place: 'threadpool' } } })) };
  }

  it('waits for the payment in flight, then reports it', async () => {
    const { gate, vendor, reader, chainId } = await gated('refresh-durable-ok');
    const before = await checkpoint(world, chainId);
    assert.ok(before === null || before < 190, `checkpoint ${before} before article 2`);

    gate.holding = true;
    const second = reader.read(vendor, '2'); // index 190: committed, its fsync held
    await until(() => gate.waiting.length > 0, "article 2's fsync");
    const third = reader.read(vendor, '3'); // 270 > 200: refreshes the allowance
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await checkpoint(world, chainId), before, 'nothing reported while article 2 is not on disk');

    gate.open();
    const [two, three] = await Promise.all([second, third]);
    assert.equal(two.charged, true);
    assert.equal(three.charged, true, three.page.text.slice(0, 300));
    assert.equal(await checkpoint(world, chainId), 190, 'the refresh reported article 2, once durable');
  });

  it('never reports a payment whose fsync failed', async () => {
    const { gate, vendor, reader, chainId } = await gated('refresh-durable-failed');
    const before = await checkpoint(world, chainId);

    gate.holding = true;
    const second = reader.read(vendor, '2');
    await until(() => gate.waiting.length > 0, "article 2's fsync");
    const third = reader.read(vendor, '3');
    await new Promise((resolve) => setTimeout(resolve, 300));

    gate.failNext = true; // the disk loses article 2's commit
    gate.open();
    const [two, three] = await Promise.all([second, third]);
    assert.notEqual(two.status, 200, 'article 2 was not served');
    const after = await checkpoint(world, chainId);
    assert.ok(after === before || (after !== null && after < 190), `the broker was told index ${after}`);
    assert.ok(three.status !== 200 || three.charged === true, 'article 3 is served only if paid');
  });
});

if (testEngines().includes('postgres')) {
  describe('an allowance refresh reports only a committed spent point (PostgreSQL, batch statement held)', () => {
    let world: World;
    before(async () => {
      world = await startWorld({
        engine: 'postgres',
        broker: { allowanceMaxMinor: 200, connectionBlockMinor: 1000 },
      });
    });
    after(async () => world?.close());

    it('waits for the statement in flight; when it fails, reports the point before it', async () => {
      const { vendor, reader, chainId } = await connected(world, 'refresh-committed-pg');
      const before = await checkpoint(world, chainId);
      const url = new URL(vendor.storeUrl);
      const schema = url.searchParams.get('schema');
      url.searchParams.delete('schema');
      const admin = new Client({ connectionString: url.toString() });
      await admin.connect();
      try {
        // Another session holds the chain's head row: article 2's batch statement waits on it, uncommitted.
        await admin.query(`SET search_path = ${schema}`);
        await admin.query('BEGIN');
        await admin.query('SELECT 1 FROM netpay_epoch_heads WHERE chain_id = $1 FOR UPDATE', [chainId]);
        const second = reader.read(vendor, '2'); // index 190, in memory at once, committed only after the lock
        let blocked: number | undefined;
        await until(async () => {
          const { rows } = await admin.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity
              WHERE wait_event_type = 'Lock' AND query LIKE '%netpay_epoch_heads%' AND pid <> pg_backend_pid()`,
          );
          blocked = rows[0]?.pid;
          return blocked !== undefined;
        }, "article 2's statement to wait on the lock");
        const third = reader.read(vendor, '3'); // 270 > 200: refreshes the allowance
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(await checkpoint(world, chainId), before, 'nothing reported while article 2 is uncommitted');

        // The statement dies (its connection is cut): article 2 was never paid, and the refresh reports 130.
        await admin.query('SELECT pg_terminate_backend($1)', [blocked]);
        await admin.query('ROLLBACK');
        const [two, three] = await Promise.all([second, third]);
        assert.notEqual(two.status, 200, 'article 2 was not served');
        const after = await checkpoint(world, chainId);
        assert.ok(after === before || (after !== null && after < 190), `the broker was told index ${after}`);
        assert.ok(three.status !== 200 || three.charged === true, 'article 3 is served only if paid');
      } finally {
        await admin.end();
      }
    });
  });
}
