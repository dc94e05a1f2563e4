import { type HashAnswer, type HashJob, hashJobKey, hashSteps, runHashJob } from './hash-jobs.ts';
import type { Hasher } from './hash-pool.ts';

/** A point of a chain in base64url, as the store keeps it. */
interface PointB64 {
  index: number;
  payword: string;
}

/**
 * Thrown inside a transaction that met a hash loop too long for the event loop: the transaction rolls back, the
 * jobs run in the pool, and `withHashWork` runs the transaction again knowing their answers.
 */
export class NeedsHashing extends Error {
  constructor(readonly jobs: HashJob[]) {
    super('hash work to do outside the transaction');
  }
}

/**
 * The hash answers one operation may use synchronously, inside its transaction: a job of at most `inlineSteps`
 * runs there (cheap), a longer one is answered from what the pool already computed, or ends the attempt with
 * `NeedsHashing`. An answer depends only on the job's inputs (chain id, points, seed), never on the state the
 * transaction reads, so it stays true whatever changed between two attempts.
 */
export class HashWork {
  readonly #answers = new Map<string, HashAnswer>();
  readonly #fresh = new Map<string, unknown>();
  #inlineAll = false;

  constructor(readonly inlineSteps: number) {}

  /** Whether `presented` hashes down to `known` on the chain (PayWord verification). */
  verify(chainId: string, known: PointB64, presented: PointB64): boolean {
    const job: HashJob = {
      kind: 'verify',
      chainId,
      known: { index: known.index, payword: known.payword },
      presented: { index: presented.index, payword: presented.payword },
    };
    return this.#answer(job) === true;
  }

  /** w_index (base64url) of the chain the broker made from `seed` (base64url). */
  paywordAt(chainId: string, seed: string, length: number, index: number): string {
    const answer = this.#answer({ kind: 'payword', chainId, seed, length, index });
    if (typeof answer !== 'string') throw new Error('a payword job answered no payword');
    return answer;
  }

  /**
   * A value made once for the whole operation (the id and seed of a chain it makes), the same in every attempt:
   * the job that attempt stopped for was about that very value.
   */
  fresh<T>(key: string, make: () => T): T {
    if (!this.#fresh.has(key)) this.#fresh.set(key, make());
    return this.#fresh.get(key) as T;
  }

  /** Records answers computed outside (by `withHashWork`, or a caller that ran a batch before its transaction). */
  learn(jobs: HashJob[], answers: HashAnswer[]): void {
    jobs.forEach((job, i) => {
      this.#answers.set(hashJobKey(job), answers[i] as HashAnswer);
    });
  }

  /** From now on every job runs inline: the last resort of an operation whose jobs keep changing. */
  inlineEverything(): void {
    this.#inlineAll = true;
  }

  #answer(job: HashJob): HashAnswer {
    const key = hashJobKey(job);
    const known = this.#answers.get(key);
    if (known !== undefined) return known;
    if (!this.#inlineAll && hashSteps(job) > this.inlineSteps) throw new NeedsHashing([job]);
    const answer = runHashJob(job);
    this.#answers.set(key, answer);
    return answer;
  }
}

/** Attempts of one operation before its hash loops run inline regardless (each attempt learns at least one answer). */
const ATTEMPTS = 4;

/**
 * Runs `operation` (usually one transaction) with a HashWork: when it stops for a long hash loop, the loop runs in
 * the pool, off the event loop and outside the transaction (whose locks are released meanwhile), and the operation
 * runs again from the start.
 *
 * @example
 * const claim = await withHashWork(deps.hasher, (work) => deps.db.transaction().execute((trx) => ...));
 */
export async function withHashWork<T>(
  hasher: Hasher,
  operation: (work: HashWork) => Promise<T>,
  work: HashWork = new HashWork(hasher.inlineSteps),
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(work);
    } catch (error) {
      if (!(error instanceof NeedsHashing)) throw error;
      work.learn(error.jobs, await hasher.run(error.jobs));
      if (attempt + 1 >= ATTEMPTS) work.inlineEverything();
    }
  }
}
