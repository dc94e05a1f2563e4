// The SDK's CORS option over real HTTP, for both adapters: a vendor built with the SDK behind Fastify and one behind
// Express, each answering preflights for its priced routes to the origins it lists (or to any with '*'), exposing
// WWW-Authenticate and NetPay-Receipt on a cross-origin 402 and paid answer, and giving other origins, free routes and
// vendors without the option no CORS headers at all.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { type PaywordChain, pickNetPayChallenge } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  CorsPolicy,
  createNetPayVendor,
  createSpendStore,
  type NetPayCorsOptions,
  type NetPayVendor,
  netpayExpress,
  netpayFastify,
  netpayReleaseHandler,
  type SpendStore,
} from '../src/index.ts';
import { articleRoutes, get, startWorld, type World } from './harness.ts';

const READER = 'https://reader.example';
const EVIL = 'https://evil.example';
const CORS_HEADERS = [
  'access-control-allow-origin',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-expose-headers',
  'access-control-allow-credentials',
  'access-control-max-age',
];

function preflight(url: string, origin: string, method = 'GET'): Promise<Response> {
  return fetch(url, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization' },
  });
}

function noCorsHeaders(res: { headers: Headers }, what: string): void {
  for (const name of CORS_HEADERS) assert.equal(res.headers.get(name), null, `${what}: ${name}`);
}

function exposed(res: { headers: Headers }): string[] {
  return (res.headers.get('access-control-expose-headers') ?? '').split(',').map((h) => h.trim().toLowerCase());
}

interface Started {
  url: string;
  close(): Promise<void>;
}

/** A vendor of the world behind one adapter, with /articles/:id priced at 2 and /free free. */
type Adapter = (world: World, id: string, cors?: NetPayCorsOptions) => Promise<Started>;

async function vendorOf(world: World, id: string) {
  const identity = await world.registerVendorIdentity(id);
  const store = await createSpendStore(identity.storeUrl);
  const vendor = createNetPayVendor({
    vendorId: identity.id,
    brokerUrl: world.brokerUrl,
    apiKey: identity.apiKey,
    signingKey: identity.signingKey,
    releaseUrl: `${identity.url}/netpay/release`,
    store,
  });
  const closeVendor = async (vendor: NetPayVendor, store: SpendStore) => {
    await vendor.close();
    await store.close();
  };
  return { identity, vendor, close: () => closeVendor(vendor, store) };
}

const onFastify: Adapter = async (world, id, cors) => {
  const { identity, vendor, close } = await vendorOf(world, id);
  const app: FastifyInstance = Fastify({ logger: false });
  await app.register(netpayFastify, cors ? { vendor, cors } : { vendor });
  articleRoutes(app, { '1': 2, '2': 2, '3': 2 });
  await app.listen({ host: '127.0.0.1', port: identity.port });
  return {
    url: identity.url,
    close: async () => {
      await app.close();
      await close();
    },
  };
};

const onExpress: Adapter = async (world, id, cors) => {
  const { identity, vendor, close } = await vendorOf(world, id);
  const app = express();
  app.post('/netpay/release', express.json(), netpayReleaseHandler(vendor));
  const paid = netpayExpress(vendor, cors ? { price: 2, cors } : { price: 2 });
  app.options('/articles/:id', paid);
  app.get('/articles/:id', paid, (req, res) => {
    res.json({ article: req.params.id, paid: res.locals.netpay ?? null });
  });
  app.get('/free', (_req, res) => {
    res.json({ free: true });
  });
  const server: Server = app.listen(identity.port, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: identity.url,
    close: async () => {
      await new Promise((resolve) => server.close(resolve));
      await close();
    },
  };
};

describe('CorsPolicy', () => {
  it('normalises the listed origins and refuses entries that are not origins', () => {
    const policy = new CorsPolicy({ origins: ['HTTPS://Reader.Example/', 'http://127.0.0.1:8080'] });
    assert.equal(policy.allowOrigin(READER), READER);
    assert.equal(policy.allowOrigin('http://127.0.0.1:8080'), 'http://127.0.0.1:8080');
    assert.equal(policy.allowOrigin(EVIL), undefined);
    assert.equal(policy.allowOrigin('null'), undefined);
    assert.equal(policy.allowOrigin(undefined), undefined);
    assert.equal(policy.variesByOrigin, true);
    assert.equal(new CorsPolicy({ origins: '*' }).allowOrigin('null'), '*');
    for (const bad of [
      'reader.example',
      'https://reader.example/path',
      'ftp://reader.example',
      '*',
      'https://u:p@x.example',
    ]) {
      assert.throws(() => new CorsPolicy({ origins: [bad] }), TypeError, bad);
    }
    assert.equal(policy.preflightHeaders(READER, 'DELETE', ['GET', 'HEAD']), undefined);
    assert.equal(policy.preflightHeaders(EVIL, 'GET', ['GET', 'HEAD']), undefined);
    assert.equal(policy.preflightHeaders(READER, 'get', ['GET', 'HEAD'])?.['access-control-allow-origin'], READER);
  });
});

