import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { createTestDatabase, tempDir } from '@netpay/service-kit/testing';
import { createSpendStore, type SpendStore } from '../src/spend-store.ts';
import { DEFAULT_FSYNC_POLICY, type Disk, nodeDisk, type SyncFile, WalDurability } from '../src/wal-durability.ts';
import { chainRecordOf, epochRecordOf } from './store-records.ts';
import { settle, waitUntil, watched } from './watched.ts';

// The -wal file's fsync on the event loop (`place: 'loop'`, `SyncFile.syncNow`): what the fstat asked right after
// each fsync (`SyncFile.unlinked`) must do there, as on the threadpool.

const fstatError = () => Object.assign(new Error('EIO: i/o error, fstat'), { code: 'EIO' });
const loopPolicy = { ...DEFAULT_FSYNC_POLICY, place: 'loop' as const };

describe('the fstat after an fsync on the event loop', () => {
  const chain = PaywordChain.generate(10);
  const chainId = chain.chainIdB64;
  const pay = (expected: number, index: number) => ({
    chainId,
    epoch: 1,
    expectedLastIndex: expected,
    index,
    payword: chain.b64(index),
    resource: `r${index}`,
    amountMinor: 1,
    atMs: Date.now(),
  });
  const stores: SpendStore[] = [];
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    for (const d of drops) await d();
  });

  it('fails the store for good when it errs after a successful fsync, as a failed fsync does', async () => {
    const db = await createTestDatabase('sqlite');
    drops.push(db.drop);
    // The real disk, but the next fstat of an open file fails once (a later one would succeed: "for good" is the
    // store's doing, not the disk's).
    const fault = { fstatFailsNext: false, loopSyncs: 0 };
    const disk: Disk = {
      ...nodeDisk,
      async openFile(path) {
        const file = await nodeDisk.openFile(path);
        if (!file?.syncNow) return file;
        const syncNow = file.syncNow;
        return {
          ...file,
          syncNow() {
            syncNow();
            fault.loopSyncs++;
          },
          unlinked() {
            if (fault.fstatFailsNext) {
              fault.fstatFailsNext = false;
              throw fstatError();
            }
            return file.unlinked();
          },
        };
      },
    };
    const store = await createSpendStore(db.url, { disk, fsync: { place: 'loop' } });
    stores.push(store);
    const reader = await createSpendStore(db.url);
    stores.push(reader);
    await store.saveChain(chainRecordOf(chain, 3));
    await store.insertEpoch(epochRecordOf(chain, 1, 0));
    assert.equal(await store.recordPayment(pay(0, 1)), 'ok');
    const before = fault.loopSyncs;
    assert.ok(before > 0, 'the fsyncs ran on the event loop');

    fault.fstatFailsNext = true;
    await assert.rejects(store.recordPayment(pay(1, 2)), /fstat/);
    assert.equal(fault.fstatFailsNext, false, 'the fstat was asked');
    assert.equal(fault.loopSyncs, before + 1, 'after a successful fsync on the loop');
    // The disk would answer now; the store still refuses every write and read, and fsyncs nothing more.
    await assert.rejects(store.recordPayment(pay(1, 2)), /fstat/);
    await assert.rejects(store.recordPayment(pay(2, 3)), /fstat/);
    await assert.rejects(store.markSuperseded(chainId, 1), /fstat/);
    await assert.rejects(store.loadChain(chainId), /fstat/);
    await assert.rejects(store.totals(), /fstat/);
    assert.equal(fault.loopSyncs, before + 1, 'no fsync after the failure');
    // The payment whose fstat failed was committed (never answered); nothing after it reached the database.
    assert.equal((await reader.getEpoch(chainId, 1))?.last?.index, 2);
    assert.equal((await reader.getEpoch(chainId, 1))?.superseded, false);
  });

  it('fails it the same way when the loop fsync runs in a round (a waiter queued behind another fsync)', async () => {
    // A fake disk: the -wal file at the path can be replaced (a new inode), the database file's fsync held.
    let walInode = 1;
    let nextInode = 10;
    const log: string[] = [];
    let letDatabaseSync: (() => void) | undefined;
    const fault = { fstatFailsNext: false };
    const disk: Disk = {
      async openFile(path) {
        const isWal = path.endsWith('-wal');
        const inode = isWal ? walInode : nextInode++;
        const name = `${isWal ? 'wal' : 'db'}#${inode}`;
        const file: SyncFile = {
          inode,
          async sync() {
            log.push(`sync ${name}`);
            if (!isWal) await new Promise<void>((resolve) => (letDatabaseSync = resolve));
          },
          syncNow() {
            log.push(`syncNow ${name}`);
          },
          unlinked() {
            if (fault.fstatFailsNext) {
              fault.fstatFailsNext = false;
              throw fstatError();
            }
            return isWal && inode !== walInode;
          },
          close: async () => {},
        };
        return file;
      },
      inodeAt: async (path) => (path.endsWith('-wal') ? walInode : 5),
      syncDirectory: async () => {},
    };
    const wal = await WalDurability.open('/nowhere/v.db', { disk, policy: loopPolicy });
    await wal.durable();
    walInode = 2;
    // This fsync finds the file replaced: a round follows the new one, held at the database file's fsync.
    const first = wal.durable();
    await waitUntil(() => letDatabaseSync !== undefined, 'the database file fsync held');
    // A commit made meanwhile waits for the next round, which fsyncs the new file on the loop: its fstat fails.
    const second = watched(wal.durable());
    fault.fstatFailsNext = true;
    letDatabaseSync?.();
    await first;
    await assert.rejects(second.promise, /fstat/);
    assert.equal(fault.fstatFailsNext, false);
    assert.equal(log.at(-1), 'syncNow wal#2', 'the fstat followed a successful fsync of the new file on the loop');
    await assert.rejects(wal.durable(), /fstat/);
    await assert.rejects(wal.durable(), /fstat/);
    assert.throws(() => wal.writable(), /fstat/);
    assert.throws(() => wal.readable(), /fstat/);
    assert.equal(log.at(-1), 'syncNow wal#2', 'nothing fsynced after the failure');
  });
});

