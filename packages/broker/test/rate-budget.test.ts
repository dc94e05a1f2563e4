import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock, migrate, openDatabase } from '@netpay/service-kit';
import { createTestDatabase, type TestDatabase, testEngines } from '@netpay/service-kit/testing';
import type { Kysely } from 'kysely';
import { migrations } from '../src/migrations.ts';
import { admit, budgetTerms, takeBudget } from '../src/rate-budget.ts';
import type { BrokerSchema } from '../src/schema.ts';

describe('the shared budget rule', () => {
  test('capacity at once, then one per interval; a refused take changes nothing', () => {
    const terms = budgetTerms({ capacity: 3, perSecond: 2 });
    assert.deepEqual(terms, { costUs: 500_000, toleranceUs: 1_500_000 });
    let tat: number | undefined;
    const now = 10_000_000;
    for (let i = 0; i < 3; i++) {
      const verdict = admit(tat, now, terms);
      assert.ok(verdict.ok);
      tat = verdict.tatUs;
    }
    assert.deepEqual(admit(tat, now, terms), { ok: false, retryAfterSeconds: 1 });
    assert.equal(admit(tat, now + 499_999, terms).ok, false);
    assert.equal(admit(tat, now + 500_000, terms).ok, true);
    // Idle long enough and the bucket is full again, never fuller.
    assert.deepEqual(admit(tat, now + 60_000_000, terms), { ok: true, tatUs: now + 60_500_000 });
  });

  test('a slow refill rounds the interval up and says how long to wait', () => {
    const terms = budgetTerms({ capacity: 40, perSecond: 40 / 86_400 });
    assert.equal(terms.costUs, 2_160_000_000);
    const full = 1_000_000 + 40 * terms.costUs;
    assert.deepEqual(admit(full, 1_000_000, terms), { ok: false, retryAfterSeconds: 2160 });
  });

  test('bad limits are refused', () => {
    assert.throws(() => budgetTerms({ capacity: 0, perSecond: 1 }));
    assert.throws(() => budgetTerms({ capacity: 2, perSecond: 0 }));
    assert.throws(() => budgetTerms({ capacity: 2, perSecond: 1 }, 3));
  });
});

for (const engine of testEngines()) {
  describe(`shared budgets in the store on ${engine}`, () => {
    let store: TestDatabase;
    // Two handles on one store, each with its own connections, as two broker processes have.
    let first: ReturnType<typeof openDatabase<BrokerSchema>>;
    let second: ReturnType<typeof openDatabase<BrokerSchema>>;
    before(async () => {
      store = await createTestDatabase(engine);
      first = openDatabase<BrokerSchema>(store.url);
      await migrate(first.db as unknown as Kysely<unknown>, migrations);
      second = openDatabase<BrokerSchema>(store.url);
    });
    after(async () => {
      await first?.close();
      await second?.close();
      await store?.drop();
    });

    test('the store follows the rule: capacity, refusal with a wait, refill with time, subjects apart', async () => {
      const clock = new ManualClock('2026-11-24T00:00:00Z');
      const limit = { capacity: 3, perSecond: 1 };
      const take = (subject = 'cus_1') => takeBudget(first.db, 'test', subject, limit, clock.now());
      for (let i = 0; i < 3; i++) assert.deepEqual(await take(), { ok: true });
      assert.deepEqual(await take(), { ok: false, retryAfterSeconds: 1 });
      assert.deepEqual(await take('cus_2'), { ok: true }, 'another subject has its own budget');
      clock.advance(999);
      assert.equal((await take()).ok, false);
      clock.advance(1);
      assert.deepEqual(await take(), { ok: true });
      assert.equal((await take()).ok, false);
      clock.advance(3_600_000);
      for (let i = 0; i < 3; i++) assert.deepEqual(await take(), { ok: true });
      assert.equal((await take()).ok, false, 'an idle hour refills the bucket, never past its capacity');
    });

    test('takes racing on two handles of one store never pass the budget together', async () => {
      const now = new Date('2026-11-24T00:00:00Z');
      const limit = { capacity: 10, perSecond: 1 / 3600 };
      const verdicts = await Promise.all(
        Array.from({ length: 40 }, (_, i) => takeBudget((i % 2 ? first : second).db, 'race', 'cus_r', limit, now)),
      );
      assert.equal(verdicts.filter((v) => v.ok).length, 10);
      for (const v of verdicts) if (!v.ok) assert.equal(v.retryAfterSeconds, 3600);
    });
  });
}