for (const engine of testEngines()) {
  for (const [name, adapter] of [
    ['Fastify', onFastify],
    ['Express', onExpress],
  ] as const) {
    describe(`CORS for priced routes behind ${name} on ${engine}`, () => {
      let world: World;
      let listed: Started;
      let anyOrigin: Started;
      let closed: Started;
      let chain: PaywordChain;
      const tag = `${name.toLowerCase()}-${engine}`.slice(0, 20);

      before(async () => {
        world = await startWorld({ engine });
        listed = await adapter(world, `listed-${tag}`, { origins: [READER] });
        anyOrigin = await adapter(world, `any-${tag}`, { origins: '*' });
        closed = await adapter(world, `closed-${tag}`);
        ({ chain } = await world.buyCoin(20));
      });

      after(async () => {
        for (const started of [listed, anyOrigin, closed]) await started?.close();
        await world?.close();
      });

      it('answers a preflight from a listed origin: the Authorization header allowed, no credentials', async () => {
        const res = await preflight(`${listed.url}/articles/1`, READER);
        assert.equal(res.status, 204);
        assert.equal(res.headers.get('access-control-allow-origin'), READER);
        assert.match(res.headers.get('access-control-allow-methods') ?? '', /\bGET\b/);
        assert.match(res.headers.get('access-control-allow-headers') ?? '', /\bAuthorization\b/i);
        assert.ok(Number(res.headers.get('access-control-max-age')) > 0);
        assert.equal(res.headers.get('access-control-allow-credentials'), null);
        assert.match(res.headers.get('vary') ?? '', /\bOrigin\b/i);
      });

      it('exposes WWW-Authenticate on a cross-origin 402, and NetPay-Receipt on the paid answer', async () => {
        const unpaid = await get(`${listed.url}/articles/1`, undefined, { origin: READER });
        assert.equal(unpaid.status, 402);
        assert.equal(unpaid.headers.get('access-control-allow-origin'), READER);
        assert.equal(unpaid.headers.get('access-control-allow-credentials'), null);
        assert.ok(exposed(unpaid).includes('www-authenticate'), String(exposed(unpaid)));
        assert.ok(exposed(unpaid).includes('netpay-receipt'));
        assert.equal(pickNetPayChallenge(unpaid.headers.get('www-authenticate') ?? undefined)?.price, 2);

        const paid = await get(`${listed.url}/articles/1`, { chain, index: 2 }, { origin: READER });
        assert.equal(paid.status, 200, JSON.stringify(paid.body));
        assert.ok(paid.headers.get('netpay-receipt'));
        assert.equal(paid.headers.get('access-control-allow-origin'), READER);
        assert.ok(exposed(paid).includes('netpay-receipt'));
      });

      it('gives an origin it does not list no CORS headers, on the preflight and on the 402', async () => {
        noCorsHeaders(await preflight(`${listed.url}/articles/1`, EVIL), 'preflight');
        const unpaid = await get(`${listed.url}/articles/2`, undefined, { origin: EVIL });
        assert.equal(unpaid.status, 402);
        noCorsHeaders(unpaid, '402');
        assert.match(unpaid.headers.get('vary') ?? '', /\bOrigin\b/i, 'caches must not reuse it for a listed origin');
      });

      it('leaves free routes and vendors without the option same-origin', async () => {
        noCorsHeaders(await preflight(`${listed.url}/free`, READER), 'free preflight');
        noCorsHeaders(await get(`${listed.url}/free`, undefined, { origin: READER }), 'free answer');
        noCorsHeaders(await preflight(`${closed.url}/articles/1`, READER), 'preflight without the option');
        const unpaid = await get(`${closed.url}/articles/1`, undefined, { origin: READER });
        assert.equal(unpaid.status, 402);
        noCorsHeaders(unpaid, '402 without the option');
      });

      it("with origins '*' answers any origin with *", async () => {
        const res = await preflight(`${anyOrigin.url}/articles/3`, EVIL);
        assert.equal(res.status, 204);
        assert.equal(res.headers.get('access-control-allow-origin'), '*');
        const unpaid = await get(`${anyOrigin.url}/articles/3`, undefined, { origin: EVIL });
        assert.equal(unpaid.status, 402);
        assert.equal(unpaid.headers.get('access-control-allow-origin'), '*');
        assert.ok(exposed(unpaid).includes('www-authenticate'));
      });
    });
  }
}
