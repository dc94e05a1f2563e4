import assert from 'node:assert/strict';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import Database from 'better-sqlite3';
import { createTestDatabase, tempDir } from '@netpay/service-kit/testing';
import { createSpendStore, type SpendStore } from '../src/spend-store.ts';
import { type Disk, nodeDisk, WalDurability } from '../src/wal-durability.ts';
import { chainRecordOf, epochRecordOf, STORE_TEST_EXPIRES_AT } from './store-records.ts';
import { gatedDisk } from './gated-disk.ts';
import { settle, waitUntil, watched } from './watched.ts';

// SQLite only: PostgreSQL's commit is durable when it returns, so it has no fsync of its own to order.

const chain = PaywordChain.generate(40);
const chainId = chain.chainIdB64;
const expiresAt = STORE_TEST_EXPIRES_AT;
const chainRecord = chainRecordOf(chain, 3);

const epochRecord = (epoch: number, startIndex: number | null) => epochRecordOf(chain, epoch, startIndex);

const pay = (expected: number, index: number, epoch = 1) => ({
  chainId,
  epoch,
  expectedLastIndex: expected,
  index,
  payword: chain.b64(index),
  resource: `r${index}`,
  amountMinor: index - expected,
  atMs: Date.now(),
});

describe('durable SQLite commits with the fsync off the event loop', () => {
  const stores: SpendStore[] = [];
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    for (const d of drops) await d();
  });
  const open = async () => {
    const db = await createTestDatabase('sqlite');
    drops.push(db.drop);
    const { gate, disk } = gatedDisk();
    const store = await createSpendStore(db.url, { disk });
    stores.push(store);
    // A second store on the same file reads what is committed, durable or not (reads never wait for an fsync).
    const reader = await createSpendStore(db.url);
    stores.push(reader);
    await store.saveChain(chainRecord);
    await store.insertEpoch(epochRecord(1, 0));
    return { store, reader, gate };
  };

  it('answers a payment only after an fsync that started after its commit has completed', async () => {
    const { store, reader, gate } = await open();
    gate.holding = true;
    const first = watched(store.recordPayment(pay(0, 1)));
    await waitUntil(() => gate.waiting.length === 1, 'one fsync held');
    assert.equal((await reader.getEpoch(chainId, 1))?.last?.index, 1, 'committed');
    await settle();
    assert.equal(first.settled, false, 'not answered while its fsync runs');

    // Payments that come while the fsync runs are the next batch: committed once it is done, then fsynced again.
    const second = watched(store.recordPayment(pay(1, 2)));
    const third = watched(store.recordPayment(pay(2, 3)));
    await settle();
    assert.equal((await reader.getEpoch(chainId, 1))?.last?.index, 1, 'the next batch waits for the fsync');
    gate.release();
    assert.equal(await first.promise, 'ok');
    await waitUntil(() => gate.waiting.length === 1, 'one fsync held');
    assert.equal((await reader.getEpoch(chainId, 1))?.last?.index, 3, 'committed as one batch');
    await settle();
    assert.deepEqual([second.settled, third.settled], [false, false]);

    // A write that commits while that fsync runs (this one commits at once) may have been missed by it: it waits
    // for the next one.
    const superseded = watched(store.markSuperseded(chainId, 1));
    await settle();
    assert.equal((await reader.getEpoch(chainId, 1))?.superseded, true, 'committed');
    gate.release();
    assert.deepEqual(await Promise.all([second.promise, third.promise]), ['ok', 'ok']);
    await waitUntil(() => gate.waiting.length === 1, 'one fsync held');
    await settle();
    assert.equal(superseded.settled, false, 'waits for the fsync after its commit');
    gate.release();
    await superseded.promise;
  });

  it('lets a read go without an fsync only while nothing was committed since one that completed began', async () => {
    const { store, reader, gate } = await open();
    // The fsync after the last write has completed; nothing was committed since.
    await store.loadChain(chainId);
    const quiet = gate.syncs;
    await store.loadChain(chainId);
    await store.getEpoch(chainId, 1);
    assert.equal(gate.syncs, quiet, 'no fsync for reads of what is on disk');
    // Another process commits on the same file: what a read now sees may not be on disk yet.
    gate.holding = true;
    await reader.markReleaseReported(chainId, 1);
    const afterOther = watched(store.loadChain(chainId));
    await waitUntil(() => gate.waiting.length === 1, 'the read waits for an fsync');
    await settle();
    assert.equal(afterOther.settled, false, "a read of another process's commit waits for its fsync");
    gate.release();
    await afterOther.promise;
    // This store's own commit, its fsync held: a read of it waits too.
    const paying = watched(store.recordPayment(pay(0, 1)));
    await waitUntil(() => gate.waiting.length === 1, 'the payment fsync held');
    const afterOwn = watched(store.loadChain(chainId));
    await settle();
    assert.equal(afterOwn.settled, false, 'a read of a commit whose fsync runs waits for it');
    gate.open();
    assert.equal(await paying.promise, 'ok');
    await afterOwn.promise;
    // And once that is on disk, reads are free again.
    const settled = gate.syncs;
    assert.equal((await store.loadChain(chainId))?.epochs[0]?.last?.index, 1);
    assert.equal(gate.syncs, settled);
  });

  it('makes every other write wait for its fsync too', async () => {
    const { store, gate } = await open();
    const release = {
      chainId,
      epoch: 1,
      vendorId: 'daily-planet',
      index: 0,
      payword: chain.b64(0),
      toVendorId: 'the-bugle',
      toEpoch: 2,
      keyId: 'v1',
      releasedAt: '2026-11-24T00:10:00Z',
      sig: 'B'.repeat(86),
    };
    const wallet = {
      sessionHash: 'h'.repeat(43),
      chainId,
      epoch: 2,
      allowance: { index: 20, payword: chain.b64(20), expiresAtMs: 1_900_000_000_000 },
      refreshTokenSealed: 'nps1.sealed',
      balanceMinor: 480,
      balanceAtMs: 1_800_000_000_000,
      autoPayMaxMinor: 10,
      updatedAtMs: 1_800_000_000_000,
    };
    const other = PaywordChain.generate(5);
    const writes: [string, () => Promise<unknown>][] = [
      ['insertEpoch', () => store.insertEpoch(epochRecord(2, null))],
      ['insertFirstEpoch', () => store.insertFirstEpoch(chainRecordOf(other, 3), epochRecordOf(other, 1, 0))],
      ['setStart', () => store.setStart(chainId, 2, { index: 0, payword: chain.b64(0) }, release)],
      ['updateLease', () => store.updateLease(chainId, 2, epochRecord(2, 0).holder, Date.parse(expiresAt) + 1)],
      ['markReleaseReported', () => store.markReleaseReported(chainId, 2)],
      ['setRelease', () => store.setRelease(chainId, 1, release)],
      ['markSuperseded', () => store.markSuperseded(chainId, 1)],
      ['createBatch', () => store.createBatch('k1', '{"items":[]}')],
      ['completeBatch', () => store.completeBatch('k1', '{}', [])],
      ['failBatch', () => store.failBatch('k1', '{}')],
      ['putServerWallet', () => store.putServerWallet(wallet)],
      [
        'recordWalletPurchase',
        () =>
          store.recordWalletPurchase({
            sessionHash: wallet.sessionHash,
            resource: 'a/1',
            chainId,
            index: 3,
            amountMinor: 3,
            description: 'A story',
            atMs: 1,
          }),
      ],
      ['dropNotes', () => store.dropNotes(chainId, 3)],
      ['deleteServerWallet', () => store.deleteServerWallet(wallet.sessionHash)],
    ];
    gate.holding = true;
    for (const [name, write] of writes) {
      const pending = watched(write());
      await waitUntil(() => gate.waiting.length === 1, 'one fsync held');
      await settle();
      assert.equal(pending.settled, false, `${name} resolved before its fsync`);
      gate.release();
      await pending.promise;
    }
  });

  it('refuses to answer as paid once an fsync has failed, and keeps refusing', async () => {
    const { store, gate } = await open();
    gate.failNext = true;
    await assert.rejects(store.recordPayment(pay(0, 1)), /EIO/);
    await assert.rejects(store.recordPayment(pay(1, 2)), /EIO/);
    await assert.rejects(store.markSuperseded(chainId, 1), /EIO/);
    // Nor does it read: what it would read may be the commit whose fsync failed.
    await assert.rejects(store.loadChain(chainId), /EIO/);
    await assert.rejects(store.entitlement(chainId, 'r1'), /EIO/);
    await assert.rejects(store.redeemable(), /EIO/);
    await assert.rejects(store.totals(), /EIO/);
  });

  it('refuses the same way when the failed fsync ran on the event loop, and commits nothing more', async () => {
    const db = await createTestDatabase('sqlite');
    drops.push(db.drop);
    const { gate, disk } = gatedDisk({ onLoop: true });
    const store = await createSpendStore(db.url, { disk, fsync: { place: 'loop' } });
    stores.push(store);
    const reader = await createSpendStore(db.url);
    stores.push(reader);
    await store.saveChain(chainRecord);
    await store.insertEpoch(epochRecord(1, 0));
    assert.equal(await store.recordPayment(pay(0, 1)), 'ok');
    gate.failNext = true;
    await assert.rejects(store.recordPayment(pay(1, 2)), /EIO/);
    await assert.rejects(store.recordPayment(pay(1, 2)), /EIO/);
    await assert.rejects(store.markSuperseded(chainId, 1), /EIO/);
    // The payment whose fsync failed was committed (another process may read it, and it was never answered); the
    // ones after the failure never reached the database.
    assert.equal((await reader.getEpoch(chainId, 1))?.last?.index, 2);
    assert.equal((await reader.getEpoch(chainId, 1))?.superseded, false);
  });

  it('leaves the fsync to SQLite in the commit when NETPAY_SQLITE_SYNCHRONOUS is FULL (the old way)', async () => {
    const db = await createTestDatabase('sqlite');
    drops.push(db.drop);
    const { gate, disk } = gatedDisk();
    process.env.NETPAY_SQLITE_SYNCHRONOUS = 'FULL';
    let store: SpendStore;
    try {
      store = await createSpendStore(db.url, { disk });
    } finally {
      delete process.env.NETPAY_SQLITE_SYNCHRONOUS;
    }
    stores.push(store);
    gate.holding = true;
    await store.saveChain(chainRecord);
    await store.insertEpoch(epochRecord(1, 0));
    assert.equal(await store.recordPayment(pay(0, 1)), 'ok');
    assert.equal(gate.waiting.length + gate.syncs, 0, 'no fsync of its own');
  });
});

