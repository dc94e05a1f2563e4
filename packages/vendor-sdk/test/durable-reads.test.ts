/**
 * What the store reads is answered on only once it is durable: a read may see a commit whose fsync is still running
 * (another process's on the same SQLite file, or the next group commit of this one), and a decision resting on it
 * (a retry served free, an article served again, a checkpoint the broker takes) could be taken back by a failed
 * fsync or a power cut. Found by an adversarial test session; each case answered or reported before the fix.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { b64uEncode, PaywordChain } from '@netpay/protocol';
import { createTestDatabase } from '@netpay/service-kit/testing';
import type { PaymentDecision, SpendStore } from '../src/index.ts';
import { createSpendStore } from '../src/spend-store.ts';
import { gatedDisk } from './gated-disk.ts';
import { heldChainVendor, holdChain, outcome, payWith } from './held-chains.ts';
import { settle, waitUntil, watched } from './watched.ts';
import { connectedSession, sameSiteRead, walletVendor } from './wallet-sessions.ts';

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Two stores on one SQLite file (two processes of one vendor), each with its own held fsyncs. */
async function twoStores() {
  const db = await createTestDatabase('sqlite');
  cleanup.push(db.drop);
  const a = gatedDisk();
  const b = gatedDisk();
  const storeA = await createSpendStore(db.url, { disk: a.disk, fsync: { place: 'threadpool' } });
  cleanup.push(() => storeA.close());
  const storeB = await createSpendStore(db.url, { disk: b.disk, fsync: { place: 'threadpool' } });
  cleanup.push(() => storeB.close());
  return { a, b, storeA, storeB };
}

