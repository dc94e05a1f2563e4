import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_FSYNC_POLICY,
  type Disk,
  type FsyncPlace,
  type SyncFile,
  WalDurability as Real,
} from '../src/wal-durability.ts';

/*
 * WalDurability's fsync rounds against a model disk, in random interleavings: durable() calls (some calling it again
 * the moment they settle, as the group commit's next batch does), threadpool fsyncs released in any order and some
 * failing, loop fsyncs slow or failing, the -wal file replaced, close() at any point; on the loop, the threadpool and
 * `auto` (on a fake clock). The gap between a round's end and the start of the round waiting for it (a setImmediate)
 * is stretched over any number of steps. Every run must hold: a durable() resolves only after a successful fsync of
 * the -wal file (at the path when it was called, or a newer one) that started after the call; nothing resolves after
 * a failed fsync, and no fsync starts after it; never two fsyncs at once; every promise settles once the disk has
 * answered; close() finishes. (Written by a review that also ran it against two broken copies: both were caught.)
 */
const WalDurability = Real;
const stats = { calls: 0, ok: 0, rejected: 0, pool: 0, loop: 0, failures: 0 };
type Op =
  | { k: 'durable'; chain?: number }
  | { k: 'release'; ok: boolean; which: number }
  | { k: 'loopFail' }
  | { k: 'loopTakes'; ms: number }
  | { k: 'macro' }
  | { k: 'replace' }
  | { k: 'close' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 30, arbitrary: fc.nat(3).map((chain) => ({ k: 'durable', chain }) as Op) },
  {
    weight: 25,
    arbitrary: fc.record({ k: fc.constant('release' as const), ok: fc.nat(60).map((n) => n > 0), which: fc.nat(3) }),
  },
  { weight: 1, arbitrary: fc.constant({ k: 'loopFail' } as Op) },
  { weight: 6, arbitrary: fc.constantFrom(0.1, 3, 9, 60).map((ms) => ({ k: 'loopTakes', ms }) as Op) },
  { weight: 20, arbitrary: fc.constant({ k: 'macro' } as Op) },
  { weight: 2, arbitrary: fc.constant({ k: 'replace' } as Op) },
  { weight: 1, arbitrary: fc.constant({ k: 'close' } as Op) },
);

async function drainMicro() {
  for (let i = 0; i < 40; i++) await Promise.resolve();
}

interface Fsync {
  id: number;
  inode: number;
  wal: boolean;
  start: number;
  end?: number;
  ok?: boolean;
}
interface Call {
  id: number;
  at: number;
  inodeAt: number;
  settledAt?: number;
  ok?: boolean;
  by?: number;
}