describe('SQLite checkpoints in a worker thread', () => {
  it('copies the payments into the database file while the store keeps paying', async () => {
    const db = await createTestDatabase('sqlite');
    after(() => db.drop());
    const store = await createSpendStore(db.url, { checkpointIntervalMs: 0 });
    after(() => store.close());
    await store.saveChain(chainRecord);
    await store.insertEpoch(epochRecord(1, 0));
    for (let i = 1; i <= 30; i++) assert.equal(await store.recordPayment(pay(i - 1, i)), 'ok');
    // The database file alone (a copy without its -wal) holds what the worker checkpointed; the store's own
    // connection never checkpoints while it is open.
    const path = db.url.slice('sqlite:'.length);
    const lastInFile = () => {
      copyFileSync(path, `${path}.copy`);
      const copy = new Database(`${path}.copy`, { readonly: true });
      try {
        const row = copy.prepare('SELECT last_index FROM netpay_epoch_heads WHERE chain_id = ?').get(chainId) as
          | { last_index: number }
          | undefined;
        return row?.last_index;
      } catch {
        return undefined; // not even the tables are in the file yet
      } finally {
        copy.close();
      }
    };
    let last = lastInFile();
    // The checkpoint worker starts and copies in its own time: asked for 20 s at most on a loaded box.
    const deadline = Date.now() + 20_000;
    while (last !== 30 && Date.now() < deadline) {
      // Each completed fsync of a write asks the worker again (interval 0) while none runs.
      await store.markReleaseReported(chainId, 1);
      await new Promise((resolve) => setTimeout(resolve, 20));
      last = lastInFile();
    }
    assert.equal(last, 30);
  });
});

