/**
 * The real disk with a hand on its fsyncs, for store tests: while `holding`, each fsync of a file the store opened
 * for fsync (its -wal file) waits until the test lets it run (in order), and `failNext` makes the next one fail as a
 * disk would (EIO). Without `onLoop` the files have no fsync on the event loop, so the store fsyncs on the
 * threadpool, where a test can hold it. Everything else is the real disk.
 */
import assert from 'node:assert/strict';
import { type Disk, nodeDisk } from '../src/wal-durability.ts';

export function gatedDisk(options: { onLoop?: boolean } = {}) {
  const waiting: (() => void)[] = [];
  const gate = {
    holding: false,
    failNext: false,
    /** Fsyncs that ran to the end. */
    syncs: 0,
    waiting,
    /** Lets the oldest held fsync run. */
    release() {
      const next = waiting.shift();
      assert.ok(next, 'no fsync is waiting');
      next();
    },
    /** Holds nothing from now on, and lets every held fsync run. */
    open() {
      gate.holding = false;
      for (const next of waiting.splice(0)) next();
    },
  };
  const disk: Disk = {
    ...nodeDisk,
    async openFile(path) {
      const file = await nodeDisk.openFile(path);
      if (!file) return undefined;
      return {
        inode: file.inode,
        unlinked: () => file.unlinked(),
        close: () => file.close(),
        async sync() {
          if (gate.holding) await new Promise<void>((resolve) => waiting.push(resolve));
          if (gate.failNext) {
            gate.failNext = false;
            throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
          }
          await file.sync();
          gate.syncs++;
        },
        // With `onLoop`, the store may fsync on the event loop too: such an fsync cannot be held, only failed.
        ...(options.onLoop && file.syncNow
          ? {
              syncNow() {
                if (gate.failNext) {
                  gate.failNext = false;
                  throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
                }
                file.syncNow?.();
                gate.syncs++;
              },
            }
          : {}),
      };
    },
  };
  return { gate, disk };
}
