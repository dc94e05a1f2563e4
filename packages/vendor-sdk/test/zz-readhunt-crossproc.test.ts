/**
 * readhunt: a retry served free by another process from a commit whose fsync has not run (and then fails).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { createTestDatabase } from '@netpay/service-kit/testing';
import { createSpendStore, type SpendStore } from '../src/spend-store.ts';
import { gatedDisk } from './gated-disk.ts';
import { heldChainVendor, holdChain, outcome, payWith } from './held-chains.ts';
import { waitUntil } from './watched.ts';

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

describe('readhunt: two processes of one vendor on one SQLite file', () => {
  it('process B serves a retry of a payment A committed but whose fsync is held, then fails', async () => {
    const db = await createTestDatabase('sqlite');
    cleanup.push(db.drop);
    const a = gatedDisk();
    const b = gatedDisk();
    const storeA: SpendStore = await createSpendStore(db.url, { disk: a.disk, fsync: { place: 'threadpool' } });
    cleanup.push(() => storeA.close());
    const storeB: SpendStore = await createSpendStore(db.url, { disk: b.disk, fsync: { place: 'threadpool' } });
    cleanup.push(() => storeB.close());
    const chain = PaywordChain.generate(10);
    await holdChain(storeA, chain);
    const vendorA = heldChainVendor(storeA);
    cleanup.push(() => vendorA.close());
    const vendorB = heldChainVendor(storeB);
    cleanup.push(() => vendorB.close());

    a.gate.holding = true;
    b.gate.holding = true; // B's own fsyncs are held too: anything B waits for durability on would hang here
    const paying = payWith(vendorA, chain, 1, 'r1');
    await waitUntil(() => a.gate.waiting.length === 1, "A's fsync held");
    // The reader's retry goes to another process (load balancer): B does not hold the chain in memory.
    let bAnswer: unknown;
    const retry = payWith(vendorB, chain, 1, 'r1').then((d) => (bAnswer = outcome(d)));
    await new Promise((resolve) => setTimeout(resolve, 100));
    console.log('B answered before any fsync of the commit:', bAnswer, 'B fsyncs waiting', b.gate.waiting.length);
    a.gate.failNext = true;
    a.gate.holding = false;
    a.gate.release();
    console.log('A answers', outcome(await paying));
    b.gate.holding = false;
    for (const next of b.gate.waiting.splice(0)) next();
    console.log('B answers', await retry);
    assert.notDeepEqual(bAnswer, ['paid', false], 'B served the payment free before its record was durable');
  });
});
