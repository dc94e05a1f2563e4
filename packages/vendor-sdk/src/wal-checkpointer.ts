import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/*
 * SQLite's checkpoints, off the event loop. A checkpoint copies the WAL's frames into the database file and, in
 * NORMAL (and FULL) mode, fsyncs the WAL before and the database file after. Left to SQLite it runs inside the
 * commit that crosses `wal_autocheckpoint` pages, on the connection the vendor pays through, so two fsyncs and the
 * copy stall the event loop every few thousand payments. Here the store's connection never checkpoints
 * (`wal_autocheckpoint = 0`); a worker thread with its own connection to the same file runs a PASSIVE checkpoint
 * (it never waits for the writer, and the writer never waits for it) at most once an interval while writes go on.
 * The next write of the store's connection after a complete checkpoint restarts the WAL from its start, and SQLite
 * fsyncs the new WAL header there: one fsync on the event loop per checkpoint instead of two and the copy.
 * That restart needs a write that begins with every frame checkpointed. A PASSIVE checkpoint copies what was
 * committed when it began, and while payments never pause a batch always commits while it runs: the WAL would never
 * restart and the -wal file would grow for as long as the load lasts (measured: 10 MB a second at 12,000 payments a
 * second). So once the WAL holds more than `restartFrames`, the next payment batch waits for a checkpoint that
 * begins after every commit so far (a short one: the periodic ones copied most of it), and restarts the WAL.
 * If the worker fails, the store's connection checkpoints by itself again, so the WAL never grows without bound.
 */

/** What the worker runs: one connection, a PASSIVE checkpoint per message. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 10000');
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  const [result] = db.pragma('wal_checkpoint(PASSIVE)');
  parentPort.postMessage(result);
});
`;

/** How often at most a checkpoint is asked for while writes go on. */
export const CHECKPOINT_INTERVAL_MS = 1000;

/** Frames in the WAL (4 KiB each) past which the next payment batch waits for a complete checkpoint. */
export const WAL_RESTART_FRAMES = 8192;

/** Pages after which SQLite's own checkpoint runs (its default), when the worker is gone. */
const SQLITE_AUTOCHECKPOINT = 1000;

/** A checkpoint's answer: frames in the WAL and frames copied into the database file. */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

/** The answer when no worker is there to checkpoint. */
const GONE: CheckpointResult = { busy: 1, log: -1, checkpointed: -1 };

/** Runs a statement on the store's own connection. */
export type Pragma = (statement: string) => Promise<void>;

/** Checkpoints of a SQLite database in a worker thread (see the top of this file). */
export class WalCheckpointer {
  readonly #worker: Worker;
  readonly #intervalMs: number;
  readonly #pragma: Pragma;
  readonly #restartFrames: number;
  /** Frames in the WAL at the last checkpoint's answer. */
  #log = 0;
  #busy = false;
  #lastAt = 0;
  #failed = false;
  #closing = false;
  #done: ((result: CheckpointResult) => void)[] = [];

  private constructor(worker: Worker, pragma: Pragma, intervalMs: number, restartFrames: number) {
    this.#worker = worker;
    this.#pragma = pragma;
    this.#intervalMs = intervalMs;
    this.#restartFrames = restartFrames;
    worker.on('message', (result: CheckpointResult) => {
      this.#busy = false;
      this.#log = result.log;
      // Closing holds the process until the worker has exited (its answer may come after the close was posted).
      if (!this.#closing) worker.unref();
      for (const done of this.#done.splice(0)) done(result);
    });
    worker.on('error', () => void this.#fallBack());
    worker.on('exit', () => {
      if (!this.#closing) void this.#fallBack();
    });
    worker.unref();
  }

  /** Turns the store connection's own checkpoints off and starts the worker on the database at `path`. */
  static async start(
    path: string,
    pragma: Pragma,
    intervalMs = CHECKPOINT_INTERVAL_MS,
    restartFrames = WAL_RESTART_FRAMES,
  ): Promise<WalCheckpointer> {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, path } });
    await pragma('PRAGMA wal_autocheckpoint = 0');
    return new WalCheckpointer(worker, pragma, intervalMs, restartFrames);
  }

  /**
   * Before a payment batch commits: while the WAL is small, nothing; past `restartFrames`, a checkpoint of every
   * commit so far, so that this batch's commit restarts the WAL (see the top of this file).
   */
  beforeCommit(): Promise<void> | undefined {
    if (this.#log <= this.#restartFrames || this.#failed || this.#closing) return undefined;
    return this.checkpoint().then(() => {
      // The commit that follows restarts the WAL; the next periodic answer says how large it is again.
      this.#log = 0;
    });
  }

  /** Writes went on: asks for a checkpoint unless one runs or the last was asked for within the interval. */
  written(): void {
    if (this.#busy || this.#failed || this.#closing) return;
    const now = Date.now();
    if (now - this.#lastAt < this.#intervalMs) return;
    this.#lastAt = now;
    this.#ask();
  }

  /** Posts a checkpoint; the worker keeps the process alive only while one runs. */
  #ask(): void {
    this.#busy = true;
    this.#worker.ref();
    this.#worker.postMessage('checkpoint');
  }

  /** Runs a checkpoint that starts after the call, and resolves with its answer. */
  async checkpoint(): Promise<CheckpointResult> {
    while (this.#busy) await new Promise((resolve) => this.#done.push(resolve));
    if (this.#failed || this.#closing) return GONE;
    const answer = new Promise<CheckpointResult>((resolve) => this.#done.push(resolve));
    this.#lastAt = Date.now();
    this.#ask();
    return answer;
  }

  async #fallBack(): Promise<void> {
    if (this.#failed || this.#closing) return;
    this.#failed = true;
    this.#busy = false;
    for (const done of this.#done.splice(0)) done(GONE);
    await this.#pragma(`PRAGMA wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT}`).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#failed) return;
    const exited = new Promise((resolve) => this.#worker.once('exit', resolve));
    this.#worker.ref();
    this.#worker.postMessage('close');
    await exited;
  }
}
