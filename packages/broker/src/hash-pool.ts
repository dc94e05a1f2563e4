import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type HashAnswer, type HashJob, hashSteps, runHashJob } from './hash-jobs.ts';
import type { HashBatch, HashBatchReply } from './hash-worker.ts';

/**
 * SHA-256 steps a request may spend on the event loop. Measured on the 2-core development box: a step costs
 * 0.5–1 µs (more under load) and a batch's round trip to a worker 0.1–0.3 ms, so 2,000 steps (1–2 ms) are about
 * where the event loop starts to stall noticeably and a worker's overhead has become small beside the work.
 */
export const INLINE_HASH_STEPS = 2_000;

/** One worker per core but the one serving requests, at least one. */
export function defaultHashWorkers(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** Runs hash jobs: short batches inline, longer ones in the worker pool. */
export interface Hasher {
  /** Steps one batch may take inline (see INLINE_HASH_STEPS). */
  readonly inlineSteps: number;
  run(jobs: HashJob[]): Promise<HashAnswer[]>;
  close(): Promise<void>;
}

interface Task {
  batch: HashBatch;
  resolve(answers: HashAnswer[]): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  task: Task | undefined;
}

/**
 * A small pool of worker threads for the broker's long hash loops (issue 10, bounded work): chain generation for
 * coins it makes and allowance chains, and the verification of long ranges and proofs. Workers start on first use
 * and hold the process open only while they have work. A batch is split among the workers by steps (the jobs of
 * one batch are independent: each is its own chain walk); batches beyond the pool's size wait in order.
 *
 * @example
 * const hasher = new HashPool(1);
 * const [ok] = await hasher.run([{ kind: 'verify', chainId, known, presented }]);
 */
export class HashPool implements Hasher {
  readonly inlineSteps: number;
  readonly #size: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Task[] = [];
  #nextId = 1;
  #closed = false;

  constructor(size = defaultHashWorkers(), inlineSteps = INLINE_HASH_STEPS) {
    if (!Number.isInteger(size) || size < 1) throw new Error('the hash pool needs at least one worker');
    this.#size = size;
    this.inlineSteps = inlineSteps;
  }

  async run(jobs: HashJob[]): Promise<HashAnswer[]> {
    const steps = jobs.reduce((sum, job) => sum + hashSteps(job), 0);
    if (steps <= this.inlineSteps) return jobs.map(runHashJob);
    if (this.#closed) throw new Error('the hash pool is closed');
    const chunks = split(jobs, Math.min(this.#size, jobs.length));
    const answers: HashAnswer[] = new Array(jobs.length);
    await Promise.all(
      chunks.map(async (chunk) => {
        const got = await this.#submit(chunk.map((i) => jobs[i] as HashJob));
        chunk.forEach((i, k) => {
          answers[i] = got[k] as HashAnswer;
        });
      }),
    );
    return answers;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const task of this.#queue.splice(0)) task.reject(new Error('the hash pool closed'));
    await Promise.all(this.#slots.splice(0).map((slot) => slot.worker.terminate()));
  }

  #submit(jobs: HashJob[]): Promise<HashAnswer[]> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ batch: { id: this.#nextId++, jobs }, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => s.task === undefined);
      if (!slot && this.#slots.length < this.#size) slot = this.#spawn();
      if (!slot) return;
      const task = this.#queue.shift() as Task;
      slot.task = task;
      slot.worker.ref();
      slot.worker.postMessage(task.batch);
    }
  }

  #spawn(): Slot {
    const worker = startWorker();
    const slot: Slot = { worker, task: undefined };
    worker.unref();
    worker.on('message', (reply: HashBatchReply) => {
      const task = slot.task;
      if (!task || task.batch.id !== reply.id) return;
      slot.task = undefined;
      worker.unref();
      if ('error' in reply) task.reject(new Error(`hash worker: ${reply.error}`));
      else task.resolve(reply.answers);
      this.#dispatch();
    });
    const lost = (error: Error) => {
      const index = this.#slots.indexOf(slot);
      if (index >= 0) this.#slots.splice(index, 1);
      slot.task?.reject(error);
      slot.task = undefined;
      if (!this.#closed) this.#dispatch();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`hash worker exited with ${code}`)));
    this.#slots.push(slot);
    return slot;
  }
}

/** Indexes of `jobs` in `parts` groups of about equal steps (longest first, each to the lightest group). */
function split(jobs: HashJob[], parts: number): number[][] {
  const groups = Array.from({ length: parts }, () => ({ steps: 0, indexes: [] as number[] }));
  const order = jobs.map((job, i) => ({ i, steps: hashSteps(job) })).sort((a, b) => b.steps - a.steps);
  for (const { i, steps } of order) {
    const lightest = groups.reduce((a, b) => (b.steps < a.steps ? b : a));
    lightest.steps += steps;
    lightest.indexes.push(i);
  }
  return groups.filter((g) => g.indexes.length > 0).map((g) => g.indexes.sort((a, b) => a - b));
}

/**
 * In the workspace this module is TypeScript run through tsx under the `netpay-source` condition, and so is the
 * worker. A worker inherits neither loader flags nor loaders a process registered itself (the `netpay` command
 * does), so a source worker starts from a two-line bootstrap that registers tsx and then imports hash-worker.ts,
 * with the condition as its flag. Built, the worker is dist/hash-worker.js and needs neither.
 */
const FROM_SOURCE = import.meta.url.endsWith('.ts');

function startWorker(): Worker {
  if (!FROM_SOURCE) return new Worker(new URL('./hash-worker.js', import.meta.url));
  const tsx = import.meta.resolve('tsx/esm/api');
  const worker = new URL('./hash-worker.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(worker)}); });`;
  return new Worker(bootstrap, { eval: true, execArgv: ['--conditions=netpay-source'] });
}
