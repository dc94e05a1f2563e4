/**
 * A server-side wallet (§7) around store failures: a re-read of an article is served only once the payment that
 * bought it is durable, and a purchase's note is committed in its payment's own transaction, so the article is not
 * charged twice once the wallet moves to another chain, whatever fails after the payment. Found by an adversarial
 * test session; the first three cases failed before their fixes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { hashToken } from '@netpay/service-kit';
import { createTestDatabase, testEngines } from '@netpay/service-kit/testing';
import type { PaymentDecision, SpendStore } from '../src/index.ts';
import { createSpendStore } from '../src/spend-store.ts';
import { describe as describeSale } from '../src/wallet-payment.ts';
import { gatedDisk } from './gated-disk.ts';
import { heldVendor, holdChain, outcome, payWith } from './held-chains.ts';
import { waitUntil } from './watched.ts';
import { connectedSession, notesFailing, sameSiteRead, walletVendor } from './wallet-sessions.ts';

const seed = randomBytes(32);
const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

function vendorOn(store: SpendStore) {
  const vendor = walletVendor(store, seed);
  cleanup.push(() => vendor.close());
  return vendor;
}

const read = sameSiteRead;

/**
 * The session's wallet moves to `next` (as a refresh onto a new chain stores it) and a restarted vendor reads the
 * session afresh: the article it bought is free, a new one is charged.
 */
async function movedWalletReads(store: SpendStore, session: string, next: PaywordChain): Promise<void> {
  const record = await store.getServerWallet(hashToken(session));
  assert.ok(record);
  await store.putServerWallet({
    ...record,
    chainId: next.chainIdB64,
    allowance: { ...record.allowance, payword: next.b64(50) },
  });
  const restarted = vendorOn(store);
  assert.deepEqual(outcome(await restarted.charge(read(session, 'GET /a'))), ['paid', false], 'not charged twice');
  assert.deepEqual(outcome(await restarted.charge(read(session, 'GET /b'))), ['paid', true]);
}

describe('a server-side wallet while a payment is being written (SQLite, fsync on the threadpool)', () => {
  it('serves a second read of the article only once the payment is durable, and not at all when it fails', async () => {
    const db = await createTestDatabase('sqlite');
    cleanup.push(db.drop);
    const { gate, disk } = gatedDisk();
    const store = await createSpendStore(db.url, { disk, fsync: { place: 'threadpool' } });
    cleanup.push(() => store.close());
    const chain = PaywordChain.generate(100);
    const session = await connectedSession(store, chain);
    const vendor = vendorOn(store);

    gate.holding = true;
    const first = vendor.charge(read(session, 'GET /a'));
    await waitUntil(() => gate.waiting.length === 1, 'its fsync held');
    let secondAnswer: PaymentDecision | undefined;
    const second = vendor.charge(read(session, 'GET /a')).then((d) => (secondAnswer = d));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(secondAnswer, undefined, 'answered before the payment that bought the article is on disk');
    gate.failNext = true;
    gate.holding = false;
    gate.release();
    assert.deepEqual(outcome(await first), ['problem', 'internal_error']);
    assert.notEqual((await second).kind, 'paid', 'served although the only payment for it failed');
  });
});

for (const engine of testEngines()) {
  describe(`a server-side wallet purchase on record without its note (${engine})`, () => {
    it('is noted when the session reads the article again (a failed try too), so another chain does not charge it', async () => {
      const db = await createTestDatabase(engine);
      cleanup.push(db.drop);
      const real = await createSpendStore(db.url);
      cleanup.push(() => real.close());
      let failNote = true;
      const store = notesFailing(real, () => failNote);
      const c1 = PaywordChain.generate(100);
      const c2 = PaywordChain.generate(100);
      const session = await connectedSession(store, c1);
      await holdChain(store, c2);
      // The session's chain bought the article without a note (as before notes went with their payments).
      const bought = {
        chainId: c1.chainIdB64,
        epoch: 1,
        expectedLastIndex: 0,
        index: 1,
        payword: c1.b64(1),
        resource: 'GET /a',
        amountMinor: 1,
        atMs: Date.now(),
      };
      assert.equal(await store.recordPayment(bought), 'ok');
      assert.deepEqual(await real.walletPurchases(hashToken(session)), []);

      const vendor = vendorOn(store);
      // Read again on the same chain: free (the chain's entitlement); the note is tried, and fails.
      assert.deepEqual(outcome(await vendor.charge(read(session, 'GET /a'))), ['paid', false]);
      assert.deepEqual(await real.walletPurchases(hashToken(session)), []);
      failNote = false;
      // Read once more: free, and the missing note is written now.
      assert.deepEqual(outcome(await vendor.charge(read(session, 'GET /a'))), ['paid', false]);
      assert.deepEqual(await real.walletPurchases(hashToken(session)), [
        { resource: 'GET /a', chainId: c1.chainIdB64, index: 1 },
      ]);

      // The wallet moves to another chain (as a refresh onto a new chain stores it); a restarted vendor reads it.
      await movedWalletReads(store, session, c2);
    });
  });
}