describe('the -wal file through its life', () => {
  it('fsyncs its directory when it is opened, coalesces waiters, and follows a new file after a checkpoint', async () => {
    const dir = tempDir();
    after(() => dir.remove());
    const database = join(dir.path, 'v.db');
    writeFileSync(database, 'db');
    writeFileSync(`${database}-wal`, 'frames');
    const calls: string[] = [];
    let holdSync: Promise<void> | undefined;
    const disk: Disk = {
      async openFile(path) {
        const file = await nodeDisk.openFile(path);
        if (!file) return undefined;
        const name = path.slice(dir.path.length + 1);
        calls.push(`open ${name}#${file.inode}`);
        return {
          inode: file.inode,
          unlinked: () => file.unlinked(),
          close: () => file.close(),
          async sync() {
            calls.push(`sync ${name}#${file.inode}`);
            await holdSync;
            await file.sync();
          },
        };
      },
      inodeAt: (path) => nodeDisk.inodeAt(path),
      async syncDirectory(path) {
        assert.equal(path, dir.path);
        calls.push('sync dir');
        await nodeDisk.syncDirectory(path);
      },
    };
    const wal = await WalDurability.open(database, { disk });
    const first = (await nodeDisk.inodeAt(`${database}-wal`)) as number;
    assert.deepEqual(calls, [`open v.db-wal#${first}`, 'sync dir']);

    // Five waiters while one fsync runs: the one running, then one more for all that came during it.
    calls.length = 0;
    let letGo!: () => void;
    holdSync = new Promise((resolve) => (letGo = resolve));
    const waiters = [wal.durable()];
    await settle();
    for (let i = 0; i < 4; i++) waiters.push(wal.durable());
    letGo();
    holdSync = undefined;
    await Promise.all(waiters);
    assert.deepEqual(calls, [`sync v.db-wal#${first}`, `sync v.db-wal#${first}`]);

    // The last connection checkpointed and removed the file; a new one took its place (another inode).
    calls.length = 0;
    writeFileSync(`${database}-wal.new`, 'new frames');
    renameSync(`${database}-wal.new`, `${database}-wal`);
    const second = (await nodeDisk.inodeAt(`${database}-wal`)) as number;
    assert.notEqual(second, first);
    await wal.durable();
    assert.deepEqual(calls, [
      `sync v.db-wal#${first}`,
      `open v.db#${await nodeDisk.inodeAt(database)}`,
      `sync v.db#${await nodeDisk.inodeAt(database)}`,
      `open v.db-wal#${second}`,
      'sync dir',
      `sync v.db-wal#${second}`,
    ]);
    await wal.close();
  });
});

describe('the stamp a read compares', () => {
  it('spares a read its fsync only while the stamp holds, and a stamp that throws only costs the fsync', async () => {
    const dir = tempDir();
    after(() => dir.remove());
    const database = join(dir.path, 'v.db');
    writeFileSync(database, 'db');
    writeFileSync(`${database}-wal`, 'frames');
    const { gate, disk } = gatedDisk();
    let stamp: () => string = () => 'a';
    const wal = await WalDurability.open(database, { disk, stamp: () => stamp() });
    await wal.durable();
    const afterWrite = gate.syncs;
    await wal.durableRead();
    assert.equal(gate.syncs, afterWrite, 'nothing committed since: no fsync');
    stamp = () => 'b';
    await wal.durableRead();
    assert.equal(gate.syncs, afterWrite + 1, 'a commit since: an fsync');
    await wal.durableRead();
    assert.equal(gate.syncs, afterWrite + 1, 'and none after it');
    stamp = () => {
      throw new Error('SQLITE_BUSY: database is locked');
    };
    await wal.durableRead();
    await wal.durableRead();
    assert.equal(gate.syncs, afterWrite + 3, 'no stamp: every read waits for an fsync');
    await wal.durable();
    wal.writable();
    await wal.close();
  });
});
