/**
 * The worker thread of the hash pool (hash-pool.ts): runs each batch of hash jobs it is sent and answers their
 * results in order, under the batch's id. A job that throws (a malformed seed) answers the error's message.
 */
import { parentPort } from 'node:worker_threads';
import { type HashAnswer, type HashJob, runHashJob } from './hash-jobs.ts';

export interface HashBatch {
  id: number;
  jobs: HashJob[];
}

export type HashBatchReply = { id: number; answers: HashAnswer[] } | { id: number; error: string };

if (!parentPort) throw new Error('hash-worker runs as a worker thread of the broker');
const port = parentPort;
port.on('message', (batch: HashBatch) => {
  let reply: HashBatchReply;
  try {
    reply = { id: batch.id, answers: batch.jobs.map(runHashJob) };
  } catch (error) {
    reply = { id: batch.id, error: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(reply);
});
