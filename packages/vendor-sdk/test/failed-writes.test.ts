/**
 * Payments around a write that failed (an error, not a conflict: whether its commit reached the disk is unknown).
 * Nothing that rests on such a write is served as paid, and a payment advanced on top of it in memory is not
 * charged its units as well. Found by an adversarial test session; each case failed before its fix.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { createTestDatabase, testEngines } from '@netpay/service-kit/testing';
import { createSpendStore, type SpendStore } from '../src/spend-store.ts';
import { gatedDisk } from './gated-disk.ts';
import { heldChainVendor, heldVendor, holdChain, outcome, payWith } from './held-chains.ts';
import { waitUntil } from './watched.ts';

// The pg the journal's pool uses (the vendor SDK's own dependency), to fail or watch its queries in this process.
const pg = createRequire(new URL('../src/pg-spend-journal.ts', import.meta.url))('pg') as typeof import('pg');
type Query = (...args: unknown[]) => unknown;
const clientProto = pg.Client.prototype as unknown as { query: Query };

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

describe('a reload while a payment fsync is in flight (SQLite, fsync on the threadpool)', () => {
  it('waits for that fsync: when it fails, neither the reload nor a retry serves the payment as paid', async () => {
    const db = await createTestDatabase('sqlite');
    cleanup.push(db.drop);
    const { gate, disk } = gatedDisk();
    const store: SpendStore = await createSpendStore(db.url, { disk, fsync: { place: 'threadpool' } });
    cleanup.push(() => store.close());
    const chain = PaywordChain.generate(10);
    await holdChain(store, chain);
    const vendor = heldChainVendor(store);
    cleanup.push(() => vendor.close());
    assert.deepEqual(outcome(await payWith(vendor, chain, 1, 'r1')), ['paid', true]);

    gate.holding = true;
    const paying = payWith(vendor, chain, 2, 'r2');
    await waitUntil(() => gate.waiting.length === 1, 'its fsync held');
    // The same index for another resource: a refusal a stale cache could explain, so the chain is read again,
    // while the store holds the commit of index 2 but not yet its fate.
    const probing = payWith(vendor, chain, 2, 'other');
    await new Promise((resolve) => setTimeout(resolve, 20));
    gate.failNext = true;
    gate.holding = false;
    gate.release();
    assert.deepEqual(outcome(await paying), ['problem', 'internal_error']);
    assert.equal((await probing).kind, 'problem');
    const retry = await payWith(vendor, chain, 2, 'r2');
    assert.deepEqual(outcome(retry), ['problem', 'internal_error'], 'the failed payment is never served as paid');
    const reread = await payWith(vendor, chain, 1, 'r2');
    assert.notEqual(reread.kind, 'paid', 'nor is its resource an entitlement');
  });
});

/** The journal's batch statement, as a query's first argument names it. */
function isBatch(query: unknown): boolean {
  return (
    typeof query === 'object' &&
    query !== null &&
    String((query as { name?: unknown }).name).startsWith('netpay_payment_batch')
  );
}

for (const engine of testEngines().filter((e) => e === 'postgres')) {
  describe(`a failed batch statement (${engine})`, () => {
    it('fails the payment advanced on top of the failed one too, instead of charging it both units', async () => {
      const { store, chain, vendor } = await heldVendor(engine, cleanup);
      assert.deepEqual(outcome(await payWith(vendor, chain, 1, 'r1')), ['paid', true]);

      // The next batch statement fails as a dropped connection would, once its answer is let go.
      const original = clientProto.query;
      let letGo!: () => void;
      const held = new Promise<void>((resolve) => (letGo = resolve));
      let failNext = true;
      clientProto.query = function (this: unknown, ...args: unknown[]) {
        if (failNext && isBatch(args[0])) {
          failNext = false;
          const callback = args.find((a) => typeof a === 'function') as ((e: Error) => void) | undefined;
          const error = new Error('Connection terminated unexpectedly');
          if (callback) {
            void held.then(() => callback(error));
            return undefined;
          }
          return held.then(() => Promise.reject(error));
        }
        return original.apply(this, args);
      };
      try {
        const first = payWith(vendor, chain, 2, 'r2');
        await new Promise((resolve) => setTimeout(resolve, 20));
        // Checked against index 2 in memory: one unit, resting on a write that is about to fail.
        const second = payWith(vendor, chain, 3, 'r3');
        await new Promise((resolve) => setTimeout(resolve, 20));
        letGo();
        assert.deepEqual(outcome(await first), ['problem', 'internal_error']);
        assert.deepEqual(outcome(await second), ['problem', 'internal_error'], 'not charged 2 units for r3');
      } finally {
        clientProto.query = original;
      }
      // Sent again in order, each is one unit, and each unit is earned once.
      assert.deepEqual(outcome(await payWith(vendor, chain, 2, 'r2')), ['paid', true]);
      assert.deepEqual(outcome(await payWith(vendor, chain, 3, 'r3')), ['paid', true]);
      assert.equal((await store.totals()).earned, 3);
    });

    it('lives through the server dropping its idle journal connections', async () => {
      const { db, chain, vendor } = await heldVendor(engine, cleanup);
      // The journal's connections in this process: those that ran its batch statement.
      const original = clientProto.query;
      const journalPids = new Set<number>();
      clientProto.query = function (this: { processID?: number }, ...args: unknown[]) {
        if (isBatch(args[0]) && this.processID) {
          journalPids.add(this.processID);
        }
        return original.apply(this, args);
      };
      try {
        assert.deepEqual(outcome(await payWith(vendor, chain, 1, 'r1')), ['paid', true]);
      } finally {
        clientProto.query = original;
      }
      assert.ok(journalPids.size > 0);
      const uncaught: unknown[] = [];
      const onUncaught = (error: unknown) => uncaught.push(error);
      process.prependListener('uncaughtException', onUncaught);
      try {
        const admin = new pg.Client({ connectionString: db.url.replace(/[?&]schema=[^&]*/, '') });
        await admin.connect();
        try {
          await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [[...journalPids]]);
        } finally {
          await admin.end();
        }
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.deepEqual(uncaught, []);
        assert.deepEqual(outcome(await payWith(vendor, chain, 2, 'r2')), ['paid', true]);
      } finally {
        process.removeListener('uncaughtException', onUncaught);
      }
    });
  });
}
