import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { openDatabase, sql } from '@netpay/service-kit';
import { createTestDatabase, testEngines } from '@netpay/service-kit/testing';
import { createSpendStore, type PaymentWrite, type SpendStore } from '../src/spend-store.ts';
import { chainRecordOf, epochRecordOf } from './store-records.ts';
import { gatedDisk } from './gated-disk.ts';
import { twoStoresOf } from './two-stores.ts';
import { settle, waitUntil, watched } from './watched.ts';

// Review of the durable side: two processes paying one chain interleaved, reads of another process's writes that
// are not durable yet, and what a store does after an fsync failed.

const LENGTH = 300;
const chain = PaywordChain.generate(LENGTH);
const chainId = chain.chainIdB64;
const chainRecord = chainRecordOf(chain, 1);

const epochRecord = (epoch: number, startIndex: number | null) => epochRecordOf(chain, epoch, startIndex);

const pay = (expected: number, index: number, resource = `r${index % 7}`): PaymentWrite => ({
  chainId,
  epoch: 1,
  expectedLastIndex: expected,
  index,
  payword: chain.b64(index),
  resource,
  amountMinor: index - expected,
  atMs: Date.now(),
});

/** A small deterministic random source, so a failure can be run again. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function journalIndexes(url: string): Promise<number[]> {
  const db = openDatabase<unknown>(url);
  try {
    const { rows } = await sql<{ idx: number }>`SELECT idx FROM netpay_payment_journal`.execute(db.db);
    return rows.map((r) => Number(r.idx)).sort((a, b) => a - b);
  } finally {
    await db.close();
  }
}

for (const engine of testEngines()) {
  describe(`review: two stores paying one chain interleaved on ${engine}`, () => {
    const twoStores = twoStoresOf(engine);

    it('answers every payment as it would alone: the ok ones form one chain, each in the journal once', async () => {
      const { a, b, url } = await twoStores();
      await a.saveChain(chainRecord);
      await a.insertEpoch(epochRecord(1, 0));

      // Ticks of one clock: when each write was sent and when it was answered.
      let tick = 0;
      const answered: { write: PaymentWrite; result: 'ok' | 'conflict'; sent: number; at: number }[] = [];
      // Each writer reads the durable last index from its store, then sends a run of consecutive payments from it
      // at once (one batch of its store, with the other writers' runs of the same chain).
      const writer = async (store: SpendStore, seed: number) => {
        const next = random(seed);
        for (;;) {
          const last = (await store.getEpoch(chainId, 1))?.last?.index ?? 0;
          if (last >= LENGTH - 12) return;
          const writes: PaymentWrite[] = [];
          let from = last;
          const runLength = 1 + Math.floor(next() * 4);
          for (let k = 0; k < runLength; k++) {
            const to = from + 1 + Math.floor(next() * 2);
            writes.push(pay(from, to));
            from = to;
          }
          const sent = tick++;
          await Promise.all(
            writes.map(async (write) => {
              const result = (await store.recordPayment(write)) as 'ok' | 'conflict';
              answered.push({ write, result, sent, at: tick++ });
            }),
          );
        }
      };
      await Promise.all([writer(a, 1), writer(a, 2), writer(b, 3), writer(b, 4), writer(b, 5)]);

      const ok = answered.filter((x) => x.result === 'ok').map((x) => x.write);
      ok.sort((x, y) => x.index - y.index);
      let expected = 0;
      for (const w of ok) {
        assert.equal(w.expectedLastIndex, expected, `ok payment ${w.index} goes on from the last ok one`);
        expected = w.index;
      }
      const final = (await b.getEpoch(chainId, 1))?.last?.index;
      assert.equal(final, expected, 'the epoch ends at the last ok payment');
      assert.deepEqual(
        await journalIndexes(url),
        ok.map((w) => w.index),
        'one journal row per ok payment, none for a conflict',
      );
      // A conflict from the final last index is only right when it was sent before the payment that reached that
      // index was durable (another store may not have committed it yet): sent after, it would have won (nothing
      // ever moved past it).
      const reached = answered.find((x) => x.result === 'ok' && x.write.index === final);
      for (const x of answered) {
        if (x.result === 'conflict' && x.write.expectedLastIndex === final)
          assert.ok(reached && x.sent < reached.at, `conflict at ${x.write.index}, sent after ${final} was durable`);
      }
      // The entitlement is the first ok payment of the resource.
      for (let r = 0; r < 7; r++) {
        const first = ok.find((w) => w.resource === `r${r}`);
        const point = await a.entitlement(chainId, `r${r}`);
        assert.equal(point?.index, first?.index, `entitlement r${r}`);
      }
      assert.ok(
        answered.some((x) => x.result === 'conflict'),
        'the writers did collide',
      );
    });

    it('a release stored by one store while the other pays: no payment commits past the index it signs', async () => {
      const { a, b } = await twoStores();
      await a.saveChain(chainRecord);
      let released = 0;
      for (let epoch = 1; epoch <= 30; epoch++) {
        await a.insertEpoch(epochRecord(epoch, 0));
        const payments = [0, 1, 2, 3].map((from) => a.recordPayment({ ...pay(from, from + 1), epoch }));
        const release = (async () => {
          for (let i = 0; i < epoch % 5; i++) await new Promise((resolve) => setImmediate(resolve));
          const last = (await b.getEpoch(chainId, epoch))?.last as { index: number; payword: string };
          return b.setRelease(chainId, epoch, {
            chainId,
            epoch,
            vendorId: 'daily-planet',
            index: last.index,
            payword: last.payword,
            toVendorId: 'the-bugle',
            toEpoch: epoch + 1,
            keyId: 'v1',
            releasedAt: '2026-11-24T00:10:00Z',
            sig: 'B'.repeat(86),
          });
        })();
        const [results, stored] = await Promise.all([Promise.all(payments), release]);
        const final = (await a.getEpoch(chainId, epoch))?.last?.index;
        const paidTo = results.lastIndexOf('ok') + 1;
        assert.equal(final, paidTo, `epoch ${epoch}: the head is the last ok payment`);
        if (stored) {
          released++;
          assert.equal(stored.index, final, `epoch ${epoch}: released at ${stored.index}, paid to ${final}`);
          assert.deepEqual((await b.getEpoch(chainId, epoch))?.release, stored);
        }
      }
      assert.ok(released > 0, 'some releases were stored');
    });
  });
}

describe('review: SQLite writes that are not durable yet', () => {
  const stores: SpendStore[] = [];
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    for (const d of drops) await d();
  });
  const open = async () => {
    const db = await createTestDatabase('sqlite');
    drops.push(db.drop);
    const a = gatedDisk();
    const b = gatedDisk();
    const store = await createSpendStore(db.url, { disk: a.disk });
    stores.push(store);
    const other = await createSpendStore(db.url, { disk: b.disk });
    stores.push(other);
    await store.saveChain(chainRecord);
    await store.insertEpoch(epochRecord(1, 0));
    return { store, gate: a.gate, other, otherGate: b.gate };
  };

  it("hands another process a release only once it is durable (the release request's stored-release path)", async () => {
    const { store, gate, other, otherGate } = await open();
    assert.equal(await store.recordPayment(pay(0, 3)), 'ok');
    const release = {
      chainId,
      epoch: 1,
      vendorId: 'daily-planet',
      index: 3,
      payword: chain.b64(3),
      toVendorId: 'the-bugle',
      toEpoch: 2,
      keyId: 'v1',
      releasedAt: '2026-11-24T00:10:00Z',
      sig: 'B'.repeat(86),
    };
    gate.holding = true;
    const stored = watched(store.setRelease(chainId, 1, release));
    await waitUntil(() => gate.waiting.length === 1, 'one fsync held');
    assert.equal(stored.settled, false, 'the writer waits for its fsync');
    // The other process's release request finds the release in the store and would hand it out as it reads it; a
    // power cut now takes the release back (the writer's fsync has not run), so the read waits for an fsync too.
    otherGate.holding = true;
    const read = watched(other.getEpoch(chainId, 1));
    // The release request reloads the chain when the epoch is not current here; the redemption job plans it.
    const loaded = watched(other.loadChain(chainId));
    const planned = watched(other.redeemable());
    await waitUntil(() => otherGate.waiting.length === 1, "the other store's fsync held");
    await settle();
    assert.equal(read.settled, false, 'a stored release is not read before an fsync after its commit');
    assert.deepEqual([loaded.settled, planned.settled], [false, false], 'nor by a reload or the redemption plan');
    otherGate.open();
    assert.deepEqual((await read.promise)?.release, release);
    assert.deepEqual((await loaded.promise)?.epochs[0]?.release, release);
    assert.deepEqual((await planned.promise)[0]?.epoch.release, release);
    gate.holding = false;
    (gate.waiting.shift() as () => void)();
    assert.deepEqual(await stored.promise, release);
  });

  it('commits nothing more once an fsync has failed (another process would read and redeem it)', async () => {
    const { store, gate, other } = await open();
    gate.failNext = true;
    await assert.rejects(store.recordPayment(pay(0, 1)), /EIO/);
    await assert.rejects(store.recordPayment(pay(1, 2)), /EIO/);
    await assert.rejects(store.markSuperseded(chainId, 1), /EIO/);
    await assert.rejects(store.createBatch('k1', '{"items":[]}'), /EIO/);
    const epoch = await other.getEpoch(chainId, 1);
    assert.equal(epoch?.last?.index, 1, 'the payment refused after the failure is not in the store');
    assert.equal(epoch?.superseded, false);
    assert.deepEqual(await other.pendingBatches(), []);
  });
});
