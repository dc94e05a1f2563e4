import { after } from 'node:test';
import type { DatabaseEngine } from '@netpay/service-kit';
import { createTestDatabase } from '@netpay/service-kit/testing';
import { createSpendStore, type SpendStore } from '../src/spend-store.ts';

/**
 * Two spend stores on one fresh database, as two processes of one vendor have them. Call in a `describe`: the
 * stores are closed and the databases dropped after its tests.
 *
 * @example
 * const twoStores = twoStoresOf(engine);
 * it('…', async () => { const { a, b, url } = await twoStores(); });
 */
export function twoStoresOf(engine: DatabaseEngine): () => Promise<{ a: SpendStore; b: SpendStore; url: string }> {
  const stores: SpendStore[] = [];
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    for (const d of drops) await d();
  });
  return async () => {
    const db = await createTestDatabase(engine);
    drops.push(db.drop);
    const a = await createSpendStore(db.url);
    stores.push(a);
    const b = await createSpendStore(db.url);
    stores.push(b);
    return { a, b, url: db.url };
  };
}
