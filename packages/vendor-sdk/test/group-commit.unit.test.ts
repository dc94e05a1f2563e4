/**
 * The group commit's order of work, with a commit and a durability of our own making: the next batch is committed
 * (and its durability asked for) before the batch made durable is answered, and batches in flight at once never
 * share a chain.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommitter, type WriteResult } from '../src/payment-journal.ts';
import type { PaymentWrite } from '../src/spend-store.ts';

function write(chainId: string, index: number): PaymentWrite {
  return {
    chainId,
    epoch: 1,
    expectedLastIndex: index - 1,
    index,
    payword: `w${index}`,
    resource: 'article/1',
    amountMinor: 1,
    atMs: 0,
  };
}

/** Durability rounds the test ends by hand, and a log of what happened in which order. */
function harness(maxInFlight: number, cutAt?: number) {
  const log: string[] = [];
  const rounds: Array<() => void> = [];
  const committer = new GroupCommitter(
    (batch) => {
      log.push(`commit ${batch.map((w) => `${w.chainId}${w.index}`).join(',')}`);
      return batch.map((): WriteResult => 'ok');
    },
    () =>
      new Promise<void>((resolve) => {
        const n = rounds.length;
        log.push(`durable? ${n}`);
        rounds.push(() => {
          log.push(`durable ${n}`);
          resolve();
        });
      }),
    // The order of work, batch by batch as each turn brings it (gathering is tested on its own below).
    { maxInFlight, gatherMs: 0, cutAt },
  );
  const pay = (chainId: string, index: number) =>
    committer.submit(write(chainId, index)).then((result) => {
      log.push(`answer ${chainId}${index} ${result}`);
    });
  return { log, rounds, pay };
}

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('group commit', () => {
  it('commits the waiting batch and asks for its fsync before answering the batch just made durable', async () => {
    const { log, rounds, pay } = harness(1);
    const first = [pay('a', 1), pay('b', 1)];
    await turns();
    const second = [pay('c', 1)];
    await turns();
    assert.deepEqual(log, ['commit a1,b1', 'durable? 0']);
    rounds[0]?.();
    await Promise.all(first);
    assert.deepEqual(log.slice(2), ['durable 0', 'commit c1', 'durable? 1', 'answer a1 ok', 'answer b1 ok']);
    rounds[1]?.();
    await Promise.all(second);
  });

  it('keeps a chain out of a second batch while one holding it is in flight, then sends it in order', async () => {
    const { log, rounds, pay } = harness(2);
    const paid = [pay('a', 1)];
    await turns();
    paid.push(pay('a', 2), pay('b', 1));
    await turns();
    // b goes at once in a second batch; a's next payment waits for the batch holding a.
    assert.deepEqual(log, ['commit a1', 'durable? 0', 'commit b1', 'durable? 1']);
    rounds[1]?.();
    await turns();
    assert.deepEqual(log.slice(4), ['durable 1', 'answer b1 ok']);
    rounds[0]?.();
    await turns();
    assert.deepEqual(log.slice(6), ['durable 0', 'commit a2', 'durable? 2', 'answer a1 ok']);
    rounds[2]?.();
    await Promise.all(paid);
    assert.equal(log.at(-1), 'answer a2 ok');
  });

  it('cuts a batch at cutAt payments within the turn while a slot is free, and closes the rest with the turn', async () => {
    const { log, rounds, pay } = harness(2, 2);
    const paid = [pay('a', 1), pay('b', 1)];
    // Committed inside the second submit, before the turn ends: the database works while the loop parses on.
    assert.deepEqual(log, ['commit a1,b1', 'durable? 0']);
    paid.push(pay('c', 1), pay('d', 1));
    assert.deepEqual(log.slice(2), ['commit c1,d1', 'durable? 1']);
    paid.push(pay('e', 1), pay('f', 1), pay('g', 1));
    await turns();
    // Both slots taken: no cut, and nothing closes with the turn either; they wait for a slot.
    assert.equal(log.length, 4, log.join(' | '));
    rounds[1]?.();
    await turns();
    assert.deepEqual(log.slice(4), ['durable 1', 'commit e1,f1,g1', 'durable? 2', 'answer c1 ok', 'answer d1 ok']);
    rounds[0]?.();
    await turns();
    assert.deepEqual(log.slice(9), ['durable 0', 'answer a1 ok', 'answer b1 ok']);
    paid.push(pay('h', 1));
    assert.equal(log.length, 12, 'one payment under cutAt waits for the end of its turn');
    await turns();
    assert.deepEqual(log.slice(12), ['commit h1', 'durable? 3']);
    for (const round of [2, 3]) rounds[round]?.();
    await Promise.all(paid);
  });

  it('counts toward cutAt only the payments a batch could take, not those held behind their chain', async () => {
    const { log, rounds, pay } = harness(2, 4);
    const paid = [pay('a', 1)];
    await turns();
    assert.deepEqual(log, ['commit a1', 'durable? 0']);
    // A wallet paying on one chain without a pause: its payments wait for the batch holding a.
    for (let i = 2; i <= 9; i++) paid.push(pay('a', i));
    for (const c of ['b', 'c', 'd']) paid.push(pay(c, 1));
    // Three payments the second slot could take: under cutAt, no batch yet (counting the queue cut one of b1 alone).
    assert.equal(log.length, 2, log.join(' | '));
    paid.push(pay('e', 1));
    assert.deepEqual(log.slice(2), ['commit b1,c1,d1,e1', 'durable? 1']);
    rounds[0]?.();
    await turns();
    assert.deepEqual(log.slice(4, 7), ['durable 0', 'commit a2,a3,a4,a5,a6,a7,a8,a9', 'durable? 2']);
    rounds[1]?.();
    rounds[2]?.();
    await Promise.all(paid);
  });

  it('without cutAt, a batch closes with its turn however long it is', async () => {
    const { log, rounds, pay } = harness(2);
    const paid = Array.from({ length: 40 }, (_, i) => pay(`c${i}`, 1));
    assert.deepEqual(log, []);
    await turns();
    assert.equal(log.length, 2);
    assert.match(log[0] ?? '', /^commit c01,.*,c391$/);
    rounds[0]?.();
    await Promise.all(paid);
  });

  it('answers the batch just made durable before the next one whose commit threw at once', async () => {
    const log: string[] = [];
    let release!: () => void;
    let commits = 0;
    const committer = new GroupCommitter(
      (batch) => {
        commits++;
        if (commits === 2) throw new Error('disk full');
        return batch.map((): WriteResult => 'ok');
      },
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
      { gatherMs: 0 },
    );
    const answer = (index: number) =>
      committer.submit(write('a', index)).then(
        (result) => log.push(`a${index} ${result}`),
        (error: Error) => log.push(`a${index} ${error.message}`),
      );
    const first = answer(1);
    await turns();
    const second = answer(2);
    await turns();
    release();
    await Promise.all([first, second]);
    // The chain's earlier payment is on disk: its answer comes first, whatever happened to the next batch.
    assert.deepEqual(log, ['a1 ok', 'a2 disk full']);
  });

  it('answers a failed commit with its error and goes on with the next batch', async () => {
    let fail = true;
    const committer = new GroupCommitter(
      (batch) => {
        if (fail) {
          fail = false;
          throw new Error('disk full');
        }
        return batch.map((): WriteResult => 'ok');
      },
      () => Promise.resolve(),
    );
    await assert.rejects(committer.submit(write('a', 1)), /disk full/);
    assert.equal(await committer.submit(write('a', 1)), 'ok');
  });

  it('tells its observer of each durable batch, with every result, before answering it; never of a failed one', async () => {
    const log: string[] = [];
    let durableFails = false;
    let observerThrows = false;
    const committer = new GroupCommitter(
      (batch) => batch.map((w): WriteResult => (w.chainId === 'x' ? 'conflict' : 'ok')),
      () => (durableFails ? Promise.reject(new Error('EIO')) : Promise.resolve()),
      {
        observe: (batch, results, seconds) => {
          assert.ok(seconds >= 0 && seconds < 60, `seconds ${seconds}`);
          log.push(`observed ${batch.map((w, i) => `${w.chainId}${w.index}:${results[i]}`).join(',')}`);
          if (observerThrows) throw new Error('a broken metric');
        },
      },
    );
    const pay = (chainId: string, index: number) =>
      committer.submit(write(chainId, index)).then(
        (result) => log.push(`answer ${chainId}${index} ${result}`),
        (error: Error) => log.push(`answer ${chainId}${index} ${error.message}`),
      );
    await Promise.all([pay('a', 1), pay('x', 1), pay('b', 1)]);
    assert.deepEqual(log, ['observed a1:ok,x1:conflict,b1:ok', 'answer a1 ok', 'answer x1 conflict', 'answer b1 ok']);

    log.length = 0;
    durableFails = true;
    await pay('a', 2);
    assert.deepEqual(log, ['answer a2 EIO']);

    // A metric that throws is dropped: the payment on disk is still answered.
    log.length = 0;
    durableFails = false;
    observerThrows = true;
    await pay('a', 3);
    assert.deepEqual(log, ['observed a3:ok', 'answer a3 ok']);
  });

  it('gathers the payments of consecutive turns into one batch, up to the first turn that brings none', async () => {
    const batches: string[][] = [];
    const committer = new GroupCommitter(
      (batch) => {
        batches.push(batch.map((w) => `${w.chainId}${w.index}`));
        return batch.map((): WriteResult => 'ok');
      },
      () => Promise.resolve(),
      { gatherMs: 10_000 },
    );
    // A lone payment goes at the end of its turn: nothing came after it.
    assert.equal(await committer.submit(write('z', 1)), 'ok');
    assert.deepEqual(batches, [['z1']]);
    // Two in one turn (requests parsed together: more may be coming), one in the next, then a turn with none.
    const answers = [committer.submit(write('a', 1)), committer.submit(write('b', 1))];
    await new Promise((resolve) => setImmediate(resolve));
    answers.push(committer.submit(write('c', 1)));
    assert.deepEqual(await Promise.all(answers), ['ok', 'ok', 'ok']);
    assert.deepEqual(batches, [['z1'], ['a1', 'b1', 'c1']]);
  });

  it('stops gathering after gatherMs when every turn brings another payment', async () => {
    const batches: number[] = [];
    const committer = new GroupCommitter(
      (batch) => {
        batches.push(batch.length);
        return batch.map((): WriteResult => 'ok');
      },
      () => Promise.resolve(),
      { gatherMs: 5 },
    );
    // A payment every turn until three batches have closed: without the bound the first batch never closes, and the
    // loop gives up after 5 s. (It used to run for a fixed 60 ms, which a descheduled process could spend in one turn.)
    const answers: Promise<WriteResult>[] = [committer.submit(write('c0', 1))];
    const until = performance.now() + 5000;
    for (let i = 1; batches.length < 3 && performance.now() < until; i++) {
      answers.push(committer.submit(write(`c${i}`, 1)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const firstAnsweredBy = await Promise.race([answers[0], new Promise((r) => setTimeout(() => r('late'), 40))]);
    await Promise.all(answers);
    assert.equal(firstAnsweredBy, 'ok', 'the first payment waited past its bound');
    assert.ok(batches.length >= 3, `batches ${batches}`);
    assert.equal(
      batches.reduce((a, b) => a + b, 0),
      answers.length,
    );
  });
});
