import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseReceipt } from '@netpay/protocol';
import express from 'express';
import { testEngines } from '@netpay/service-kit/testing';
import {
  createNetPayVendor,
  createSpendStore,
  netpayCallbackHandler,
  netpayConnectHandler,
  netpayExpress,
  netpayPayHandler,
  netpayReleaseHandler,
} from '../src/index.ts';
import { Reader } from './connected-reader.ts';
import { get, startWorld, type World } from './harness.ts';

for (const engine of testEngines()) {
  describe(`Express middleware and release handler over real HTTP on ${engine}`, () => {
    let world: World;
    before(async () => {
      world = await startWorld({ engine });
    });
    after(async () => world?.close());

    it('charges, serves receipts, and releases a coin to a Fastify vendor', async () => {
      const identity = await world.registerVendorIdentity('express-shop');
      const store = await createSpendStore(identity.storeUrl);
      const vendor = createNetPayVendor({
        vendorId: identity.id,
        brokerUrl: world.brokerUrl,
        apiKey: identity.apiKey,
        signingKey: identity.signingKey,
        releaseUrl: `${identity.url}/netpay/release`,
        store,
      });
      const app = express();
      app.post('/netpay/release', express.json(), netpayReleaseHandler(vendor));
      app.get(
        '/articles/:id',
        netpayExpress(vendor, { price: (req) => (req.params.id === 'free' ? 0 : 2) }),
        (req, res) => {
          res.json({ article: req.params.id, paid: res.locals.netpay ?? null });
        },
      );
      const server = app.listen(identity.port, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      assert.equal((server.address() as AddressInfo).port, identity.port);
      try {
        const { chain } = await world.buyCoin(20);
        const unpaid = await get(`${identity.url}/articles/1`);
        assert.equal(unpaid.status, 402);
        assert.equal(unpaid.body.code, 'payment_required');
        assert.equal(unpaid.body.price, 2);
        assert.match(unpaid.headers.get('www-authenticate') ?? '', /^NetPay realm="express-shop", price="2"/);
        const html = await get(`${identity.url}/articles/1`, undefined, { accept: 'text/html' });
        assert.match(html.text, /Pay with NetPay/);
        assert.equal((await get(`${identity.url}/articles/free`)).status, 200);

        const paid = await get(`${identity.url}/articles/1`, { chain, index: 2 });
        assert.equal(paid.status, 200, JSON.stringify(paid.body));
        assert.deepEqual(parseReceipt(paid.headers.get('netpay-receipt') ?? undefined), {
          chain: chain.chainIdB64,
          index: 2,
          balance: 18,
        });
        assert.equal(paid.body.paid.charged, true);
        const short = await get(`${identity.url}/articles/2`, { chain, index: 3 });
        assert.equal(short.body.code, 'insufficient_amount');
        const bad = await get(`${identity.url}/articles/2`, undefined, { authorization: 'NetPay nonsense' });
        assert.equal(bad.status, 400);

        // A Fastify vendor takes the coin over; the Express vendor releases at 2.
        const f = await world.addVendor('fastify-shop');
        const moved = await get(`${f.url}/articles/1`, { chain, index: 3 });
        assert.equal(moved.status, 200, JSON.stringify(moved.body));
        const bogus = await fetch(`${identity.url}/netpay/release`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ holder: { nope: true } }),
        });
        assert.equal(bogus.status, 400);
        assert.equal(((await bogus.json()) as { code: string }).code, 'bad_request');
        const r1 = await vendor.redeemNow();
        const r2 = await f.vendor.redeemNow();
        assert.equal(r1.accepted + r2.accepted, 2);
        const result = await world.audit();
        assert.equal(result.ok, true, result.discrepancies.join('\n'));
      } finally {
        await new Promise((r) => server.close(r));
        await vendor.close();
        await store.close();
      }
    });

    it('connects a session, refuses a link from another site, and the same-site form pays once', async () => {
      const identity = await world.registerVendorIdentity('express-paper');
      const store = await createSpendStore(identity.storeUrl);
      const vendor = createNetPayVendor({
        vendorId: identity.id,
        brokerUrl: world.brokerUrl,
        apiKey: identity.apiKey,
        signingKey: identity.signingKey,
        releaseUrl: `${identity.url}/netpay/release`,
        store,
      });
      const app = express();
      app.post('/netpay/release', express.json(), netpayReleaseHandler(vendor));
      app.get('/netpay/connect', netpayConnectHandler(vendor));
      app.get('/netpay/callback', netpayCallbackHandler(vendor));
      app.post('/netpay/pay', netpayPayHandler(vendor));
      app.get(
        '/articles/:id',
        netpayExpress(vendor, {
          price: (req) => Number(req.params.id),
          description: (req) => `Story ${req.params.id}`,
        }),
        (req, res) => {
          res.json({ article: req.params.id, paid: res.locals.netpay ?? null });
        },
      );
      const server = app.listen(identity.port, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      try {
        const at = { id: identity.id, url: identity.url };
        const reader = await Reader.open(world, 200);
        const connected = await reader.connect(at, '3');
        assert.equal(connected.read.status, 200, connected.read.page.text.slice(0, 300));
        assert.equal(connected.read.charged, true);
        const cross = await reader.read(at, '4', { site: 'cross-site' });
        assert.equal(cross.status, 402);
        assert.equal(cross.reason, 'cross_site');
        assert.equal((await store.totals()).earned, 3, 'nothing charged for the link from another site');
        const paid = await reader.pressRead(at, cross.page);
        assert.equal(paid.status, 200, paid.page.text.slice(0, 300));
        assert.equal(paid.charged, true);
        assert.equal((await reader.read(at, '4')).charged, false);
        assert.equal((await store.totals()).earned, 7);
        const view = await vendor.sessionView(reader.session);
        assert.equal(view.wallet?.balanceMinor, (await reader.figures()).balance);
      } finally {
        await new Promise((r) => server.close(r));
        await vendor.close();
        await store.close();
      }
    });
  });
}
