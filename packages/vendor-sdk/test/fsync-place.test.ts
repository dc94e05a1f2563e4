import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { createTestDatabase } from '@netpay/service-kit/testing';
import { createSpendStore, type SpendStore } from '../src/spend-store.ts';
import {
  DEFAULT_FSYNC_POLICY,
  type Disk,
  type FsyncPlace,
  type FsyncPolicy,
  fsyncPlaceOf,
  nodeDisk,
  WalDurability,
} from '../src/wal-durability.ts';
import { chainRecordOf, epochRecordOf } from './store-records.ts';

// Where the -wal file's fsync runs (wal-durability.ts): on the event loop while the disk is fast, on the threadpool
// when it is slow, and the order of commit, fsync and answer the same either way.

/**
 * A disk whose fsyncs take what the test says on a clock the test owns: each fsync on the loop advances the clock by
 * the next of `takes` (ms). Fsyncs on the threadpool take no clock time. `failNow` makes the next loop fsync fail.
 */
function clockedDisk(takes: () => number) {
  let clock = 0;
  const log: string[] = [];
  const control = { failNow: false, now: () => clock, advance: (ms: number) => (clock += ms), log };
  const disk: Disk = {
    async openFile() {
      return {
        inode: 1,
        unlinked: () => false,
        close: async () => {},
        async sync() {
          log.push('threadpool');
        },
        syncNow() {
          if (control.failNow) {
            control.failNow = false;
            throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
          }
          clock += takes();
          log.push('loop');
        },
      };
    },
    inodeAt: async () => 1,
    syncDirectory: async () => {},
  };
  return { disk, control };
}

async function durability(place: FsyncPlace, takes: () => number, policy: Partial<FsyncPolicy> = {}) {
  const { disk, control } = clockedDisk(takes);
  const wal = await WalDurability.open('/nowhere/v.db', {
    disk,
    policy: { ...DEFAULT_FSYNC_POLICY, place, now: control.now, ...policy },
  });
  return { wal, control };
}

/** Runs `n` fsyncs one after another and says where each ran. */
async function fsyncs(wal: WalDurability, control: { log: string[] }, n: number): Promise<string[]> {
  control.log.length = 0;
  for (let i = 0; i < n; i++) await wal.durable();
  return [...control.log];
}

