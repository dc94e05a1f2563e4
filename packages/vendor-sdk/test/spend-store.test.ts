import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { openDatabase, sql } from '@netpay/service-kit';
import { createTestDatabase, testEngines } from '@netpay/service-kit/testing';
import { type ChainRecord, createSpendStore, type EpochRecord, redemptionItem, type SpendStore } from '../src/index.ts';

const chain = PaywordChain.generate(50);
const chainId = chain.chainIdB64;

const touchstone = {
  chainId,
  anchor: chain.anchorB64,
  length: 50,
  unit: 2,
  currency: 'NZD',
  broker: 'http://broker.test',
  keyId: 'bk1',
  issuedAt: '2026-11-24T00:00:00Z',
  expiresAt: '2027-11-24T00:00:00Z',
  sig: 'A'.repeat(86),
};
const holder = {
  chainId,
  epoch: 1,
  vendorId: 'daily-planet',
  prevVendorId: '',
  prevEpoch: 0,
  broker: 'http://broker.test',
  keyId: 'bk1',
  issuedAt: '2026-11-24T00:00:00Z',
  expiresAt: '2026-11-24T01:00:00Z',
  sig: 'A'.repeat(86),
};

const chainRecord: ChainRecord = {
  chainId,
  touchstone,
  unit: 2,
  length: 50,
  currency: 'NZD',
  expiresAtMs: Date.parse(touchstone.expiresAt),
};

function epochRecord(epoch: number, startIndex: number | null): EpochRecord {
  const start = startIndex === null ? null : { index: startIndex, payword: chain.b64(startIndex) };
  return {
    chainId,
    epoch,
    holder: { ...holder, epoch },
    leaseExpiresAtMs: Date.parse(holder.expiresAt),
    previous: null,
    start,
    startRelease: null,
    releaseReported: false,
    last: start,
    lastResource: null,
    release: null,
    superseded: false,
    redeemed: null,
    redeemedMinor: 0,
    rejectedMinor: 0,
  };
}

const pay = (expected: number, index: number, resource = `r${index}`) => ({
  chainId,
  epoch: 1,
  expectedLastIndex: expected,
  index,
  payword: chain.b64(index),
  resource,
  amountMinor: (index - expected) * 2,
  atMs: Date.now(),
});

