/**
 * The group commit when something fails while a batch is in flight: a batch queued behind a failed fsync is refused
 * and never committed, close() answers every batch in flight or queued, and a durability that throws instead of
 * rejecting still answers the batch (SQLite: the only engine with an fsync of its own; the unit cases need none).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { createTestDatabase, testEngines } from '@netpay/service-kit/testing';
import { GroupCommitter, type WriteResult } from '../src/payment-journal.ts';
import { createSpendStore, type PaymentWrite, type SpendStore } from '../src/spend-store.ts';
import { chainRecordOf, epochRecordOf } from './store-records.ts';
import { gatedDisk } from './gated-disk.ts';
import { heldChainVendor, holdChain, outcome, payWith } from './held-chains.ts';
import { waitUntil, watched } from './watched.ts';

const chain = PaywordChain.generate(40);
const chainId = chain.chainIdB64;

const pay = (expected: number, index: number): PaymentWrite => ({
  chainId,
  epoch: 1,
  expectedLastIndex: expected,
  index,
  payword: chain.b64(index),
  resource: `r${index}`,
  amountMinor: index - expected,
  atMs: Date.now(),
});

describe('group commit after a failure (SQLite)', () => {
  const stores: SpendStore[] = [];
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    for (const d of drops) await d();
  });
  const open = async () => {
    const db = await createTestDatabase('sqlite');
    drops.push(db.drop);
    const { gate, disk } = gatedDisk();
    const store = await createSpendStore(db.url, { disk });
    const reader = await createSpendStore(db.url);
    stores.push(store, reader);
    await store.saveChain(chainRecordOf(chain, 3));
    await store.insertEpoch(epochRecordOf(chain, 1, 0));
    return { store, reader, gate };
  };

  it('refuses the batch queued behind a failed fsync without committing it', async () => {
    const { store, reader, gate } = await open();
    gate.holding = true;
    const first = store.recordPayment(pay(0, 1));
    await waitUntil(() => gate.waiting.length === 1, 'one fsync held');
    const second = store.recordPayment(pay(1, 2));
    await new Promise((resolve) => setImmediate(resolve));
    gate.failNext = true;
    gate.holding = false;
    gate.waiting.shift()?.();
    await assert.rejects(first, /EIO/);
    await assert.rejects(second, /EIO/);
    assert.equal((await reader.getEpoch(chainId, 1))?.last?.index, 1, 'the queued batch never committed');
  });

  it('answers the batch in flight and the one queued when the store closes meanwhile', async () => {
    const { store, gate } = await open();
    gate.holding = true;
    const first = watched(store.recordPayment(pay(0, 1)));
    await waitUntil(() => gate.waiting.length === 1, 'one fsync held');
    const second = watched(store.recordPayment(pay(1, 2)));
    await new Promise((resolve) => setImmediate(resolve));
    const closed = store.close();
    gate.holding = false;
    gate.waiting.shift()?.();
    await closed;
    assert.equal(await first.promise, 'ok');
    await assert.rejects(second.promise, /closed/);
  });
});

describe('a payment whose fsync failed, sent again after a restart (SQLite)', () => {
  for (const place of ['threadpool', 'loop'] as const) {
    it(`is served free, never charged twice (fsync on the ${place})`, async () => {
      const db = await createTestDatabase('sqlite');
      try {
        const { gate, disk } = gatedDisk({ onLoop: place === 'loop' });
        const failing = await createSpendStore(db.url, { disk, fsync: { place } });
        const coin = PaywordChain.generate(10);
        await holdChain(failing, coin);
        const before = heldChainVendor(failing);
        // The chain in memory first: its load waits for an fsync of its own, which must not be the one that fails.
        assert.deepEqual(outcome(await payWith(before, coin, 1, 'GET /a0')), ['paid', true]);
        gate.failNext = true;
        // Committed, then its fsync failed: not answered as paid, and the answer says to send it again.
        const lost = await payWith(before, coin, 2, 'GET /a1');
        assert.deepEqual(outcome(lost), ['problem', 'internal_error']);
        assert.deepEqual(outcome(await payWith(before, coin, 2, 'GET /a1')), ['problem', 'internal_error']);
        await before.close();
        await failing.close().catch(() => undefined);

        // The process restarts on what is on disk (here the commit is, as after most failed fsyncs).
        const store = await createSpendStore(db.url);
        try {
          const after = heldChainVendor(store);
          assert.deepEqual(outcome(await payWith(after, coin, 2, 'GET /a1')), ['paid', false], 'the same payment');
          assert.deepEqual(outcome(await payWith(after, coin, 3, 'GET /a2')), ['paid', true], 'the next one');
          assert.equal((await store.totals()).earned, 3, 'each unit earned once');
          await after.close();
        } finally {
          await store.close();
        }
      } finally {
        await db.drop();
      }
    });
  }
});

for (const engine of testEngines()) {
  describe(`group commit when the store closes (${engine})`, () => {
    it('answers every payment in flight or queued, and closes', async () => {
      const db = await createTestDatabase(engine);
      try {
        const store = await createSpendStore(db.url);
        await store.saveChain(chainRecordOf(chain, 3));
        await store.insertEpoch(epochRecordOf(chain, 1, 0));
        const first = watched(store.recordPayment(pay(0, 1)));
        await new Promise((resolve) => setImmediate(resolve));
        const second = watched(store.recordPayment(pay(1, 2)));
        await store.close();
        await waitUntil(() => first.settled && second.settled, 'both batches answered');
        await Promise.allSettled([first.promise, second.promise]);
      } finally {
        await db.drop();
      }
    });
  });
}

describe('group commit with a durability that throws', () => {
  it('answers the batch with the error instead of throwing it out of the event loop', async () => {
    let throwNext = true;
    const committer = new GroupCommitter(
      (batch) => batch.map((): WriteResult => 'ok'),
      () => {
        if (throwNext) {
          throwNext = false;
          throw new Error('store closed');
        }
        return Promise.resolve();
      },
    );
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.prependListener('uncaughtException', onUncaught);
    try {
      const first = watched(committer.submit(pay(0, 1)));
      for (let i = 0; i < 20 && !first.settled; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(uncaught, []);
      await assert.rejects(first.promise, /store closed/);
      assert.equal(await committer.submit(pay(1, 2)), 'ok', 'the next batch still goes');
    } finally {
      process.removeListener('uncaughtException', onUncaught);
    }
  });
});
