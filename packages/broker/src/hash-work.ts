import { ProtocolError } from '@netpay/protocol';
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

  #answer(job: HashJob): HashAnswer {
    const key = hashJobKey(job);
    const known = this.#answers.get(key);
    if (known !== undefined) return known;
    if (hashSteps(job) > this.inlineSteps) throw new NeedsHashing([job]);
    const answer = runHashJob(job);
    this.#answers.set(key, answer);
    return answer;
  }
}

/**
 * Attempts of one operation. Each learns at least one answer; an operation that still meets a new long loop after
 * this many is refused with a retry, never hashed on the event loop: the jobs change between attempts only when the
 * chain's known points move meanwhile (another request on the same chain), which a vendor can make happen on
 * purpose, and a long loop run inline would stop the broker for seconds (a 10^6-step chain: 2.6 s).
 */
export const HASH_WORK_ATTEMPTS = 6;

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
      if (attempt >= HASH_WORK_ATTEMPTS) {
        throw new ProtocolError(
          'rate_limited',
          'the chain changed under this request while its paywords were checked; send it again',
          { retryAfter: 1 },
        );
      }
      work.learn(error.jobs, await hasher.run(error.jobs));
    }
  }
}
