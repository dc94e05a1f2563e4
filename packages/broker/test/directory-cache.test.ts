import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rotateSigningKey } from '@netpay/broker';
import { testEngines } from '@netpay/service-kit/testing';
import { brokerSuite } from './harness.ts';

/**
 * Issue 10, first payment fast: what a vendor fetches before its first claim (discovery, the vendor directory) may be
 * kept a minute and revalidated for a 304; what changes it (a key rotation) changes its ETag.
 */
for (const engine of testEngines()) {
  describe(`cacheable directory answers on ${engine}`, () => {
    const suite = brokerSuite(engine);

    /** The answer, then the same request naming its ETag. */
    async function twice(path: string): Promise<{ first: Response; again: Response; body: unknown }> {
      const first = await fetch(`${suite.broker.url}${path}`);
      const body = await first.json();
      const tag = first.headers.get('etag');
      assert.ok(tag, `${path} has an ETag`);
      const again = await fetch(`${suite.broker.url}${path}`, { headers: { 'if-none-match': `W/"x", ${tag}` } });
      return { first, again, body };
    }

    test('discovery: a minute of public caching, and 304 with no body for its ETag; a rotated key changes it', async () => {
      const { first, again, body } = await twice('/.well-known/netpay');
      assert.equal(first.status, 200);
      assert.equal(first.headers.get('cache-control'), 'public, max-age=60');
      assert.match(first.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal((body as { broker: string }).broker, suite.broker.url);
      assert.equal(again.status, 304);
      assert.equal(await again.text(), '');

      await suite.broker.database.db.transaction().execute((trx) => rotateSigningKey(trx, new Date()));
      const rotated = await fetch(`${suite.broker.url}/.well-known/netpay`, {
        headers: { 'if-none-match': first.headers.get('etag') ?? '' },
      });
      assert.equal(rotated.status, 200, 'a new key is a new answer');
      assert.notEqual(rotated.headers.get('etag'), first.headers.get('etag'));
      assert.equal(((await rotated.json()) as { keys: unknown[] }).keys.length, 2);
    });

    test('the vendor directory: cached and revalidated the same way; an unknown vendor is not cached', async () => {
      await suite.broker.addVendor('cached-v');
      const { first, again, body } = await twice('/api/v1/vendors/cached-v');
      assert.equal(first.status, 200);
      assert.equal(first.headers.get('cache-control'), 'public, max-age=60');
      assert.equal((body as { vendorId: string }).vendorId, 'cached-v');
      assert.equal(again.status, 304);
      const unknown = await fetch(`${suite.broker.url}/api/v1/vendors/nobody`);
      assert.equal(unknown.status, 404);
      assert.doesNotMatch(unknown.headers.get('cache-control') ?? '', /max-age=60/);
    });
  });
}
