import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PaywordChain, type ReleaseStatement } from '@netpay/protocol';
import { openDatabase, sql } from '@netpay/service-kit';
import { createTestDatabase, testEngines } from '@netpay/service-kit/testing';
import type { Kysely } from 'kysely';
import { createSpendStore, type PaymentWrite, type SpendStore } from '../src/spend-store.ts';
import { migrateSpendStore, migrations } from '../src/spend-store-schema.ts';
import { chainRecordOf, epochRecordOf } from './store-records.ts';
import { twoStoresOf } from './two-stores.ts';

// Review of migration 006 (epoch heads): an epoch's head is released exactly when its row carries the release,
// whatever runs at once on two stores (payments, releases, starts, redemption results), with no lock cycle between
// them on PostgreSQL; and a SQLite run of 006 that committed but was not recorded is harmless when run again.

const chain = PaywordChain.generate(200);
const chainId = chain.chainIdB64;

const release = (epoch: number, index: number): ReleaseStatement => ({
  chainId,
  epoch,
  vendorId: 'daily-planet',
  index,
  payword: chain.b64(index),
  toVendorId: 'the-bugle',
  toEpoch: epoch + 1,
  keyId: 'v1',
  releasedAt: '2026-11-24T00:10:00Z',
  sig: 'B'.repeat(86),
});

const pay = (epoch: number, expected: number, index: number): PaymentWrite => ({
  chainId,
  epoch,
  expectedLastIndex: expected,
  index,
  payword: chain.b64(index),
  resource: `r${index % 3}`,
  amountMinor: index - expected,
  atMs: Date.now(),
});

/** Each epoch's head flag and whether its row carries a release, read past the store. */
async function headsAndRows(url: string): Promise<{ epoch: number; released: number; hasRelease: number }[]> {
  const db = openDatabase<unknown>(url);
  try {
    const { rows } = await sql<{ epoch: unknown; released: unknown; has_release: unknown }>`
      SELECT e.epoch, h.released, CASE WHEN e.release IS NULL THEN 0 ELSE 1 END AS has_release
        FROM netpay_epochs e LEFT JOIN netpay_epoch_heads h ON h.chain_id = e.chain_id AND h.epoch = e.epoch
       ORDER BY e.epoch`.execute(db.db);
    return rows.map((r) => ({
      epoch: Number(r.epoch),
      released: Number(r.released),
      hasRelease: Number(r.has_release),
    }));
  } finally {
    await db.close();
  }
}