describe('an fsync on the event loop that finds the -wal file replaced', () => {
  it('fsyncs the database file once, then follows the new file, before answering; never the old file twice', async () => {
    const dir = tempDir();
    after(() => dir.remove());
    const database = join(dir.path, 'v.db');
    writeFileSync(database, 'db');
    writeFileSync(`${database}-wal`, 'frames');
    // The real disk (a real rename, a real fstat link count), each call logged; the threadpool fsyncs can be held.
    const log: string[] = [];
    const held = new Map<string, () => void>();
    const disk: Disk = {
      async openFile(path) {
        const file = await nodeDisk.openFile(path);
        if (!file?.syncNow) return file;
        const name = `${path.slice(dir.path.length + 1)}#${file.inode}`;
        const syncNow = file.syncNow;
        log.push(`open ${name}`);
        return {
          inode: file.inode,
          unlinked: () => file.unlinked(),
          async close() {
            log.push(`close ${name}`);
            await file.close();
          },
          async sync() {
            log.push(`sync ${name}`);
            await new Promise<void>((resolve) => held.set(name, resolve));
            await file.sync();
          },
          syncNow() {
            log.push(`syncNow ${name}`);
            syncNow();
          },
        };
      },
      inodeAt: (path) => nodeDisk.inodeAt(path),
      async syncDirectory(path) {
        log.push('sync dir');
        await nodeDisk.syncDirectory(path);
      },
    };
    let synced = 0;
    const wal = await WalDurability.open(database, { disk, policy: loopPolicy, synced: () => synced++ });
    const first = (await nodeDisk.inodeAt(`${database}-wal`)) as number;
    await wal.durable();
    assert.equal(synced, 1);
    log.length = 0;

    // SQLite checkpointed and replaced the -wal file (another inode at the path).
    writeFileSync(`${database}-wal.new`, 'new frames');
    renameSync(`${database}-wal.new`, `${database}-wal`);
    const second = (await nodeDisk.inodeAt(`${database}-wal`)) as number;
    const dbInode = (await nodeDisk.inodeAt(database)) as number;
    assert.notEqual(second, first);

    const answer = watched(wal.durable().then(() => log.push('answer 1')));
    const release = async (name: string) => {
      await waitUntil(() => held.has(name), `sync ${name} held`);
      await settle();
      assert.equal(answer.settled, false, `answered before sync ${name} completed`);
      assert.equal(synced, 1, `synced heard of before sync ${name} completed`);
      held.get(name)?.();
      held.delete(name);
    };
    await release(`v.db#${dbInode}`);
    // A commit made while the new file is being followed waits for a round of its own.
    const later = watched(wal.durable().then(() => log.push('answer 2')));
    await release(`v.db-wal#${second}`);
    await answer.promise;
    await later.promise;

    assert.deepEqual(
      log.filter((l) => !l.startsWith('answer')),
      [
        `syncNow v.db-wal#${first}`, // the fsync on the loop, then the fstat: the name is gone
        `open v.db#${dbInode}`,
        `sync v.db#${dbInode}`, // what the checkpoint wrote
        `close v.db#${dbInode}`,
        `close v.db-wal#${first}`,
        `open v.db-wal#${second}`,
        'sync dir',
        `sync v.db-wal#${second}`,
        `syncNow v.db-wal#${second}`, // the later commit's round, back on the loop with the new file
      ],
    );
    assert.ok(log.indexOf('answer 1') > log.indexOf(`sync v.db-wal#${second}`));
    assert.ok(log.indexOf('answer 2') > log.indexOf(`syncNow v.db-wal#${second}`));
    assert.equal(synced, 3);
    assert.deepEqual(wal.fsyncs, { loop: 3, threadpool: 0 });
    await wal.close();
  });
});
