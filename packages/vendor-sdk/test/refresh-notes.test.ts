// A server-side wallet's allowance refresh reports at most 100 spend notes to the broker and drops only those it
// reported: the rest stay in the vendor's store and go with the next refresh, so the customer's history at the
// broker ends up with every sale exactly once (connection.ts #refresh, session-wallets.ts unreportedNotes).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashToken } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { Reader } from './connected-reader.ts';
import { startWorld, type TestVendor, type World } from './harness.ts';

const INJECTED = 129; // notes at indexes 1..129; the connect's own article is the 130th note, at index 130
const label = (i: number) => `Injected note ${String(i).padStart(3, '0')}`;

/** The descriptions of the "Read “…” at …" rows of the customer's history page at the broker. */
function spendRows(history: string): string[] {
  return [...history.matchAll(/Read “([^”]*)” at /g)].map((m) => m[1] ?? '');
}

for (const engine of testEngines()) {
  describe(`spend notes over 100 on ${engine}: a refresh reports 100 and keeps the rest for the next`, () => {
    let world: World;
    let a: TestVendor;
    const prices = { '1': 130, '2': 80, '3': 150 };

    before(async () => {
      world = await startWorld({ engine, feeBps: 200, broker: { allowanceMaxMinor: 200, connectionBlockMinor: 1000 } });
      a = await world.addVendor(`notes-a-${engine}`, { prices });
    });
    after(async () => world?.close());

    /** The broker's spend notes of a chain, by index. */
    const brokerNotes = async (chainId: string) =>
      (
        await world.brokerDb
          .selectFrom('spend_notes')
          .select(['idx', 'description'])
          .where('chain_id', '=', chainId)
          .orderBy('idx')
          .execute()
      ).map((n) => ({ index: Number(n.idx), description: n.description }));

    it('130 unreported notes: the first refresh reports 100 and keeps 30, the next reports the rest, each once', async () => {
      const reader = await Reader.open(world, 2000);
      await reader.setLimits('2.00', '50.00'); // articles up to NZ$2.00 without asking, NZ$50.00 a day
      const first = await reader.connect(a, '1');
      assert.equal(first.read.charged, true, 'article 1 (130c) paid on return');
      const session = hashToken(reader.session);
      const wallet = await a.store.getServerWallet(session);
      assert.ok(wallet);
      const chainId = wallet.chainId;
      assert.equal(wallet.allowance.index, 200);

      // 129 more sales of this session on the chain, at indexes 1..129, not yet reported (as if read one by one).
      for (let i = 1; i <= INJECTED; i++) {
        await a.store.recordWalletPurchase({
          sessionHash: session,
          resource: `GET /injected/${i}`,
          chainId,
          index: i,
          amountMinor: 1,
          description: label(i),
          atMs: Date.now(),
        });
      }
      // The store hands out the lowest 100 unreported notes (its limit); 101..130 are behind them.
      const before = await a.store.unreportedNotes(chainId, 1_000);
      assert.deepEqual(
        before.map((n) => n.index),
        Array.from({ length: 100 }, (_, i) => i + 1),
      );
      assert.deepEqual(await brokerNotes(chainId), [], 'nothing reported yet');

      // Article 2 (80c) is more than the 70c left: the wallet refreshes, reporting spent = 130 and 100 notes.
      const second = await reader.read(a, '2');
      assert.equal(second.status, 200, second.page.text.slice(0, 300));
      assert.equal(second.charged, true);
      assert.equal((await a.store.getServerWallet(session))?.chainId, chainId, 'the allowance grew on the same chain');

      // Only the 100 reported were dropped: 101..130 wait for the next refresh (and article 2's note at 210).
      const kept = await a.store.unreportedNotes(chainId, 1_000);
      assert.deepEqual(
        kept.map((n) => n.index),
        [...Array.from({ length: 30 }, (_, i) => 101 + i), 210],
        'the 30 unreported notes stay in the vendor store',
      );
      const reported = await brokerNotes(chainId);
      assert.deepEqual(
        reported.map((n) => n.index),
        Array.from({ length: 100 }, (_, i) => i + 1),
        'the broker has the first 100',
      );
      let rows = spendRows(await reader.history());
      assert.deepEqual(rows.slice().sort(), Array.from({ length: 100 }, (_, i) => label(i + 1)).sort());

      // Article 3 (150c) is more than the 120c left: the next refresh reports 101..130 and 210.
      const third = await reader.read(a, '3');
      assert.equal(third.status, 200, third.page.text.slice(0, 300));
      assert.equal(third.charged, true);
      assert.deepEqual(
        (await a.store.unreportedNotes(chainId, 1_000)).map((n) => n.index),
        [360],
        'only article 3, sold after the refresh, is left to report',
      );
      const all = await brokerNotes(chainId);
      assert.deepEqual(
        all.map((n) => n.index),
        [...Array.from({ length: 130 }, (_, i) => i + 1), 210],
      );
      rows = spendRows(await reader.history());
      const expected = [...Array.from({ length: INJECTED }, (_, i) => label(i + 1)), 'Article 1', 'Article 2'];
      assert.deepEqual(rows.slice().sort(), expected.sort(), 'every sale in the history exactly once');
    });
  });
}