for (const engine of testEngines()) {
  describe(`review: epoch heads under concurrent writes on ${engine}`, () => {
    const twoStores = twoStoresOf(engine);

    it('payments, releases, starts and redemption results on two stores: no error, heads agree with rows', async () => {
      const { a, b, url } = await twoStores();
      await a.saveChain(chainRecordOf(chain, 1));
      const EPOCHS = 12;
      for (let epoch = 1; epoch <= EPOCHS; epoch++) await a.insertEpoch(epochRecordOf(chain, epoch, 0));
      let batch = 0;
      const results: Promise<unknown>[] = [];
      const okTo = new Map<number, number>();
      const tag = (what: string, p: Promise<unknown>) =>
        p.catch((e) => {
          throw new Error(`${what}: ${e}`);
        });
      for (let round = 0; round < 6; round++) {
        // Store a pays every epoch a run of two; store b releases some at what it reads, applies redemption
        // results to all (netpay_epochs rows, in epoch order as redeemable() gives them), and inserts and starts new
        // epochs.
        for (let epoch = 1; epoch <= EPOCHS; epoch++) {
          const from = round * 2;
          for (const [e, i] of [
            [from, from + 1],
            [from + 1, from + 2],
          ] as const) {
            results.push(
              tag(
                'pay',
                a.recordPayment(pay(epoch, e, i)).then((r) => {
                  if (r === 'ok') okTo.set(epoch, Math.max(okTo.get(epoch) ?? 0, i));
                }),
              ),
            );
          }
        }
        for (let epoch = 1 + (round % 4); epoch <= EPOCHS; epoch += 4) {
          results.push(
            tag(
              'release',
              b
                .getEpoch(chainId, epoch)
                .then((e) => (e?.last ? b.setRelease(chainId, epoch, release(epoch, e.last.index)) : undefined)),
            ),
          );
        }
        const items = Array.from({ length: EPOCHS }, (_, k) => ({
          chainId,
          epoch: k + 1,
          to: { index: round, payword: chain.b64(round) },
          status: 'accepted' as const,
          amountMinor: 1,
        }));
        const key = `k${batch++}`;
        results.push(
          tag(
            'complete',
            b.createBatch(key, '{}').then(() => b.completeBatch(key, '{}', items)),
          ),
        );
        const fresh = 100 + round;
        results.push(
          tag(
            'start',
            b
              .insertEpoch(epochRecordOf(chain, fresh, null))
              .then(() => b.setStart(chainId, fresh, { index: 0, payword: chain.b64(0) }, null)),
          ),
        );
        await new Promise((resolve) => setImmediate(resolve));
      }
      const settled = await Promise.allSettled(results);
      const failed = settled
        .filter((s) => s.status === 'rejected')
        .map((s) => String((s as PromiseRejectedResult).reason));
      assert.deepEqual(failed, [], 'no write failed (a deadlock or a broken invariant would)');

      // Each release above raced the payments and may have lost every time; one more, with nothing racing it, so the
      // checks below always meet a released epoch.
      for (let epoch = 1; epoch <= EPOCHS; epoch++) {
        const quiet = await b.getEpoch(chainId, epoch);
        if (quiet?.release) break;
        if (quiet?.last) {
          assert.ok(await b.setRelease(chainId, epoch, release(epoch, quiet.last.index)), 'a quiet release is stored');
          break;
        }
      }
      const rows = await headsAndRows(url);
      assert.ok(
        rows.some((r) => r.hasRelease === 1),
        'some releases were stored',
      );
      for (const row of rows) {
        assert.equal(row.released, row.hasRelease, `epoch ${row.epoch}: head released ⇔ row carries the release`);
      }
      for (let epoch = 1; epoch <= EPOCHS; epoch++) {
        const stored = await a.getEpoch(chainId, epoch);
        assert.equal(stored?.last?.index ?? 0, okTo.get(epoch) ?? 0, `epoch ${epoch}: head is the last ok payment`);
        if (stored?.release) assert.equal(stored.release.index, stored.last?.index, `epoch ${epoch}: nothing past it`);
        assert.equal(
          await a.recordPayment(pay(epoch, stored?.last?.index ?? 0, (stored?.last?.index ?? 0) + 1)),
          stored?.release ? 'conflict' : 'ok',
          `epoch ${epoch}: a payment after the release is refused, one before it is taken`,
        );
      }
      const fresh = await a.getEpoch(chainId, 105);
      assert.deepEqual(fresh?.last, { index: 0, payword: chain.b64(0) }, 'a started epoch has its head at the start');
    });

    it('a head that disagrees with its epoch row is refused where it is written, and nothing of the write stays', async () => {
      const { a, url } = await twoStores();
      await a.saveChain(chainRecordOf(chain, 1));
      await a.insertEpoch(epochRecordOf(chain, 1, null));
      await a.insertEpoch(epochRecordOf(chain, 2, 0));
      const db = openDatabase<unknown>(url);
      try {
        // Epoch 1: a head moved although the epoch has no start (no payment can do that).
        await sql`UPDATE netpay_epoch_heads SET last_index = 5, last_payword = ${chain.b64(5)} WHERE epoch = 1`.execute(
          db.db,
        );
        await assert.rejects(a.setStart(chainId, 1, { index: 0, payword: chain.b64(0) }, null), /head moved/);
        assert.equal((await a.getEpoch(chainId, 1))?.start, null, 'the start rolled back with the refusal');
        // Epoch 2: a row carrying a release its head does not say (only setRelease writes both, together).
        await sql`UPDATE netpay_epochs SET release = ${JSON.stringify(release(2, 0))} WHERE epoch = 2`.execute(db.db);
        await assert.rejects(a.setRelease(chainId, 2, release(2, 0)), /released head/);
        const { rows } = await sql<{ released: number }>`
          SELECT released FROM netpay_epoch_heads WHERE epoch = 2`.execute(db.db);
        assert.equal(Number(rows[0]?.released), 0, 'the head is not marked released when the release is refused');
      } finally {
        await db.close();
      }
    });
  });
}

describe('review: migration 006 committed on SQLite but not recorded', () => {
  const stores: SpendStore[] = [];
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    for (const d of drops) await d();
  });

  it('runs again as nothing: heads, released flags and payments stay as they were', async () => {
    const test = await createTestDatabase('sqlite');
    drops.push(test.drop);
    const first = await createSpendStore(test.url);
    await first.saveChain(chainRecordOf(chain, 1));
    await first.insertEpoch(epochRecordOf(chain, 1, 0));
    await first.insertEpoch(epochRecordOf(chain, 2, 0));
    assert.equal(await first.recordPayment(pay(1, 0, 3)), 'ok');
    assert.equal(await first.recordPayment(pay(2, 0, 5)), 'ok');
    assert.deepEqual(await first.setRelease(chainId, 1, release(1, 3)), release(1, 3));
    await first.close();
    // The process stopped after 006's COMMIT, before the migrator wrote its record.
    const raw = openDatabase<unknown>(test.url);
    await sql`DELETE FROM netpay_vendor_migration WHERE name = '006_epoch_heads'`.execute(raw.db);
    // Migrations run in order: the one after 006 goes back too (it only makes a table).
    await sql`DROP TABLE netpay_job_locks`.execute(raw.db);
    await sql`DELETE FROM netpay_vendor_migration WHERE name = '007_job_locks'`.execute(raw.db);
    await migrateSpendStore(raw.db as Kysely<unknown>, raw.engine, migrations);
    await raw.close();

    const store = await createSpendStore(test.url);
    stores.push(store);
    assert.deepEqual((await store.getEpoch(chainId, 1))?.last?.index, 3);
    assert.deepEqual((await store.getEpoch(chainId, 2))?.last?.index, 5);
    assert.equal(await store.recordPayment(pay(1, 3, 4)), 'conflict', 'the released epoch stays closed');
    assert.equal(await store.recordPayment(pay(2, 5, 6)), 'ok');
    assert.deepEqual(
      (await headsAndRows(test.url)).map((r) => [r.epoch, r.released, r.hasRelease]),
      [
        [1, 1, 1],
        [2, 0, 0],
      ],
    );
  });
});
