import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSigningKey, parseWwwAuthenticate, PaywordChain, formatAuthorization } from '@netpay/protocol';
import { createLogger } from '@netpay/service-kit';
import { createNetPayVendor, createSpendStore, type SpendStore } from '@netpay/vendor-sdk';
import type { FastifyInstance } from 'fastify';
import { createNewspaperApp } from '../src/app.ts';
import { SITES } from '../src/site.ts';

// No broker runs here: everything below is decided before a vendor would talk to one. A closed port makes any
// accidental broker call fail fast.
const BROKER = 'http://127.0.0.1:9';
const site = SITES['daily-planet'];
const free = site.articles.find((a) => a.priceMinor === 0)!;
const priced = site.articles.find((a) => a.priceMinor === 5)!;

describe('newspaper app (no broker)', () => {
  let dir: string;
  let store: SpendStore;
  let app: FastifyInstance;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'netpay-newspaper-'));
    store = await createSpendStore(`sqlite:${join(dir, 'spend.db')}`);
    const key = generateSigningKey();
    const vendor = createNetPayVendor({
      vendorId: site.vendorId,
      brokerUrl: BROKER,
      apiKey: 'test-key',
      signingKey: { privateSeed: key.privateSeed, keyId: 'test' },
      releaseUrl: 'http://127.0.0.1:4001/netpay/release',
      store,
      currency: 'NZD',
      brokerTimeoutMs: 500,
    });
    app = createNewspaperApp({ site, vendor, brokerUrl: BROKER, logger: createLogger('test', 'silent') });
    app.addHook('onClose', async () => {
      await vendor.close();
      await store.close();
    });
    await app.ready();
  });

  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the front page with every article and its price', async () => {
    const res = await app.inject({ url: '/', headers: { accept: 'text/html' } });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.ok(res.body.includes(site.name));
    for (const a of site.articles) assert.ok(res.body.includes(`/articles/${a.id}`));
    assert.ok(res.body.includes('NZ$0.05'));
    assert.ok(res.body.includes('>Free</span>'));
  });

  it('serves a free article without payment', async () => {
    const res = await app.inject({ url: `/articles/${free.id}`, headers: { accept: 'text/html' } });
    assert.equal(res.statusCode, 200);
    assert.ok(res.body.includes('Kōtare Street'));
    assert.equal(res.headers['netpay-receipt'], undefined);
    assert.ok(!res.body.includes('left on your coin'));
  });

  it('answers a browser asking for a priced article with 402 and the site paywall', async () => {
    const res = await app.inject({
      url: `/articles/${priced.id}`,
      headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
    });
    assert.equal(res.statusCode, 402);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    const challenge = parseWwwAuthenticate(String(res.headers['www-authenticate']));
    assert.deepEqual(challenge, { realm: site.vendorId, price: 5, currency: 'NZD', broker: BROKER });
    assert.ok(res.body.includes(site.name), 'the paywall is in the site look');
    assert.ok(res.body.includes('Read this story for NZ$0.05'));
    // The button runs connect at this site (server-side wallet), which goes on to the broker.
    assert.ok(res.body.includes(`href="/netpay/connect?return_to=${encodeURIComponent(`/articles/${priced.id}`)}"`));
    assert.ok(!res.body.includes(priced.body[1]!.slice(0, 40)), 'the paywall does not leak the article');
  });

  it('answers a program asking for a priced article with a 402 problem', async () => {
    for (const url of [`/articles/${priced.id}`, `/api/articles/${priced.id}`]) {
      const res = await app.inject({ url, headers: { accept: 'application/json' } });
      assert.equal(res.statusCode, 402, url);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const problem = res.json();
      assert.equal(problem.code, 'payment_required');
      assert.equal(problem.price, 5);
      assert.equal(problem.currency, 'NZD');
      assert.equal(problem.vendor, site.vendorId);
      assert.equal(problem.broker, BROKER);
      assert.ok(res.headers['www-authenticate']);
    }
  });

  it('rejects a malformed NetPay header with 400', async () => {
    const res = await app.inject({
      url: `/api/articles/${priced.id}`,
      headers: { accept: 'application/json', authorization: 'NetPay chain="x"' },
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().code, 'bad_request');
  });

  it('refuses a payword that does not verify without asking the broker', async () => {
    const chain = PaywordChain.generate(10);
    const res = await app.inject({
      url: `/api/articles/${priced.id}`,
      headers: {
        accept: 'application/json',
        authorization: formatAuthorization({ chain: chain.chainIdB64, index: 5, payword: chain.b64(5) }),
      },
    });
    // An unknown chain must be claimed from the broker, which is down here.
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().code, 'broker_unavailable');
  });

  it('lists articles as JSON for free', async () => {
    const res = await app.inject({ url: '/api/articles', headers: { accept: 'application/json' } });
    assert.equal(res.statusCode, 200);
    const body = res.json() as { articles: { id: string; title: string; priceMinor: number; currency: string }[] };
    assert.equal(body.articles.length, site.articles.length);
    assert.deepEqual(body.articles[0], {
      id: site.articles[0]!.id,
      title: site.articles[0]!.title,
      priceMinor: site.articles[0]!.priceMinor,
      currency: 'NZD',
    });
  });

  it('serves a free article through the API', async () => {
    const res = await app.inject({ url: `/api/articles/${free.id}` });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(Object.keys(res.json()), ['id', 'title', 'author', 'date', 'body']);
    assert.deepEqual(res.json().body, free.body);
  });

  it('answers an unknown article with 404: a problem for programs, a page for browsers', async () => {
    const api = await app.inject({ url: '/api/articles/no-such-story' });
    assert.equal(api.statusCode, 404);
    assert.equal(api.json().code, 'not_found');
    const json = await app.inject({ url: '/articles/no-such-story', headers: { accept: 'application/json' } });
    assert.equal(json.statusCode, 404);
    assert.equal(json.json().code, 'not_found');
    const page = await app.inject({ url: '/articles/<script>', headers: { accept: 'text/html' } });
    assert.equal(page.statusCode, 404);
    assert.ok(page.body.includes('Story not found'));
    assert.ok(!page.body.includes('<script>'));
  });

  it('shows the account page from local records when the broker is down', async () => {
    const res = await app.inject({ url: '/account', headers: { accept: 'text/html' } });
    assert.equal(res.statusCode, 200);
    assert.ok(res.body.includes('Vendor account'));
    assert.ok(res.body.includes('Earned'));
    assert.ok(res.body.includes('NZ$0.00'));
    assert.ok(res.body.includes('The broker could not be reached'));
  });
});
