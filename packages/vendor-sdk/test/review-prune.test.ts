import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { openDatabase, sql } from '@netpay/service-kit';
import { createTestDatabase, testEngines } from '@netpay/service-kit/testing';
import { createSpendStore, type SpendStore } from '../src/spend-store.ts';
import { chainRecordOf, epochRecordOf } from './store-records.ts';

// pruneJournal deletes only rows at or below an epoch's redeemed point: nothing of a batch still pending, refused
// (its ranges are planned again) or deferred, nor past a partial redemption; totals and the plan do not move.

const chain = PaywordChain.generate(40);
const chainId = chain.chainIdB64;
const chainRecord = chainRecordOf(chain, 3);

const epochRecord = (epoch: number, startIndex: number | null) => epochRecordOf(chain, epoch, startIndex);

for (const engine of testEngines()) {
  describe(`review: pruning the payment journal on ${engine}`, () => {
    const stores: SpendStore[] = [];
    const drops: (() => Promise<void>)[] = [];
    after(async () => {
      for (const s of stores) await s.close();
      for (const d of drops) await d();
    });

    it('keeps every row of a range not settled, and totals and the plan stay', async () => {
      const db = await createTestDatabase(engine);
      drops.push(db.drop);
      const store = await createSpendStore(db.url);
      stores.push(store);
      await store.saveChain(chainRecord);
      // Epochs 1-5 of one chain, each paid 0 → 2 → 5 → 6 (epoch e starts at 0 here: the store does not check it).
      for (let e = 1; e <= 5; e++) {
        await store.insertEpoch(epochRecord(e, 0));
        for (const [expected, index] of [
          [0, 2],
          [2, 5],
          [5, 6],
        ] as const) {
          const result = await store.recordPayment({
            chainId,
            epoch: e,
            expectedLastIndex: expected,
            index,
            payword: chain.b64(index),
            resource: `e${e}/${index}`,
            amountMinor: (index - expected) * 3,
            atMs: index,
          });
          assert.equal(result, 'ok');
        }
      }
      const to = (e: number, index: number, status: 'accepted' | 'rejected') => ({
        chainId,
        epoch: e,
        to: { index, payword: chain.b64(index) },
        status,
        amountMinor: index * 3,
      });
      // Epoch 1: accepted to 5 of 6. Epoch 2: its batch still pending. Epoch 3: its batch refused (planned again).
      // Epoch 4: refused for good (rejected to 6). Epoch 5: deferred (end_unknown: not applied).
      await store.createBatch('done', '{}');
      await store.completeBatch('done', '{}', [to(1, 5, 'accepted'), to(4, 6, 'rejected')]);
      await store.createBatch('pending', '{}');
      await store.createBatch('refused', '{}');
      await store.failBatch('refused', '{}');
      const totals = await store.totals();
      const plan = (await store.redeemable()).map((p) => [p.epoch.epoch, p.epoch.redeemed?.index, p.epoch.last?.index]);
      assert.deepEqual(plan, [
        [1, 5, 6],
        [2, undefined, 6],
        [3, undefined, 6],
        [5, undefined, 6],
      ]);

      assert.equal(await store.pruneJournal(), 5, 'epoch 1 to 5 (two rows), epoch 4 (three rows)');
      const check = openDatabase<unknown>(db.url);
      try {
        const { rows } = await sql<{ epoch: number; idx: number }>`
          SELECT epoch, idx FROM netpay_payment_journal ORDER BY epoch, idx`.execute(check.db);
        assert.deepEqual(
          rows.map((r) => `${Number(r.epoch)}:${Number(r.idx)}`),
          ['1:6', '2:2', '2:5', '2:6', '3:2', '3:5', '3:6', '5:2', '5:5', '5:6'],
        );
      } finally {
        await check.close();
      }
      assert.deepEqual(await store.totals(), totals);
      assert.deepEqual(
        (await store.redeemable()).map((p) => [p.epoch.epoch, p.epoch.redeemed?.index, p.epoch.last?.index]),
        plan,
      );
      assert.deepEqual(await store.entitlement(chainId, 'e1/2'), { index: 2, payword: chain.b64(2) }, 'kept');
      assert.deepEqual(
        (await store.pendingBatches()).map((b) => b.key),
        ['pending'],
      );
    });
  });
}