describe('reads wait for durability (SQLite)', () => {
  it("another process's retry of a payment whose fsync is running waits for an fsync of its own", async () => {
    const { a, b, storeA, storeB } = await twoStores();
    const chain = PaywordChain.generate(10);
    await holdChain(storeA, chain);
    const vendorA = heldChainVendor(storeA);
    const vendorB = heldChainVendor(storeB);
    cleanup.push(
      () => vendorA.close(),
      () => vendorB.close(),
    );

    a.gate.holding = true;
    b.gate.holding = true;
    const paying = payWith(vendorA, chain, 1, 'r1');
    await waitUntil(() => a.gate.waiting.length === 1, "A's fsync held");
    // The retry reaches the other process, which does not hold the chain in memory: it reads A's commit.
    let answered: PaymentDecision | undefined;
    const retry = payWith(vendorB, chain, 1, 'r1').then((d) => (answered = d));
    await waitUntil(() => b.gate.waiting.length >= 1, "B's read waits for an fsync of B's");
    await pause(50);
    assert.equal(answered, undefined, 'B answered on a commit that is not on disk');
    a.gate.holding = false;
    a.gate.release();
    assert.deepEqual(outcome(await paying), ['paid', true]);
    b.gate.open();
    assert.deepEqual(outcome(await retry), ['paid', false], 'once durable, the retry is free');
  });

  it("another process serves a session's purchase again only once that purchase is durable", async () => {
    const { a, b, storeA, storeB } = await twoStores();
    const seed = randomBytes(32);
    const vendorOn = (store: SpendStore) => {
      const vendor = walletVendor(store, seed);
      cleanup.push(() => vendor.close());
      return vendor;
    };
    const chain = PaywordChain.generate(100);
    const session = await connectedSession(storeA, chain);
    const read = sameSiteRead(session, 'GET /a');
    const vendorA = vendorOn(storeA);
    const vendorB = vendorOn(storeB);

    a.gate.holding = true;
    b.gate.holding = true;
    const first = vendorA.charge(read);
    await waitUntil(() => a.gate.waiting.length === 1, "the purchase's fsync held");
    let answered: PaymentDecision | undefined;
    const second = vendorB.charge(read).then((d) => (answered = d));
    await waitUntil(() => b.gate.waiting.length >= 1, "B's read waits for an fsync of B's");
    await pause(50);
    assert.equal(answered, undefined, 'B served the article on a purchase that is not on disk');
    a.gate.holding = false;
    a.gate.release();
    assert.deepEqual(outcome(await first), ['paid', true]);
    b.gate.open();
    assert.deepEqual(outcome(await second), ['paid', false]);
  });

  it('a lease checkpoint tells the broker only a durable index, never one the next group commit wrote', async () => {
    // A listener that records what the vendor sends as a checkpoint (and refuses it, so nothing else follows).
    const checkpoints: { index: number }[] = [];
    const server = createServer((req, res) => {
      let data = '';
      req.on('data', (chunk) => {
        data += chunk;
      });
      req.on('end', () => {
        const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        if (req.url?.startsWith('/.well-known/netpay')) {
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({
              broker: base,
              currency: 'NZD',
              keys: [{ keyId: 'bk1', alg: 'Ed25519', publicKey: b64uEncode(randomBytes(32)) }],
              feeBps: 0,
              maxChainLength: 1000,
              api: `${base}/v1`,
            }),
          );
          return;
        }
        if (req.url?.includes('/checkpoint')) checkpoints.push(JSON.parse(data));
        res.statusCode = 503;
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => server.close(resolve)));

    const db = await createTestDatabase('sqlite');
    cleanup.push(db.drop);
    const { gate, disk } = gatedDisk();
    const store = await createSpendStore(db.url, { disk, fsync: { place: 'threadpool' } });
    cleanup.push(() => store.close());
    const chain = PaywordChain.generate(10);
    await holdChain(store, chain);
    const vendor = heldChainVendor(store, {
      brokerUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      // Late enough in the lease for a renewal to checkpoint.
      clock: { now: () => new Date(Date.now() + 17 * 3_600_000) },
    });
    cleanup.push(() => vendor.close());
    assert.deepEqual(outcome(await payWith(vendor, chain, 1, 'r1')), ['paid', true]);

    gate.holding = true;
    const second = payWith(vendor, chain, 2, 'r2');
    await waitUntil(() => gate.waiting.length === 1, "payment 2's fsync held");
    const renewing = vendor.renewLeases();
    await pause(20); // the checkpoint waits for the chain's writes: payment 2
    const third = payWith(vendor, chain, 3, 'r3'); // waits for the batch in flight
    await pause(20);
    // Payment 2 is durable; payment 3's batch commits before 2 is answered, and its fsync is held.
    gate.release();
    await waitUntil(() => gate.waiting.length === 1, "payment 3's fsync held");
    assert.deepEqual(outcome(await second), ['paid', true]);
    await pause(50);
    assert.equal(checkpoints.length, 0, 'a checkpoint sent while the index it read is not on disk');
    gate.failNext = true;
    gate.holding = false;
    gate.release();
    assert.deepEqual(outcome(await third), ['problem', 'internal_error']);
    await renewing.catch(() => undefined);
    assert.ok(
      checkpoints.every((c) => c.index <= 2),
      `the broker was told index ${checkpoints.map((c) => c.index)}`,
    );
  });

  it('a read waiting for durability costs a payment on another chain no fsync more', async () => {
    const fsyncsFor = async (withRead: boolean) => {
      const db = await createTestDatabase('sqlite');
      cleanup.push(db.drop);
      const { gate, disk } = gatedDisk();
      const store = await createSpendStore(db.url, { disk, fsync: { place: 'threadpool' } });
      cleanup.push(() => store.close());
      const a = PaywordChain.generate(10);
      const b = PaywordChain.generate(10);
      await holdChain(store, a);
      await holdChain(store, b);
      const vendor = heldChainVendor(store);
      cleanup.push(() => vendor.close());
      assert.deepEqual(outcome(await payWith(vendor, a, 1, 'r1')), ['paid', true]);
      assert.deepEqual(outcome(await payWith(vendor, b, 1, 'r1')), ['paid', true]);
      gate.holding = true;
      const first = watched(payWith(vendor, a, 2, 'r2'));
      await waitUntil(() => gate.waiting.length === 1, "the first payment's fsync held");
      // A read while that fsync runs joins the next round; the next batch (on another chain) should join it too.
      const read = withRead ? watched(store.getEpoch(a.chainIdB64, 1)) : undefined;
      await settle();
      const second = watched(payWith(vendor, b, 2, 'r2'));
      await settle();
      let released = 0;
      while (!second.settled && released < 10) {
        await waitUntil(() => gate.waiting.length >= 1 || second.settled, 'an fsync held');
        if (second.settled) break;
        gate.release();
        released++;
        await settle();
      }
      assert.ok(first.settled && second.settled);
      assert.deepEqual(outcome(await second.promise), ['paid', true]);
      if (read) assert.equal((await read.promise)?.last?.index, 2);
      gate.open();
      return released;
    };
    const without = await fsyncsFor(false);
    assert.equal(await fsyncsFor(true), without, 'fsyncs the second payment waited for, with a read meanwhile');
  });

  it('a refusal citing the last index is answered only once that index is durable', async () => {
    const db = await createTestDatabase('sqlite');
    cleanup.push(db.drop);
    const { gate, disk } = gatedDisk();
    const store = await createSpendStore(db.url, { disk, fsync: { place: 'threadpool' } });
    cleanup.push(() => store.close());
    const chain = PaywordChain.generate(10);
    await holdChain(store, chain);
    // One process on the store: a refusal is not taken for a stale cache, so nothing is reloaded before it.
    const vendor = heldChainVendor(store, { storeShared: false });
    cleanup.push(() => vendor.close());
    assert.deepEqual(outcome(await payWith(vendor, chain, 1, 'r1')), ['paid', true]);

    // Held, then durable: the refusal waits for it and cites it.
    gate.holding = true;
    const second = payWith(vendor, chain, 2, 'r2');
    await waitUntil(() => gate.waiting.length === 1, "payment 2's fsync held");
    const stale = watched(payWith(vendor, chain, 2, 'another article'));
    await pause(50);
    assert.equal(stale.settled, false, 'already_spent answered while the index it cites is not on disk');
    // (The refusal's own reads wait for fsyncs of their own: let every one run from here.)
    gate.holding = false;
    gate.release();
    assert.deepEqual(outcome(await second), ['paid', true]);
    const refused = await stale.promise;
    assert.deepEqual(outcome(refused), ['problem', 'already_spent']);
    assert.equal(refused.kind === 'problem' ? refused.body.lastIndex : undefined, 2);

    // Held, then failed: the index is never cited.
    gate.holding = true;
    const third = payWith(vendor, chain, 3, 'r3');
    await waitUntil(() => gate.waiting.length === 1, "payment 3's fsync held");
    const late = watched(payWith(vendor, chain, 3, 'yet another article'));
    await pause(50);
    assert.equal(late.settled, false);
    gate.failNext = true;
    gate.holding = false;
    gate.release();
    assert.deepEqual(outcome(await third), ['problem', 'internal_error']);
    assert.deepEqual(outcome(await late.promise), ['problem', 'internal_error'], 'no refusal from a lost index');
  });
});