async function run(place: FsyncPlace, ops: Op[]) {
  let seq = 0;
  let clock = 0;
  let loopTakes = 0.1;
  let loopFailNext = false;
  let walInode = 1;
  let nextInode = 100;
  const fsyncs: Fsync[] = [];
  const held: { f: Fsync; resolve: () => void; reject: (e: Error) => void }[] = [];
  let firstFailureAt: number | undefined;
  const complete = (f: Fsync, ok: boolean) => {
    f.end = ++seq;
    f.ok = ok;
    if (!ok && firstFailureAt === undefined) firstFailureAt = f.end;
  };
  const disk: Disk = {
    async openFile(path) {
      const wal = path.endsWith('-wal');
      const inode = wal ? walInode : nextInode++;
      const file: SyncFile = {
        inode,
        sync() {
          const f: Fsync = { id: fsyncs.length, inode, wal, start: ++seq };
          fsyncs.push(f);
          return new Promise<void>((resolve, reject) => held.push({ f, resolve, reject }));
        },
        syncNow() {
          const f: Fsync = { id: fsyncs.length, inode, wal, start: ++seq };
          fsyncs.push(f);
          clock += loopTakes;
          if (loopFailNext) {
            loopFailNext = false;
            complete(f, false);
            throw Object.assign(new Error('EIO loop'), { code: 'EIO' });
          }
          complete(f, true);
        },
        unlinked: () => wal && inode !== walInode,
        close: async () => {},
      };
      return file;
    },
    inodeAt: async (path) => (path.endsWith('-wal') ? walInode : 5),
    syncDirectory: async () => {},
  };
  const wal = await WalDurability.open('/nowhere/v.db', {
    disk,
    policy: { ...DEFAULT_FSYNC_POLICY, place, now: () => clock, probeEveryMs: 20 },
  });
  const calls: Call[] = [];
  const problems: string[] = [];
  let closed: Promise<void> | undefined;
  let closeDone = false;
  const settle = (c: Call, ok: boolean) => {
    c.settledAt = ++seq;
    c.ok = ok;
    if (ok) {
      // which fsync resolved it: the latest successful WAL fsync that started after the call and has completed
      const by = fsyncs.filter(
        (f) => f.wal && f.ok && f.start > c.at && f.end! <= c.settledAt! && f.inode >= c.inodeAt,
      );
      if (by.length === 0)
        problems.push(`call ${c.id} (at ${c.at}) resolved at ${c.settledAt} with no WAL fsync started after it`);
      else c.by = by[0]?.id;
      // Calls one round resolves hear of it one after another, and what one does at once (a durable() that fails on
      // the loop) may come before the next hears: what counts is that an fsync covering the call ended before the
      // failure, not when its callback ran.
      const failed = firstFailureAt;
      if (failed !== undefined && failed < c.settledAt && !by.some((f) => (f.end as number) < failed))
        problems.push(
          `call ${c.id} resolved at ${c.settledAt} after a failure at ${failed}, covered by none before it`,
        );
    }
  };
  const durable = (chain = 0) => {
    const c: Call = { id: calls.length, at: ++seq, inodeAt: walInode };
    calls.push(c);
    let p: Promise<void>;
    try {
      p = wal.durable();
    } catch (e) {
      problems.push(`durable threw synchronously: ${e}`);
      return;
    }
    p.then(
      () => {
        settle(c, true);
        if (chain > 0) durable(chain - 1);
      },
      () => {
        settle(c, false);
        if (chain > 0) durable(chain - 1);
      },
    );
  };
  for (const op of ops) {
    await drainMicro();
    switch (op.k) {
      case 'durable':
        durable(op.chain);
        break;
      case 'release': {
        if (held.length === 0) break;
        const h = held.splice(op.which % held.length, 1)[0];
        if (!h) break;
        const ok = op.ok;
        complete(h.f, ok);
        if (ok) h.resolve();
        else h.reject(Object.assign(new Error('EIO pool'), { code: 'EIO' }));
        break;
      }
      case 'loopFail':
        loopFailNext = true;
        break;
      case 'loopTakes':
        loopTakes = op.ms;
        break;
      case 'macro':
        await new Promise((r) => setImmediate(r));
        break;
      case 'replace':
        walInode = nextInode++;
        break;
      case 'close':
        if (!closed)
          closed = wal.close().then(() => {
            closeDone = true;
          });
        break;
    }
  }
  // drain: answer every held fsync successfully until nothing is held for a while
  for (let i = 0; i < 200; i++) {
    await drainMicro();
    await new Promise((r) => setImmediate(r));
    if (held.length) {
      const h = held.shift()!;
      complete(h.f, true);
      h.resolve();
    } else if (calls.every((c) => c.settledAt !== undefined)) break;
  }
  await drainMicro();
  for (const c of calls) if (c.settledAt === undefined) problems.push(`call ${c.id} (at ${c.at}) never settled`);
  // at most one WAL fsync in flight at a time
  const ivs = fsyncs.filter((f) => f.end !== undefined).sort((a, b) => a.start - b.start);
  for (let i = 1; i < ivs.length; i++) {
    const [before, now] = [ivs[i - 1] as Fsync, ivs[i] as Fsync];
    if (now.start < (before.end as number)) problems.push(`fsync ${now.id} started while ${before.id} ran`);
  }
  if (firstFailureAt !== undefined) {
    const after = fsyncs.filter((f) => f.start > firstFailureAt!);
    if (after.length) problems.push(`${after.length} fsync(s) after the failure at ${firstFailureAt}`);
  }
  if (!closed)
    closed = wal.close().then(() => {
      closeDone = true;
    });
  for (let i = 0; i < 50 && !closeDone; i++) {
    await new Promise((r) => setImmediate(r));
    const h = held.shift();
    if (h) {
      complete(h.f, true);
      h.resolve();
    }
  }
  if (!closeDone) problems.push('close() never finished');
  if (held.length) problems.push(`${held.length} fsync(s) started and still held at the end`);
  stats.calls += calls.length;
  stats.ok += calls.filter((c) => c.ok).length;
  stats.rejected += calls.filter((c) => c.ok === false).length;
  stats.pool += wal.fsyncs.threadpool;
  stats.loop += wal.fsyncs.loop;
  stats.failures += firstFailureAt !== undefined ? 1 : 0;
  return { problems, calls, fsyncs };
}

describe('WalDurability rounds, randomized against a model disk', () => {
  it('holds the invariant', async () => {
    let runs = 0;
    const n = 300;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<FsyncPlace>('loop', 'threadpool', 'auto'),
        fc.array(opArb, { minLength: 1, maxLength: 80, size: 'max' }),
        async (place, ops) => {
          runs++;
          const r = await run(place, ops);
          if (r.problems.length) throw new Error(`${place}: ${r.problems.join('; ')}`);
        },
      ),
      { numRuns: n, verbose: 1 },
    );
    // Both outcomes were exercised: a model that never resolves (or never fails) would test nothing.
    assert.ok(
      runs === n && stats.ok > 0 && stats.rejected > 0 && stats.pool > 0 && stats.loop > 0,
      JSON.stringify(stats),
    );
  });
});
