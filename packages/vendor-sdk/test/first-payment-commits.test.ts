import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { get, startWorld, type World } from './harness.ts';

/*
 * A reader's first payment at a vendor waits for the claim at the broker and for the vendor's own durable writes,
 * each an fsync of the SQLite WAL in turn: the tail of those fsyncs is the tail of the first payment. It read the
 * chain twice (an fsync each, though nothing was committed since the last one) and wrote the chain's record and its
 * first epoch in two commits: six fsyncs here. Now the reads wait for none when nothing was committed since an fsync
 * that completed began, and the chain comes with its first epoch in one commit: one fsync for those, one for the
 * payment.
 * (SQLite only: PostgreSQL's commit is durable when it returns, with no fsync of ours to count.)
 */
describe('a first payment at a vendor', () => {
  let world: World;
  before(async () => {
    world = await startWorld({ engine: 'sqlite' });
  });
  after(async () => world?.close());

  it('waits for two fsyncs of the vendor: the chain with its epoch, then the payment', async () => {
    let fsyncs = 0;
    const vendor = await world.addVendor('first-commits', {
      storeOptions: { observer: { fsynced: () => fsyncs++ } },
    });
    // A reader before this one: the vendor's own writes at its start are behind it.
    const { chain: earlier } = await world.buyCoin(10);
    assert.equal((await get(`${vendor.url}/articles/1`, { chain: earlier, index: 1 })).status, 200);
    const { chain } = await world.buyCoin(10);
    const before = fsyncs;
    assert.equal((await get(`${vendor.url}/articles/1`, { chain, index: 1 })).status, 200);
    assert.equal(fsyncs - before, 2, 'fsyncs for the claim and the first payment');
    const loaded = await vendor.store.loadChain(chain.chainIdB64);
    assert.deepEqual(
      loaded?.epochs.map((e) => [e.start?.index, e.last?.index]),
      [[0, 1]],
    );
    const next = fsyncs;
    assert.equal((await get(`${vendor.url}/articles/2`, { chain, index: 2 })).status, 200);
    assert.equal(fsyncs - next, 1, 'one fsync for a payment on a chain held');
  });
});
