import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ProtocolError } from '@netpay/protocol';
import {
  constantTimeEqualText,
  createService,
  hashPassword,
  isUniqueViolation,
  ManualClock,
  migrate,
  openDatabase,
  RateLimiter,
  requestFingerprint,
  rfc3339,
  sql,
  verifyPassword,
} from '../src/index.ts';
import { createTestDatabase, testEngines } from '../src/testing.ts';

for (const engine of testEngines()) {
  describe(`database on ${engine}`, () => {
    test('migrates, stores BIGINT money as safe integers, and reports unique violations', async () => {
      const testDb = await createTestDatabase(engine);
      const { db, close } = openDatabase<{ t: { id: string; amount: number } }>(testDb.url);
      try {
        await migrate(db as never, {
          '0001': {
            up: async (d) => {
              await d.schema
                .createTable('t')
                .addColumn('id', 'text', (c) => c.primaryKey())
                .addColumn('amount', 'bigint', (c) => c.notNull())
                .execute();
            },
          },
        });
        await db.insertInto('t').values({ id: 'a', amount: 9_007_199_254_740_991 }).execute();
        const row = await db.selectFrom('t').selectAll().executeTakeFirstOrThrow();
        assert.equal(row.amount, 9_007_199_254_740_991);
        assert.equal(typeof row.amount, 'number');
        const err = await db
          .insertInto('t')
          .values({ id: 'a', amount: 1 })
          .execute()
          .then(
            () => null,
            (e: unknown) => e,
          );
        assert.ok(isUniqueViolation(err), `expected a unique violation, got ${String(err)}`);
        // A second migrate is a no-op: restarts reuse the data.
        const count = await sql<{ n: number }>`select count(*) as n from t`.execute(db);
        assert.equal(Number(count.rows[0]?.n), 1);
      } finally {
        await close();
        await testDb.drop();
      }
    });
  });
}

describe('http edge', () => {
  const app = createService({ name: 'test', logger: undefined });
  app.post('/echo', async (request) => request.body);
  app.get('/boom', async () => {
    throw new Error('secret internals');
  });
  app.get('/known', async () => {
    throw new ProtocolError('unknown_chain', 'no such chain');
  });
  app.get('/later', async () => {
    throw new ProtocolError('rate_limited', 'busy', { retryAfter: 3 });
  });
  after(() => app.close());

  test('malformed JSON is a 400 problem', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/echo',
      payload: '{"a":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(res.json().code, 'bad_request');
  });

  test('a huge body is a 413 problem', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/echo',
      payload: JSON.stringify({ a: 'x'.repeat(200_000) }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().code, 'payload_too_large');
  });

  test('unexpected errors never show their message or stack', async () => {
    const res = await app.inject({ method: 'GET', url: '/boom' });
    assert.equal(res.statusCode, 500);
    assert.equal(res.json().code, 'internal_error');
    assert.ok(!res.body.includes('secret internals'));
  });

  test('protocol errors keep their code and status; unknown routes are 404 problems', async () => {
    const known = await app.inject({ method: 'GET', url: '/known' });
    assert.equal(known.statusCode, 402);
    assert.equal(known.json().type, 'urn:netpay:error:unknown_chain');
    const missing = await app.inject({ method: 'GET', url: '/nope' });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'not_found');
    assert.equal(known.headers['retry-after'], undefined);
  });

  test('a problem that says when to retry says it in Retry-After too', async () => {
    const later = await app.inject({ method: 'GET', url: '/later' });
    assert.equal(later.statusCode, 429);
    assert.equal(later.json().retryAfter, 3);
    assert.equal(later.headers['retry-after'], '3');
  });
});

describe('secrets and limits', () => {
  test('scrypt passwords verify only with the right password', async () => {
    const stored = await hashPassword('correct horse');
    assert.ok(stored.startsWith('scrypt$'));
    assert.equal(await verifyPassword('correct horse', stored), true);
    assert.equal(await verifyPassword('correct hors', stored), false);
  });

  test('constant-time text compare and request fingerprints', () => {
    assert.equal(constantTimeEqualText('abc', 'abc'), true);
    assert.equal(constantTimeEqualText('abc', 'abd'), false);
    assert.equal(
      requestFingerprint({ b: 1, a: [1, { d: 2, c: 3 }] }),
      requestFingerprint({ a: [1, { c: 3, d: 2 }], b: 1 }),
    );
    assert.notEqual(requestFingerprint({ a: 1 }), requestFingerprint({ a: 2 }));
  });

  test('the rate limiter refuses past capacity and refills with time', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(3, 1, clock);
    assert.deepEqual(
      [1, 2, 3, 4].map(() => limiter.take('ip')),
      [true, true, true, false],
    );
    assert.equal(limiter.take('other'), true);
    clock.advance(1000);
    assert.equal(limiter.take('ip'), true);
    assert.equal(limiter.take('ip'), false);
    assert.equal(rfc3339(clock.now()), '2026-11-24T00:00:01Z');
  });
});
