import { fdatasyncSync, fstatSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/*
 * Durable SQLite commits without an fsync on the event loop.
 *
 * With `synchronous = FULL` every commit of the payment journal fsyncs the WAL inside the commit, on the event loop,
 * which measured 24-43 % of a loaded vendor's time. The store instead opens SQLite with `synchronous = NORMAL` in
 * WAL mode: a commit appends its frames (ending in a commit frame) to the -wal file with write(2) and returns. A
 * commit is then made durable by an fsync of the -wal file on libuv's threadpool, and no mutating store method
 * resolves before an fsync that *started after its commit* has completed: nothing is answered as paid, no release
 * is handed out and no start is relied on that a power cut could take back.
 *
 * Why this is enough, through the WAL's life:
 * - Recovery replays the WAL up to its last valid commit frame. Once an fsync that began after our commit returned,
 *   our commit frame and everything before it are on disk, so recovery keeps the commit.
 * - A checkpoint copies WAL frames into the database file. In NORMAL mode SQLite fsyncs the WAL before copying and
 *   the database file after a completed checkpoint, so a commit that a checkpoint moved is durable in the database
 *   file even if the WAL is later restarted (overwritten from its start, same inode) before our own fsync ran.
 *   Restarting the WAL writes a new header that SQLite itself fsyncs (in the committing call, once per restart).
 * - The -wal file is created when the first connection opens the database in WAL mode: a new file survives a power
 *   cut only once its directory is fsynced too, so the directory is fsynced whenever the file is (re)opened here.
 * - The last connection to close checkpoints fully and deletes the -wal file; a later opener creates a new one
 *   (another inode). While this store is open it is not the last connection, so this should not happen to the file
 *   it holds; still, after each fsync the open file is asked whether it lost its name (fstat's link count): if it
 *   did (or when no file was open), the database file is fsynced (what the checkpoint wrote), the file now at the
 *   path is opened, its directory fsynced, and the file fsynced, all before the waiters are answered.
 * - One fsync is in flight at a time. A commit that lands while one runs waits for the next one, which starts when
 *   the running one ends and serves every commit made meanwhile (group commit of the fsyncs themselves).
 * - If an fsync fails, the kernel may already have dropped the dirty pages it could not write, and a later fsync can
 *   succeed without them. So a failed fsync fails the store: that write and every later one reject (nothing more is
 *   answered as paid), and so does every read (the commit whose fsync failed is readable, and a retry of its payment
 *   would be served from it as paid), until the process is restarted and SQLite recovers from what is on disk.
 *
 * Where the fsync runs (`FsyncPlace`). Handing an fsync to the threadpool is not free: a worker thread wakes, then the
 * event loop is woken to hear of it, and on a core the loop shares (one vendor process a core, or a box whose other
 * cores are busy) each wake-up preempts it. Measured on a 2-core box with the vendor on one core: about five
 * context switches an fsync, and the paid route 10-20 % slower than with the fsync on the loop, on a disk whose
 * fsync takes 0.05-0.2 ms. A fast fsync on the loop costs less loop time than handing it off; a slow one (a
 * spinning disk, a busy network volume: the milliseconds that once took 24-43 % of a loaded vendor's time) must
 * never run there. So by default (`auto`) the store fsyncs on the loop while, over the last few dozen fsyncs there,
 * the average is under `FAST_FSYNC_MS` with each slow one (over 8 ms) counted as 8 ms, the plain average is under
 * 8 ms, no two slow ones come in a row and none passes `FSYNC_STALL_CAP_MS`. Otherwise the fsyncs go to the
 * threadpool, and after `PROBE_EVERY_MS` one is tried on the loop again. So a slow disk stalls the loop for at most
 * two fsyncs (each under the cap) in a row, and then once per probe; slow fsyncs that never come in a row cannot
 * hold the loop more than a bounded share of its time; a lone slow fsync between fast ones (one behind a
 * checkpoint's writes) stays, as the fsync in a FULL commit would. The first fsync after the store opens runs on
 * the loop whatever it takes. Either way the order above holds: one fsync at a time, each answering only commits
 * made before it started.
 */

/** A file opened for fsync. */
export interface SyncFile {
  /** The inode it was opened at. */
  readonly inode: number;
  sync(): Promise<void>;
  /** The same fsync on the calling thread (the event loop); a file without it is only ever fsynced off the loop. */
  syncNow?(): void;
  /**
   * Whether the file has lost its name (deleted, or another file moved over it): a synchronous fstat on the open
   * descriptor, a microsecond on the event loop instead of a path lookup sent to the threadpool per fsync.
   */
  unlinked(): boolean;
  close(): Promise<void>;
}

/** The disk, as the durable commit needs it: a port, so a test can slow an fsync down or watch the order of calls. */
export interface Disk {
  /** Opens a file to fsync it; undefined when it does not exist. */
  openFile(path: string): Promise<SyncFile | undefined>;
  /** The inode at a path now; undefined when nothing is there. */
  inodeAt(path: string): Promise<number | undefined>;
  /** Fsyncs a directory, so the names of files created in it are durable. */
  syncDirectory(path: string): Promise<void>;
}

function missing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/** The real disk, through node:fs (every call runs on libuv's threadpool, off the event loop). */
export const nodeDisk: Disk = {
  async openFile(path) {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (missing(error)) return undefined;
      throw error;
    }
    const { ino } = await handle.stat();
    return {
      inode: ino,
      // fdatasync, as SQLite syncs its WAL: the data and the size when it grew, without the times an fsync adds.
      sync: () => handle.datasync(),
      syncNow: () => fdatasyncSync(handle.fd),
      close: () => handle.close(),
      unlinked: () => fstatSync(handle.fd).nlink === 0,
    };
  },
  async inodeAt(path) {
    try {
      return (await stat(path)).ino;
    } catch (error) {
      if (missing(error)) return undefined;
      throw error;
    }
  },
  async syncDirectory(path) {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};

/** When the store's writes are durable. */
export interface Durability {
  /** Resolves once everything committed before the call is on disk; rejects when it cannot be made so. */
  durable(): Promise<void>;
  /**
   * The same for what a read just saw, without an fsync when nothing was committed (by any connection) since an
   * fsync that has completed began: all of it is on disk already.
   */
  durableRead?(): Promise<void>;
  /**
   * Throws once the store cannot be made durable (an fsync failed): a write is refused before it commits, since
   * another process on the file would read what it committed, sign releases over it and redeem it.
   */
  writable(): void;
  /**
   * Throws once an fsync has failed: the store then answers no reads either. What it would read may be a commit
   * that never reached the disk (the payment whose fsync failed, which a retry would otherwise find and serve as
   * paid), and a read that decides an answer must not rest on it. Until the process restarts on what is on disk.
   */
  readable?(): void;
  /**
   * What a payment batch must wait for before it commits (SQLite: a checkpoint when its WAL has grown large), or
   * undefined when it may commit now.
   */
  beforeCommit?(): Promise<void> | undefined;
  close(): Promise<void>;
}

/**
 * Nothing to wait for after the commit: PostgreSQL's and SQLite's in FULL mode are durable when they return; in
 * NORMAL mode chosen by the operator (NETPAY_SQLITE_SYNCHRONOUS) they never are, by that choice.
 */
export const WAIT_FOR_COMMIT: Durability = {
  durable: () => Promise.resolve(),
  writable: () => {},
  close: () => Promise.resolve(),
};

/**
 * Where the -wal file's fsync runs: `auto` on the event loop while it is fast, else on the threadpool (see the top of
 * this file); `loop` always on the loop; `threadpool` never on it.
 */
export type FsyncPlace = 'auto' | 'loop' | 'threadpool';
export const FSYNC_PLACES: readonly FsyncPlace[] = ['auto', 'loop', 'threadpool'];

/**
 * The typical fsync `auto` keeps on the event loop: a moving average of the last few dozen, each counted as at most
 * `SLOW_COUNTS_AS` times this (so that one fsync stuck behind a checkpoint's writes, measured up to 20 ms here, does
 * not move every later one off the loop). Slower, and the next ones run on the threadpool.
 */
export const FAST_FSYNC_MS = 2;

/** What one slow fsync counts as in `auto`'s average, in multiples of its limit. */
const SLOW_COUNTS_AS = 4;

/** The longest single fsync `auto` lets stall the event loop: longer, and the next ones run on the threadpool. */
export const FSYNC_STALL_CAP_MS = 50;

/** After a slow fsync, how long `auto` keeps the fsyncs on the threadpool before it tries the loop again. */
export const PROBE_EVERY_MS = 1_000;

/** Where the fsyncs run, and the clock that times them (a test's clock makes a disk slow). */
export interface FsyncPolicy {
  place: FsyncPlace;
  fastMs: number;
  stallCapMs: number;
  probeEveryMs: number;
  /** Milliseconds, monotonic. */
  now(): number;
}

export const DEFAULT_FSYNC_POLICY: FsyncPolicy = {
  place: 'auto',
  fastMs: FAST_FSYNC_MS,
  stallCapMs: FSYNC_STALL_CAP_MS,
  probeEveryMs: PROBE_EVERY_MS,
  now: () => performance.now(),
};

/** The place NETPAY_SQLITE_FSYNC names, `auto` when unset; throws on anything else (a typo is not a default). */
export function fsyncPlaceOf(value: string | undefined): FsyncPlace {
  if (value === undefined || value === '') return 'auto';
  const place = FSYNC_PLACES.find((p) => p === value);
  if (!place) throw new Error(`NETPAY_SQLITE_FSYNC must be one of ${FSYNC_PLACES.join(', ')}, not ${value}`);
  return place;
}

/** How a WalDurability is opened; every field has the production default. */
export interface WalDurabilityOptions {
  /** The disk (a test slows it down or watches it). */
  disk?: Disk;
  /** Hears of every fsync that completed (writes are going on: time for a checkpoint, perhaps). */
  synced?: () => void;
  /** Where the fsyncs run. */
  policy?: FsyncPolicy;
  /** Hears where each fsync of the -wal file ran and how long it took (metrics); must not throw. */
  fsynced?: (place: 'loop' | 'threadpool', seconds: number) => void;
  /**
   * What the database holds, as a value that changes whenever any connection commits (this connection's total
   * changes and the others' data version); undefined when it cannot tell (a transaction is open here). Without it
   * every read waits for an fsync of its own.
   */
  stamp?: () => string | undefined;
}

/** An fsync, and the promise that settles when it has run. */
interface Round {
  promise: Promise<void>;
  start(): void;
}

/** The fsync of a SQLite database's -wal file after its commits, off the event loop (see the top of this file). */
export class WalDurability implements Durability {
  readonly #databasePath: string;
  readonly #walPath: string;
  readonly #disk: Disk;
  #file: SyncFile | undefined;
  #running: Promise<void> | undefined;
  #next: Round | undefined;
  #failed: unknown;
  #closed = false;
  readonly #policy: FsyncPolicy;
  /** When `auto` last saw the loop's fsyncs slow (they stay on the threadpool for a while after). */
  #slowAt: number | undefined;
  /** The moving average of the loop's fsyncs since they last came back to it, in milliseconds. */
  #typicalMs: number | undefined;
  /** The same average with every fsync counted in full. */
  #meanMs: number | undefined;
  /** Whether the loop's last fsync was slow (over `SLOW_COUNTS_AS` times the limit). */
  #lastSlow = false;
  /** Fsyncs run on the event loop and on the threadpool, for tests and operators. */
  readonly fsyncs = { loop: 0, threadpool: 0 };

  readonly #synced: () => void;
  readonly #fsynced: (place: 'loop' | 'threadpool', seconds: number) => void;
  readonly #stamp: (() => string | undefined) | undefined;
  /** The database's stamp when the last fsync that completed began: all it held then is on disk. */
  #durableStamp: string | undefined;

  private constructor(databasePath: string, options: WalDurabilityOptions) {
    this.#databasePath = databasePath;
    this.#walPath = `${databasePath}-wal`;
    this.#disk = options.disk ?? nodeDisk;
    this.#synced = options.synced ?? (() => {});
    this.#policy = options.policy ?? DEFAULT_FSYNC_POLICY;
    this.#stamp = options.stamp;
    const fsynced = options.fsynced;
    // A metrics callback must not turn an fsync that succeeded into a failure of the store.
    this.#fsynced = fsynced
      ? (place, seconds) => {
          try {
            fsynced(place, seconds);
          } catch {
            // Dropped.
          }
        }
      : () => {};
  }

  /** Starts fsyncing the -wal file of the database at `databasePath` (already opened by SQLite in WAL mode). */
  static async open(databasePath: string, options: WalDurabilityOptions = {}): Promise<WalDurability> {
    const wal = new WalDurability(databasePath, options);
    await wal.#reopen();
    return wal;
  }

  durable(): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (this.#closed) return Promise.reject(new Error('the spend store is closed'));
    // One in flight: a commit made while it runs may have missed it, so it waits for the next round (also while
    // that round is about to start: see `#round`).
    if (this.#running || this.#next) {
      this.#next ??= this.#round();
      return this.#next.promise;
    }
    // The common case on a fast disk: the fsync now, on the loop, with no round (no promise of its own to wait for).
    const file = this.#file;
    let moved = false;
    if (file?.syncNow && this.#onLoop()) {
      const outcome = this.#syncOnLoop(file, file.syncNow, this.#stampNow());
      if (outcome === 'synced') return Promise.resolve();
      if (outcome !== 'moved') return Promise.reject(outcome.failed);
      moved = true;
    }
    // Off the loop, or the file lost its name after the fsync that just ran (the round then only follows the new one).
    const round = this.#round(moved);
    round.start();
    return round.promise;
  }

  durableRead(): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (this.#closed) return Promise.reject(new Error('the spend store is closed'));
    // A reader's first payment reads the chain twice before its claim: on a store nobody wrote to meanwhile, each
    // read cost an fsync of its own, in line before the answer (and each fsync's tail was the first payment's).
    const now = this.#stampNow();
    if (now !== undefined && now === this.#durableStamp) return Promise.resolve();
    return this.durable();
  }

  /** The database's stamp; undefined when it cannot be read (the next read then waits for an fsync, as before). */
  #stampNow(): string | undefined {
    try {
      return this.#stamp?.();
    } catch {
      // A busy database or a closed connection: a stamp is only ever a shortcut, never a reason to fail the store.
      return undefined;
    }
  }

  /** Whether the next fsync runs on the event loop. */
  #onLoop(): boolean {
    const { place, probeEveryMs, now } = this.#policy;
    if (place !== 'auto') return place === 'loop';
    return this.#slowAt === undefined || now() - this.#slowAt >= probeEveryMs;
  }

  /**
   * One fsync on the loop, timed; nothing else runs meanwhile, so no commit can slip in between. 'moved' when the
   * file lost its name (this fsync went to the old file; the new one must be followed before anyone is answered).
   */
  #syncOnLoop(
    file: SyncFile,
    syncNow: () => void,
    /** The database's stamp taken before this fsync began (recorded once it has completed). */
    stamp: string | undefined,
  ): 'synced' | 'moved' | { failed: unknown } {
    const { now } = this.#policy;
    const started = now();
    let moved: boolean;
    try {
      syncNow.call(file);
      moved = file.unlinked();
    } catch (error) {
      this.#failed ??= error;
      return { failed: this.#failed };
    }
    const ended = now();
    this.fsyncs.loop++;
    this.#fsynced('loop', (ended - started) / 1000);
    this.#judge(ended - started, ended);
    if (moved) return 'moved';
    this.#durableStamp = stamp;
    this.#synced();
    return 'synced';
  }

  /**
   * Whether the disk is still fast enough for the loop (`auto`), after an fsync there took `took` ms. One slow fsync
   * (behind a checkpoint's writes, say) may be a hiccup and counts as at most `SLOW_COUNTS_AS` times the limit in the
   * average; two slow ones in a row, a slow average, or one past the cap are the disk, and the fsyncs leave the loop.
   */
  #judge(took: number, at: number): void {
    const { fastMs, stallCapMs } = this.#policy;
    const slow = took > SLOW_COUNTS_AS * fastMs;
    const counted = Math.min(took, SLOW_COUNTS_AS * fastMs);
    const typical = this.#typicalMs === undefined ? counted : this.#typicalMs + (counted - this.#typicalMs) / 16;
    // Uncapped, so that slow fsyncs that never come two in a row (one in five at 45 ms) still add up: the loop's
    // share of time in fsyncs stays bounded, not only each stall.
    const mean = this.#meanMs === undefined ? took : this.#meanMs + (took - this.#meanMs) / 16;
    const tooSlow = typical > fastMs || mean > SLOW_COUNTS_AS * fastMs;
    if (took > stallCapMs || tooSlow || (slow && this.#lastSlow)) {
      this.#slowAt = at;
      this.#typicalMs = undefined;
      this.#meanMs = undefined;
      this.#lastSlow = false;
    } else {
      this.#slowAt = undefined;
      this.#typicalMs = typical;
      this.#meanMs = mean;
      this.#lastSlow = slow;
    }
  }

  writable(): void {
    if (this.#failed !== undefined) throw this.#failed;
    if (this.#closed) throw new Error('the spend store is closed');
  }

  readable(): void {
    if (this.#failed !== undefined) throw this.#failed;
  }

  #round(followOnly = false): Round {
    let start!: () => void;
    const promise = new Promise<void>((resolve, reject) => {
      start = () => {
        const stamp = this.#stampNow();
        const running = followOnly ? this.#followNewFile() : this.#sync(stamp);
        this.#running = running;
        // The round is over before its waiters hear of it: a commit they make at once (the group commit's next
        // batch) asks for a fsync of its own, on the loop when the disk allows, instead of joining a round that
        // already ran. A round that was waiting (a read or a write asked while this one ran) starts only once they
        // have been answered, so that such a commit joins it instead of waiting for it and then for one more (after
        // a failure it rejects at once, the same way).
        const over = () => {
          this.#running = undefined;
          if (this.#next) setImmediate(this.#startNext);
        };
        running.then(
          () => {
            this.#durableStamp = stamp;
            over();
            resolve();
          },
          (error: unknown) => {
            this.#failed ??= error;
            over();
            reject(error);
          },
        );
      };
    });
    return { promise, start: () => start() };
  }

  readonly #startNext = (): void => {
    // Never two fsyncs at once: every durable() joins a waiting round, so nothing runs here; were one to, its end
    // starts this round.
    if (this.#running) return;
    const next = this.#next;
    this.#next = undefined;
    next?.start();
  };

  /** `stamp`: the round's, taken before it began (an fsync on the loop records it; the round records it too). */
  async #sync(stamp: string | undefined): Promise<void> {
    if (this.#failed !== undefined) throw this.#failed;
    // While this store's connection is open the -wal file cannot be deleted (only the last connection deletes it),
    // so the file almost never changes. Whether it did is asked of the open file *after* its fsync: a name lost
    // before or during the fsync is seen then (a file never gets its name back), and the fsync that just ran went to
    // the old file, so the path's new file is made durable below before anyone is answered.
    const file = this.#file;
    if (file?.syncNow && this.#onLoop()) {
      const outcome = this.#syncOnLoop(file, file.syncNow, stamp);
      if (outcome === 'synced') return;
      if (outcome !== 'moved') throw outcome.failed;
    } else if (file) {
      const started = this.#policy.now();
      await file.sync();
      this.fsyncs.threadpool++;
      this.#fsynced('threadpool', (this.#policy.now() - started) / 1000);
      if (!file.unlinked()) {
        this.#synced();
        return;
      }
    }
    await this.#followNewFile();
  }

  /** The -wal file lost its name (or none was open): the database file, then the file now at the path, made durable. */
  async #followNewFile(): Promise<void> {
    const inode = await this.#disk.inodeAt(this.#walPath);
    if (inode === undefined || inode !== this.#file?.inode) {
      // The -wal file we held (if any) was checkpointed and deleted: what it carried is in the database file.
      const databaseFile = await this.#disk.openFile(this.#databasePath);
      if (databaseFile) {
        try {
          await databaseFile.sync();
        } finally {
          await databaseFile.close();
        }
      }
      await this.#reopen();
      await this.#file?.sync();
    }
    this.#synced();
  }

  async #reopen(): Promise<void> {
    await this.#file?.close();
    this.#file = await this.#disk.openFile(this.#walPath);
    // The file (or the database file itself) may have been created just now: make its name durable.
    await this.#disk.syncDirectory(dirname(this.#walPath));
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([this.#running, this.#next?.promise]);
    await this.#file?.close();
    this.#file = undefined;
  }
}
