import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { createTestDatabase } from '@netpay/service-kit/testing';
import { createSpendStore, type SpendStore } from '../src/spend-store.ts';
import { chainRecordOf, epochRecordOf } from './store-records.ts';

// SQLite only. A PASSIVE checkpoint in the worker copies what was committed when it began; SQLite restarts the WAL
// (writes it again from its start) only when a write begins with every frame checkpointed. With payments committed
// one batch right after another, a commit always lands while the worker's checkpoint runs, so without a pause the
// -wal file grows for as long as the load lasts.

const CHAINS = 20;
const LENGTH = 20_000;

describe('review: the -wal file under payments that never pause', () => {
  const stores: SpendStore[] = [];
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    for (const d of drops) await d();
  });

  it('stays bounded: the WAL is restarted from its start again and again', async (t) => {
    const db = await createTestDatabase('sqlite');
    drops.push(db.drop);
    const path = db.url.slice('sqlite:'.length);
    const restartFrames = 400;
    const store = await createSpendStore(db.url, { checkpointIntervalMs: 50, walRestartFrames: restartFrames });
    stores.push(store);
    const chains = Array.from({ length: CHAINS }, () => PaywordChain.generate(LENGTH));
    for (const chain of chains) {
      await store.saveChain(chainRecordOf(chain, 1));
      await store.insertEpoch(epochRecordOf(chain, 1, 0));
    }
    const end = Date.now() + 4000;
    let largest = 0;
    const sample = setInterval(() => {
      largest = Math.max(largest, statSync(`${path}-wal`).size);
    }, 100);
    let paid = 0;
    try {
      await Promise.all(
        chains.map(async (chain) => {
          for (let i = 1; i < LENGTH && Date.now() < end; i++) {
            const result = await store.recordPayment({
              chainId: chain.chainIdB64,
              epoch: 1,
              expectedLastIndex: i - 1,
              index: i,
              payword: chain.b64(i),
              resource: 'a/1',
              amountMinor: 1,
              atMs: Date.now(),
            });
            assert.equal(result, 'ok');
            paid++;
          }
        }),
      );
    } finally {
      clearInterval(sample);
    }
    // What one second of payments at most adds past the restart bound, with room for a slow machine; without the
    // pause the file holds every frame of the run (several pages per batch, thousands of batches).
    const pageSize = 4096;
    const bound = (restartFrames + 4000) * (pageSize + 24);
    t.diagnostic(`${paid} payments, largest -wal file ${largest} bytes`);
    assert.ok(paid > 5000, `paid ${paid}`);
    assert.ok(largest < bound, `the -wal file reached ${largest} bytes (bound ${bound}) over ${paid} payments`);
  });
});