describe('where the WAL is fsynced', () => {
  it('keeps fast fsyncs on the event loop (auto)', async () => {
    const { wal, control } = await durability('auto', () => 0.2);
    assert.deepEqual(await fsyncs(wal, control, 50), Array(50).fill('loop'));
    assert.deepEqual(wal.fsyncs, { loop: 50, threadpool: 0 });
  });

  it('moves them to the threadpool when the disk is slow on average, and tries the loop again later', async () => {
    const { wal, control } = await durability('auto', () => 3, { fastMs: 1, stallCapMs: 50, probeEveryMs: 10_000 });
    const first = await fsyncs(wal, control, 10);
    // 3 ms counts in full (under 4 × 1 ms): the first fsync's average is already over 1 ms.
    assert.deepEqual(first, ['loop', ...Array(9).fill('threadpool')]);
    control.advance(10_000);
    // One probe on the loop, still slow: back to the threadpool for another while.
    assert.deepEqual(await fsyncs(wal, control, 3), ['loop', 'threadpool', 'threadpool']);
  });

  it('comes back to the loop for good when the probe finds the disk fast again', async () => {
    let ms = 5;
    const { wal, control } = await durability('auto', () => ms, { fastMs: 1, probeEveryMs: 1_000 });
    assert.deepEqual(await fsyncs(wal, control, 2), ['loop', 'threadpool']);
    ms = 0.1;
    control.advance(1_000);
    assert.deepEqual(await fsyncs(wal, control, 20), Array(20).fill('loop'));
  });

  it('lets one fsync stuck behind a checkpoint pass without leaving the loop, but not one past the cap', async () => {
    const takes = [0.2, 0.2, 0.2, 20, 0.2, 0.2, 0.2, 60, 0.2, 0.2];
    let i = 0;
    const { wal, control } = await durability('auto', () => takes[i++] ?? 0.2, { fastMs: 1, stallCapMs: 50 });
    // 20 ms counts as 4 ms in the average (0.2 → 0.43): still fast. 60 ms is over the cap: off the loop at once.
    assert.deepEqual(await fsyncs(wal, control, 10), [...Array(8).fill('loop'), 'threadpool', 'threadpool']);
  });

  it('moves them off the loop after two slow fsyncs in a row, each under the cap', async () => {
    const takes = [0.2, 10, 0.2, 10, 10, 0.2];
    let i = 0;
    const { wal, control } = await durability('auto', () => takes[i++] ?? 0.2, { fastMs: 1, stallCapMs: 50 });
    assert.deepEqual(await fsyncs(wal, control, 6), ['loop', 'loop', 'loop', 'loop', 'loop', 'threadpool']);
  });

  it('moves them off the loop when slow fsyncs that never come in a row add up (one in five at 45 ms)', async () => {
    let i = 0;
    const { wal, control } = await durability('auto', () => (++i % 5 === 0 ? 45 : 0.1));
    const places = await fsyncs(wal, control, 200);
    const onLoop = places.indexOf('threadpool');
    assert.ok(onLoop > 0 && onLoop < 30, `left the loop after ${onLoop} fsyncs`);
    // Then on the threadpool until the probe is due (the clock only moves with loop fsyncs here).
    assert.deepEqual(places.slice(onLoop), Array(200 - onLoop).fill('threadpool'));
  });

  it('comes back to the loop under steady load: the next batch asks for its fsync as the last one is answered', async () => {
    let ms = 5;
    const { wal, control } = await durability('auto', () => ms, { fastMs: 1, probeEveryMs: 1_000 });
    await wal.durable();
    ms = 0.1;
    control.log.length = 0;
    // As the group commit does: each durable() is asked for inside the answer of the one before, never idle.
    let n = 0;
    await new Promise<void>((done, fail) => {
      const again = () => {
        if (n === 3) control.advance(1_000);
        if (n++ === 10) return done();
        wal.durable().then(again, fail);
      };
      again();
    });
    assert.deepEqual(control.log, [...Array(3).fill('threadpool'), ...Array(7).fill('loop')]);
  });

  it('never runs them on the loop when told threadpool, and always when told loop', async () => {
    const pool = await durability('threadpool', () => 0.1);
    assert.deepEqual(await fsyncs(pool.wal, pool.control, 5), Array(5).fill('threadpool'));
    const loop = await durability('loop', () => 30);
    assert.deepEqual(await fsyncs(loop.wal, loop.control, 5), Array(5).fill('loop'));
  });

  it('drops what a throwing metrics callback throws: the fsync succeeded', async () => {
    const { disk } = clockedDisk(() => 0.1);
    for (const place of ['loop', 'threadpool'] as const) {
      const wal = await WalDurability.open('/nowhere/v.db', {
        disk,
        policy: { ...DEFAULT_FSYNC_POLICY, place },
        fsynced: () => {
          throw new Error('a broken metric');
        },
      });
      await wal.durable();
      await wal.durable();
      wal.writable();
    }
  });

  it('fails the store for good when an fsync on the loop fails', async () => {
    const { wal, control } = await durability('auto', () => 0.1);
    await wal.durable();
    control.failNow = true;
    await assert.rejects(wal.durable(), /EIO/);
    // The kernel may have dropped the pages it could not write: a later fsync proves nothing.
    await assert.rejects(wal.durable(), /EIO/);
    assert.throws(() => wal.writable(), /EIO/);
    assert.deepEqual(control.log, ['loop']);
  });

  it('reads NETPAY_SQLITE_FSYNC strictly', () => {
    assert.equal(fsyncPlaceOf(undefined), 'auto');
    assert.equal(fsyncPlaceOf(''), 'auto');
    assert.equal(fsyncPlaceOf('loop'), 'loop');
    assert.equal(fsyncPlaceOf('threadpool'), 'threadpool');
    assert.throws(() => fsyncPlaceOf('Loop'), /NETPAY_SQLITE_FSYNC must be one of auto, loop, threadpool/);
    assert.throws(() => fsyncPlaceOf('off'), /NETPAY_SQLITE_FSYNC/);
  });
});

describe('a store fsyncing on the event loop', () => {
  const chain = PaywordChain.generate(20);
  const chainId = chain.chainIdB64;
  const stores: SpendStore[] = [];
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    for (const d of drops) await d();
  });

  it('commits, then fsyncs, then answers each payment, on the real disk', async () => {
    const db = await createTestDatabase('sqlite');
    drops.push(db.drop);
    const order: string[] = [];
    const disk: Disk = {
      ...nodeDisk,
      async openFile(path) {
        const file = await nodeDisk.openFile(path);
        if (!file?.syncNow) return file;
        const syncNow = file.syncNow;
        return {
          ...file,
          syncNow() {
            order.push('fsync');
            syncNow();
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
    order.length = 0;
    const payments = [1, 2, 3].map((index) =>
      store
        .recordPayment({
          chainId,
          epoch: 1,
          expectedLastIndex: index - 1,
          index,
          payword: chain.b64(index),
          resource: `r${index}`,
          amountMinor: 1,
          atMs: Date.now(),
        })
        .then((result) => order.push(`answer ${index} ${result}`)),
    );
    await Promise.all(payments);
    // One group commit, one fsync for all three, then the answers.
    assert.deepEqual(order, ['fsync', 'answer 1 ok', 'answer 2 ok', 'answer 3 ok']);
    assert.equal((await reader.getEpoch(chainId, 1))?.last?.index, 3);
  });

  it('refuses a misspelt NETPAY_SQLITE_FSYNC at start, leaving nothing open', async () => {
    const db = await createTestDatabase('sqlite');
    drops.push(db.drop);
    process.env.NETPAY_SQLITE_FSYNC = 'sometimes';
    try {
      await assert.rejects(createSpendStore(db.url), /NETPAY_SQLITE_FSYNC must be one of/);
    } finally {
      delete process.env.NETPAY_SQLITE_FSYNC;
    }
  });
});
