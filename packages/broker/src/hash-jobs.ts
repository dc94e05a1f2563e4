import { b64uDecode, b64uEncode, paywordAt, verifyPaywordB64 } from '@netpay/protocol';

/** A point of a chain as the store and the wire carry it: w_index in base64url. */
interface PointB64 {
  index: number;
  payword: string;
}

/**
 * The broker's hash loops, as data, so that the same job runs inline or in a worker thread (hash-pool.ts):
 * `verify` is the PayWord check (presented hashes down to known), `payword` derives w_index of a chain the
 * broker made from its seed (the anchor of a new coin, an allowance w_a).
 */
export type HashJob =
  | { kind: 'verify'; chainId: string; known: PointB64; presented: PointB64 }
  | { kind: 'payword'; chainId: string; seed: string; length: number; index: number };

/** A `verify` job answers whether the point verified; a `payword` job answers w_index in base64url. */
export type HashAnswer = boolean | string;

/** SHA-256 steps the job costs: what decides whether it may run on the event loop. */
export function hashSteps(job: HashJob): number {
  const steps = job.kind === 'verify' ? job.presented.index - job.known.index : job.length - job.index;
  return Number.isFinite(steps) ? Math.max(0, steps) : 0;
}

/** Runs one job here and now (the worker calls this too). */
export function runHashJob(job: HashJob): HashAnswer {
  if (job.kind === 'verify') {
    return verifyPaywordB64({ chainId: job.chainId, known: job.known, presented: job.presented });
  }
  const word = paywordAt(b64uDecode(job.chainId, 16), b64uDecode(job.seed, 32), job.length, job.index);
  return b64uEncode(word);
}

/** Identifies a job, so an answer computed once is found again by the same question. */
export function hashJobKey(job: HashJob): string {
  return job.kind === 'verify'
    ? `v ${job.chainId} ${job.known.index} ${job.known.payword} ${job.presented.index} ${job.presented.payword}`
    : `p ${job.chainId} ${job.seed} ${job.length} ${job.index}`;
}
