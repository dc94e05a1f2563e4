import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { PaywordChain, ProtocolError } from '@netpay/protocol';
import type { HashJob } from '../src/hash-jobs.ts';
import { HashPool } from '../src/hash-pool.ts';
import { HASH_WORK_ATTEMPTS, HashWork, NeedsHashing, withHashWork } from '../src/hash-work.ts';

const chain = PaywordChain.generate(20_000);
const verify = (from: number, to: number, payword = chain.b64(to)): HashJob => ({
  kind: 'verify',
  chainId: chain.chainIdB64,
  known: { index: from, payword: chain.b64(from) },
  presented: { index: to, payword },
});

const at = (index: number) => ({ index, payword: chain.b64(index) });

describe('hash pool', () => {
  const pool = new HashPool(2, 1_000);
  after(() => pool.close());

  test('worker threads answer what the protocol computes, in the order asked, split over two workers', async () => {
    const jobs: HashJob[] = [
      verify(0, 20_000),
      verify(0, 20_000, chain.b64(19_999)),
      { kind: 'payword', chainId: chain.chainIdB64, seed: chain.seedB64, length: 20_000, index: 0 },
      verify(5_000, 9_000),
      { kind: 'payword', chainId: chain.chainIdB64, seed: chain.seedB64, length: 20_000, index: 12_345 },
    ];
    assert.deepEqual(await pool.run(jobs), [true, false, chain.anchorB64, true, chain.b64(12_345)]);
  });

  test('batches queue for the workers and all complete', async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.run([verify(i, 15_000 + i)])));
    assert.deepEqual(
      answers,
      Array.from({ length: 6 }, () => [true]),
    );
  });

  test('a job that throws in the worker rejects its batch; the pool keeps working', async () => {
    const bad: HashJob = { kind: 'payword', chainId: chain.chainIdB64, seed: 'not-a-seed', length: 20_000, index: 0 };
    await assert.rejects(pool.run([bad]), /hash worker/);
    assert.deepEqual(await pool.run([verify(0, 10_000)]), [true]);
  });
});

describe('hash work', () => {
  const pool = new HashPool(1, 1_000);
  after(() => pool.close());

  test('a short job runs inline; a long one stops the attempt, runs in the pool, and the retry finds its answer', async () => {
    const work = new HashWork(1_000);
    assert.equal(work.verify(chain.chainIdB64, { index: 0, payword: chain.anchorB64 }, at(500)), true);
    assert.throws(() => work.verify(chain.chainIdB64, { index: 0, payword: chain.anchorB64 }, at(5_000)), NeedsHashing);
    let attempts = 0;
    const ok = await withHashWork(pool, async (w) => {
      attempts++;
      return w.verify(chain.chainIdB64, { index: 0, payword: chain.anchorB64 }, at(15_000));
    });
    assert.equal(ok, true);
    assert.equal(attempts, 2);
  });

  test('a value made fresh for the operation is the same in every attempt', async () => {
    const seen: string[] = [];
    await withHashWork(pool, async (w) => {
      const made = w.fresh('chain', () => `made-${Math.random()}`);
      seen.push(made);
      if (seen.length === 1) throw new NeedsHashing([verify(0, 2_000)]);
    });
    assert.equal(seen.length, 2);
    assert.equal(seen[0], seen[1]);
  });

  test('an operation whose long loop changes every attempt is refused with a retry, never hashed inline', async () => {
    // A vendor moving the chain's known point between attempts makes each attempt meet a new long loop.
    let attempts = 0;
    const ran: number[] = [];
    const counting = {
      inlineSteps: pool.inlineSteps,
      run: (jobs: HashJob[]) => {
        ran.push(jobs.length);
        return pool.run(jobs);
      },
      close: () => pool.close(),
    };
    const refused = withHashWork(counting, async (w) => {
      attempts++;
      return w.verify(chain.chainIdB64, at(attempts), at(19_000));
    });
    await assert.rejects(refused, (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, 'rate_limited');
      assert.equal(error.status, 429);
      assert.deepEqual(error.extra, { retryAfter: 1 });
      return true;
    });
    assert.equal(attempts, HASH_WORK_ATTEMPTS);
    assert.equal(ran.length, HASH_WORK_ATTEMPTS - 1);
  });
});
