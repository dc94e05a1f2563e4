import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { PreparedQuery } from '../src/prepared-query.ts';
import { brokerSuite } from './harness.ts';

/** A prepared query answers what the same Kysely query answers, with new values each run, on both engines. */
for (const engine of testEngines()) {
  describe(`prepared queries on ${engine}`, () => {
    const suite = brokerSuite(engine);

    test('slots take each run’s values; constants stay; inside and outside a transaction', async () => {
      for (const id of ['pq-a', 'pq-b', 'pq-c']) await suite.broker.addVendor(id);
      const named = new PreparedQuery((db, slot) =>
        db
          .selectFrom('vendors')
          .select(['id', 'name'])
          .where('id', 'in', [slot('first'), slot('second')])
          .where('id', '!=', 'pq-c')
          .orderBy('id'),
      );
      const db = suite.broker.database.db;
      assert.deepEqual(await named.all(db, { first: 'pq-a', second: 'pq-c' }), [{ id: 'pq-a', name: 'Vendor pq-a' }]);
      assert.deepEqual(
        (await named.all(db, { first: 'pq-b', second: 'pq-a' })).map((r) => r.id),
        ['pq-a', 'pq-b'],
      );
      const inside = await db.transaction().execute((trx) => named.first(trx, { first: 'pq-b', second: 'none' }));
      assert.deepEqual(inside, { id: 'pq-b', name: 'Vendor pq-b' });
      assert.equal(await named.first(db, { first: 'none', second: 'none' }), undefined);
    });
  });
}