for (const engine of testEngines()) {
  describe(`spend store on ${engine}`, () => {
    const stores: SpendStore[] = [];
    const drops: (() => Promise<void>)[] = [];
    after(async () => {
      for (const s of stores) await s.close();
      for (const d of drops) await d();
    });
    const open = async () => {
      const db = await createTestDatabase(engine);
      drops.push(db.drop);
      const store = await createSpendStore(db.url);
      stores.push(store);
      return { store, url: db.url };
    };
    /** The indexes in the payment journal, read past the store. */
    const journal = async (url: string): Promise<number[]> => {
      const db = openDatabase<unknown>(url);
      try {
        const { rows } = await sql<{ idx: number }>`SELECT idx FROM netpay_payment_journal ORDER BY idx`.execute(db.db);
        return rows.map((r) => Number(r.idx));
      } finally {
        await db.close();
      }
    };

    it('stores a chain and its epochs, and records payments with compare-and-set', async () => {
      const { store, url } = await open();
      await store.saveChain(chainRecord);
      assert.equal(await store.insertEpoch(epochRecord(1, 0)), true);
      assert.equal(await store.insertEpoch(epochRecord(1, 0)), false);
      assert.equal(await store.recordPayment(pay(0, 1)), 'ok');
      assert.equal(await store.recordPayment(pay(0, 2)), 'conflict');
      assert.equal(await store.recordPayment(pay(1, 3)), 'ok');
      const loaded = await store.loadChain(chainId);
      assert.equal(loaded?.chain.unit, 2);
      assert.deepEqual(loaded?.epochs[0]?.last, { index: 3, payword: chain.b64(3) });
      assert.equal(loaded?.epochs[0]?.lastResource, 'r3');
      assert.deepEqual(loaded?.entitlements.sort(), ['r1', 'r3']);
      // Survives a reopen (migrations run again harmlessly).
      const again = await createSpendStore(url);
      stores.push(again);
      assert.deepEqual((await again.loadChain(chainId))?.epochs[0]?.last?.index, 3);
      assert.deepEqual(await again.totals(), { earned: 6, pending: 6, redeemed: 0, rejected: 0 });
    });

    it('stores a new chain with its first epoch at once, and nothing when the chain is stored already', async () => {
      const { store, url } = await open();
      const other = await createSpendStore(url);
      stores.push(other);
      assert.equal(await store.insertFirstEpoch(chainRecord, epochRecord(1, 0)), true);
      const loaded = await other.loadChain(chainId);
      assert.equal(loaded?.chain.length, chain.length);
      assert.deepEqual(
        loaded?.epochs.map((e) => [e.epoch, e.start?.index, e.last?.index]),
        [[1, 0, 0]],
      );
      // Another process that also saw the chain as new: its epoch is not written, and the caller loads the chain.
      assert.equal(await other.insertFirstEpoch(chainRecord, epochRecord(2, 0)), false);
      assert.deepEqual(
        (await store.loadChain(chainId))?.epochs.map((e) => e.epoch),
        [1],
      );
      // The stored epoch takes payments as one inserted alone would.
      assert.equal(await store.recordPayment(pay(0, 1)), 'ok');
    });

    it('group-commits concurrent writes: of the same index at most one wins', async () => {
      const { store } = await open();
      await store.saveChain(chainRecord);
      await store.insertEpoch(epochRecord(1, 0));
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.recordPayment(pay(0, 1, `a${i}`))));
      assert.equal(results.filter((r) => r === 'ok').length, 1);
      // A pipeline of consecutive writes in one batch all succeed in order.
      const chained = await Promise.all([
        store.recordPayment(pay(1, 2)),
        store.recordPayment(pay(2, 3)),
        store.recordPayment(pay(3, 4)),
      ]);
      assert.deepEqual(chained, ['ok', 'ok', 'ok']);
    });

    it('sets a pending start once, stores the first release, tracks supersession', async () => {
      const { store } = await open();
      await store.saveChain(chainRecord);
      await store.insertEpoch(epochRecord(2, null));
      assert.equal((await store.activeEpochs()).length, 0);
      assert.equal(await store.setStart(chainId, 2, { index: 7, payword: chain.b64(7) }, null), true);
      assert.equal(await store.setStart(chainId, 2, { index: 8, payword: chain.b64(8) }, null), false);
      assert.equal((await store.activeEpochs()).length, 1);
      const release = {
        chainId,
        epoch: 2,
        vendorId: 'daily-planet',
        index: 7,
        payword: chain.b64(7),
        toVendorId: 'the-bugle',
        toEpoch: 3,
        keyId: 'v1',
        releasedAt: '2026-11-24T00:10:00Z',
        sig: 'B'.repeat(86),
      };
      assert.deepEqual(await store.setRelease(chainId, 2, release), release);
      assert.deepEqual(await store.setRelease(chainId, 2, { ...release, toVendorId: 'x' }), release);
      assert.equal(await store.recordPayment({ ...pay(7, 8), epoch: 2 }), 'conflict');
      assert.equal((await store.activeEpochs()).length, 0);
      await store.insertEpoch(epochRecord(4, 9));
      await store.markSuperseded(chainId, 4);
      assert.equal((await store.getEpoch(chainId, 4))?.superseded, true);

      // The next holder started from that release: it stays unreported until the broker has answered.
      await store.insertEpoch(epochRecord(3, null));
      await store.setStart(chainId, 3, { index: 7, payword: chain.b64(7) }, release);
      const started = await store.getEpoch(chainId, 3);
      assert.deepEqual([started?.startRelease, started?.releaseReported], [release, false]);
      assert.equal(redemptionItem(started as EpochRecord)?.from.release, undefined, 'nothing spent yet');
      await store.markReleaseReported(chainId, 3);
      assert.equal((await store.getEpoch(chainId, 3))?.releaseReported, true);
      // A released epoch's item ends at its release and carries it (v1.1 to.release).
      const released = { ...(await store.getEpoch(chainId, 2)), last: { index: 7, payword: chain.b64(7) } };
      const item = redemptionItem({ ...(released as EpochRecord), start: { index: 0, payword: chain.anchorB64 } });
      assert.deepEqual(item?.to, { index: 7, payword: chain.b64(7), release });
    });

    it('plans redemptions and keeps batches until they complete', async () => {
      const { store } = await open();
      await store.saveChain(chainRecord);
      await store.insertEpoch(epochRecord(1, 0));
      await store.recordPayment(pay(0, 4));
      const rows = await store.redeemable();
      assert.equal(rows.length, 1);
      await store.createBatch('k1', '{"items":[]}');
      assert.deepEqual(
        (await store.pendingBatches()).map((b) => b.key),
        ['k1'],
      );
      await store.completeBatch('k1', '{}', [
        { chainId, epoch: 1, to: { index: 4, payword: chain.b64(4) }, status: 'accepted', amountMinor: 8 },
      ]);
      // Applying twice changes nothing.
      await store.completeBatch('k1', '{}', [
        { chainId, epoch: 1, to: { index: 4, payword: chain.b64(4) }, status: 'accepted', amountMinor: 8 },
      ]);
      assert.equal((await store.pendingBatches()).length, 0);
      assert.equal((await store.redeemable()).length, 0);
      assert.deepEqual(await store.totals(), { earned: 8, pending: 0, redeemed: 8, rejected: 0 });
    });

    it('knows the point that first bought each resource of a chain, also after a reopen', async () => {
      const { store, url } = await open();
      await store.saveChain(chainRecord);
      await store.insertEpoch(epochRecord(1, 0));
      assert.equal(await store.recordPayment(pay(0, 2, 'article/1')), 'ok');
      assert.equal(await store.recordPayment(pay(2, 3, 'article/2')), 'ok');
      // The same chain pays for article/1 again (a route that charges every read): the first point stays.
      assert.equal(await store.recordPayment(pay(3, 5, 'article/1')), 'ok');
      assert.equal(await store.recordPayment(pay(5, 6, 'article/1')), 'ok');
      assert.deepEqual(await store.entitlement(chainId, 'article/1'), { index: 2, payword: chain.b64(2) });
      assert.deepEqual(await store.entitlement(chainId, 'article/2'), { index: 3, payword: chain.b64(3) });
      assert.equal(await store.entitlement(chainId, 'article/3'), undefined);
      assert.equal(await store.entitlement('another-chain', 'article/1'), undefined);
      const again = await createSpendStore(url);
      stores.push(again);
      assert.equal(await again.recordPayment(pay(6, 7, 'article/3')), 'ok');
      assert.deepEqual(await again.entitlement(chainId, 'article/3'), { index: 7, payword: chain.b64(7) });
      assert.deepEqual(await again.entitlement(chainId, 'article/1'), { index: 2, payword: chain.b64(2) });
      assert.deepEqual((await again.loadChain(chainId))?.entitlements.sort(), ['article/1', 'article/2', 'article/3']);
    });

    it('answers each payment of a batch as it would alone when another process paid the first index', async () => {
      const { store, url } = await open();
      const other = await createSpendStore(url);
      stores.push(other);
      await store.saveChain(chainRecord);
      await store.insertEpoch(epochRecord(1, 0));
      assert.equal(await other.recordPayment(pay(0, 1)), 'ok');
      // One batch: 0→1 loses (index 1 is paid), and 1→2, 2→3 then win as their own run.
      const results = await Promise.all([
        store.recordPayment(pay(0, 1, 'late')),
        store.recordPayment(pay(1, 2)),
        store.recordPayment(pay(2, 3)),
      ]);
      assert.deepEqual(results, ['conflict', 'ok', 'ok']);
      assert.equal((await store.getEpoch(chainId, 1))?.last?.index, 3);
      assert.deepEqual(await journal(url), [1, 2, 3], 'one journal row per payment that won');
      assert.equal(await store.entitlement(chainId, 'late'), undefined);
    });

    it('drops the journal rows of redeemed ranges, and totals stay what they were', async () => {
      const { store, url } = await open();
      await store.saveChain(chainRecord);
      await store.insertEpoch(epochRecord(1, 0));
      for (const [expected, index] of [
        [0, 1],
        [1, 3],
        [3, 4],
        [4, 6],
        [6, 7],
      ] as const) {
        assert.equal(await store.recordPayment(pay(expected, index)), 'ok');
      }
      const before = await store.totals();
      assert.deepEqual(before, { earned: 14, pending: 14, redeemed: 0, rejected: 0 });
      // The broker accepts 0 → 4; payments after it (6, 7) stay owed and in the journal.
      await store.createBatch('k1', '{"items":[]}');
      await store.completeBatch('k1', '{}', [
        { chainId, epoch: 1, to: { index: 4, payword: chain.b64(4) }, status: 'accepted', amountMinor: 8 },
      ]);
      const redeemed = { earned: 14, pending: 6, redeemed: 8, rejected: 0 };
      assert.deepEqual(await store.totals(), redeemed);
      assert.equal(await store.pruneJournal(), 3);
      assert.deepEqual(await journal(url), [6, 7]);
      assert.deepEqual(await store.totals(), redeemed, 'totals do not come from the journal');
      assert.equal(await store.pruneJournal(), 0);
      const plan = await store.redeemable();
      assert.deepEqual(
        plan.map((p) => [p.epoch.redeemed?.index, p.epoch.last?.index]),
        [[4, 7]],
      );
    });

    it('keeps a session wallet (allowance and sealed token, no seed), its purchases and its unreported notes', async () => {
      const { store } = await open();
      const record = {
        sessionHash: 'h'.repeat(43),
        chainId,
        epoch: 2,
        allowance: { index: 20, payword: chain.b64(20), expiresAtMs: 1_900_000_000_000 },
        refreshTokenSealed: 'nps1.sealed',
        balanceMinor: 480,
        balanceAtMs: 1_800_000_000_000,
        autoPayMaxMinor: 10,
        updatedAtMs: 1_800_000_000_000,
      };
      assert.equal(await store.getServerWallet(record.sessionHash), undefined);
      await store.putServerWallet(record);
      assert.deepEqual(await store.getServerWallet(record.sessionHash), record);
      const next = {
        ...record,
        allowance: { ...record.allowance, index: 35, payword: chain.b64(35) },
        balanceMinor: 465,
      };
      await store.putServerWallet(next);
      assert.deepEqual(await store.getServerWallet(record.sessionHash), next);

      const sale = (index: number, resource: string, amountMinor: number) =>
        store.recordWalletPurchase({
          sessionHash: record.sessionHash,
          resource,
          chainId,
          index,
          amountMinor,
          description: `Story ${resource}`,
          atMs: 1_800_000_000_000 + index,
        });
      await sale(5, 'article/1', 5);
      await sale(8, 'article/2', 3);
      await sale(15, 'article/3', 7);
      await sale(15, 'article/3', 7); // the same sale twice is one
      assert.deepEqual(
        (await store.walletPurchases(record.sessionHash)).sort((x, y) => x.index - y.index),
        [
          { resource: 'article/1', chainId, index: 5 },
          { resource: 'article/2', chainId, index: 8 },
          { resource: 'article/3', chainId, index: 15 },
        ],
      );
      assert.deepEqual(await store.unreportedNotes(chainId, 8), [
        { index: 5, amount: 5, description: 'Story article/1' },
        { index: 8, amount: 3, description: 'Story article/2' },
      ]);
      await store.dropNotes(chainId, 8);
      assert.deepEqual(await store.unreportedNotes(chainId, 100), [
        { index: 15, amount: 7, description: 'Story article/3' },
      ]);

      // A revoked connection forgets the wallet; what the session bought stays.
      await store.deleteServerWallet(record.sessionHash);
      assert.equal(await store.getServerWallet(record.sessionHash), undefined);
      assert.equal((await store.walletPurchases(record.sessionHash)).length, 3);
    });
  });
}