for (const engine of testEngines()) {
  describe(`a server-side wallet purchase is noted in its payment's transaction (${engine})`, () => {
    it('moves to another chain without a re-read and is not charged twice, even when a note apart would fail', async () => {
      const db = await createTestDatabase(engine);
      cleanup.push(db.drop);
      const real = await createSpendStore(db.url);
      cleanup.push(() => real.close());
      // Any note written apart from the payment fails: only one committed with it survives.
      const store = notesFailing(real, () => true);
      const c1 = PaywordChain.generate(100);
      const c2 = PaywordChain.generate(100);
      const session = await connectedSession(store, c1);
      await holdChain(store, c2);

      const vendor = vendorOn(store);
      const bought = await vendor.charge({ ...read(session, 'GET /a'), description: '  The Long Read  ' });
      assert.deepEqual(outcome(bought), ['paid', true]);
      assert.deepEqual(await real.walletPurchases(hashToken(session)), [
        { resource: 'GET /a', chainId: c1.chainIdB64, index: 1 },
      ]);
      assert.deepEqual(await real.unreportedNotes(c1.chainIdB64, 100), [
        { index: 1, amount: 1, description: 'The Long Read' },
      ]);

      // No re-read: the wallet moves to another chain at once, and a restarted vendor reads the session afresh.
      await movedWalletReads(store, session, c2);
      assert.equal((await real.unreportedNotes(c2.chainIdB64, 100)).length, 1, 'one note for the one sale on c2');
    });

    it('writes no note for a payment whose compare-and-set loses', async () => {
      const db = await createTestDatabase(engine);
      cleanup.push(db.drop);
      const store = await createSpendStore(db.url);
      cleanup.push(() => store.close());
      const chain = PaywordChain.generate(10);
      await holdChain(store, chain);
      const write = {
        chainId: chain.chainIdB64,
        epoch: 1,
        index: 2,
        payword: chain.b64(2),
        resource: 'GET /a',
        amountMinor: 2,
        atMs: Date.now(),
        note: { sessionHash: 'session-1', description: 'an article' },
      };
      assert.equal(await store.recordPayment({ ...write, expectedLastIndex: 1 }), 'conflict');
      assert.deepEqual(await store.walletPurchases('session-1'), []);
      assert.deepEqual(await store.unreportedNotes(chain.chainIdB64, 10), []);
      assert.equal(await store.recordPayment({ ...write, expectedLastIndex: 0 }), 'ok');
      assert.deepEqual(await store.walletPurchases('session-1'), [
        { resource: 'GET /a', chainId: chain.chainIdB64, index: 2 },
      ]);
      assert.deepEqual(await store.unreportedNotes(chain.chainIdB64, 10), [
        { index: 2, amount: 2, description: 'an article' },
      ]);
    });
  });
}

for (const engine of testEngines()) {
  describe(`what a payment's batch is written with (${engine})`, () => {
    it("a description with control characters is noted without them and fails no one's payment", async () => {
      const db = await createTestDatabase(engine);
      cleanup.push(db.drop);
      const store = await createSpendStore(db.url);
      cleanup.push(() => store.close());
      const c1 = PaywordChain.generate(100);
      const c2 = PaywordChain.generate(100);
      const s1 = await connectedSession(store, c1);
      const s2 = await connectedSession(store, c2);
      const vendor = vendorOn(store);
      // Both chains and sessions in memory first, so the two payments below are issued in one turn: one batch.
      await vendor.charge(read(s1, 'GET /w'));
      await vendor.charge(read(s2, 'GET /w'));
      const [nul, other] = await Promise.all([
        vendor.charge({ ...read(s1, 'GET /a'), description: 'Title\u0000 \u0007of\nit' }),
        vendor.charge(read(s2, 'GET /b')),
      ]);
      assert.deepEqual(outcome(other), ['paid', true], "the other reader's payment");
      assert.deepEqual(outcome(nul), ['paid', true]);
      const notes = await store.unreportedNotes(c1.chainIdB64, 100);
      assert.deepEqual(
        notes.map((n) => n.description),
        ['GET /w', 'Title   of it'],
      );
    });

    it('a resource a site built with a NUL, or too long, is refused before anything is checked or written', async () => {
      const { store, chain, vendor } = await heldVendor(engine, cleanup);
      assert.deepEqual(outcome(await payWith(vendor, chain, 1, 'GET /a\u0000b')), ['problem', 'bad_request']);
      assert.deepEqual(outcome(await payWith(vendor, chain, 1, `GET /${'a'.repeat(2044)}`)), [
        'problem',
        'bad_request',
      ]);
      assert.deepEqual(outcome(await payWith(vendor, chain, 1, '')), ['problem', 'bad_request']);
      assert.equal((await store.totals()).earned, 0, 'nothing recorded');
      // The longest name that is allowed pays, at the index the refused ones did not use.
      assert.deepEqual(outcome(await payWith(vendor, chain, 1, `GET /${'a'.repeat(2043)}`)), ['paid', true]);
    });
  });
}

describe('the description of a sale', () => {
  it('drops control characters, falls back to the resource and is at most 120 characters', () => {
    assert.equal(describeSale({ description: ' A\u0000B\r\n ', resource: 'GET /x' }), 'A B');
    assert.equal(describeSale({ description: '\u0000\u001f', resource: 'GET /x' }), 'GET /x');
    assert.equal(describeSale({ resource: '\u0000' }), '-');
    assert.equal(describeSale({ description: 'é'.repeat(200), resource: 'GET /x' }).length, 120);
  });
});
