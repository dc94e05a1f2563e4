// A client-side wallet in a real Chromium pays a vendor of another site: the page and its bundled wallet come from
// http://localhost:<port>, the broker and the vendors from 127.0.0.1 on their own ports, so every call the wallet
// makes is cross-site. The vendor built with the SDK (Fastify) opens its priced routes to the page's origin with the
// cors option, and its 402s carry a Bearer challenge before NetPay's; a second vendor without the option is refused
// by the browser itself.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { createNetPayVendor, createSpendStore, type NetPayCorsOptions, netpayFastify } from '@netpay/vendor-sdk';
import Fastify from 'fastify';
import type { Browser } from 'playwright-core';
import { articleRoutes, browserTestSkip, launchBrowser, startWorld, type World } from '@netpay/test-kit';
import { buildBrowserBundle } from '../src/index.ts';
import { TEST_CARD } from './helpers/test-net.ts';

const skip = browserTestSkip();

/** A vendor whose 402s also offer Bearer, before NetPay's challenge. */
async function startVendor(world: World, id: string, cors?: NetPayCorsOptions) {
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
  const app = Fastify({ logger: false });
  await app.register(netpayFastify, cors ? { vendor, cors } : { vendor });
  app.addHook('onSend', async (_request, reply, payload) => {
    const netpay = reply.getHeader('www-authenticate');
    if (reply.statusCode === 402 && typeof netpay === 'string') {
      reply.header('www-authenticate', `Bearer realm="api", error_description="a, \\"b\\"", ${netpay}`);
    }
    return payload;
  });
  articleRoutes(app, { '1': 3, '2': 4 });
  await app.listen({ host: '127.0.0.1', port: identity.port });
  return {
    url: identity.url,
    close: async () => {
      await app.close();
      await vendor.close();
      await store.close();
    },
  };
}

let browser: Browser;
let dir: string;
let bundle: Buffer;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'netpay-cross-origin-'));
  await buildBrowserBundle(join(dir, 'netpay-wallet.js'));
  bundle = await readFile(join(dir, 'netpay-wallet.js'));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

for (const engine of testEngines()) {
  describe(`a wallet on one site pays a vendor on another, on ${engine}`, { skip }, () => {
    let world: World;
    let page: Server;
    let pageOrigin: string;
    const vendors: { url: string; close(): Promise<void> }[] = [];

    before(async () => {
      world = await startWorld({ engine });
      page = createServer((req, res) => {
        if (req.url === '/netpay-wallet.js') {
          res.writeHead(200, { 'content-type': 'text/javascript' });
          return res.end(bundle);
        }
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<!doctype html><title>reader</title><p>a page of another site');
      });
      await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
      pageOrigin = `http://localhost:${(page.address() as AddressInfo).port}`;
      vendors.push(await startVendor(world, `open-${engine}`, { origins: [pageOrigin] }));
      vendors.push(await startVendor(world, `closed-${engine}`));
    });

    after(async () => {
      for (const v of vendors) await v.close();
      await new Promise((resolve) => page?.close(resolve));
      await world?.close();
    });

    test('the bundled wallet pays cross-origin and reads the receipt; a vendor without cors is refused', async () => {
      const [open, closed] = vendors;
      assert.ok(open && closed);
      const tab = await browser.newPage();
      const errors: string[] = [];
      tab.on('pageerror', (e) => errors.push(String(e)));
      await tab.goto(`${pageOrigin}/`);
      // A string, not a function: tsx's transform may add helpers to a function's text that the page lacks.
      const result = (await tab.evaluate(`(async () => {
        const { createWallet, MemoryCoinStore, WalletError } = await import('/netpay-wallet.js');
        const wallet = createWallet({ brokerUrl: ${JSON.stringify(world.brokerUrl)}, store: new MemoryCoinStore() });
        await wallet.register('cross-${engine}@example.com', 'correct horse battery');
        await wallet.login('cross-${engine}@example.com', 'correct horse battery');
        await wallet.buy({ amountMinor: 20, card: ${JSON.stringify(TEST_CARD)} });
        const paid = await wallet.fetchWithPayment(${JSON.stringify(`${open.url}/articles/1`)});
        let refused = '';
        try { await wallet.fetch(${JSON.stringify(`${closed.url}/articles/2`)}); }
        catch (e) { refused = e instanceof WalletError ? e.code : String(e); }
        return {
          origin: location.origin,
          status: paid.response.status,
          body: await paid.response.json(),
          price: paid.challenge && paid.challenge.price,
          receipt: paid.payments[0] && paid.payments[0].receipt,
          refused,
          balance: await wallet.balance(),
        };
      })()`)) as {
        origin: string;
        status: number;
        body: { article: string; paid: { charged: boolean } };
        price: number;
        receipt: { index: number; balanceMinor: number };
        refused: string;
        balance: Record<string, number>;
      };
      assert.equal(result.origin, pageOrigin);
      assert.equal(result.status, 200);
      assert.equal(result.body.article, '1');
      assert.equal(result.body.paid.charged, true);
      assert.equal(result.price, 3, 'the 402 and its WWW-Authenticate were readable across origins');
      assert.deepEqual(result.receipt, { index: 3, balanceMinor: 17 }, 'NetPay-Receipt was readable');
      assert.equal(result.refused, 'network_error', 'the browser keeps a vendor without cors to its own origin');
      assert.deepEqual(result.balance, { NZD: 17 });
      assert.deepEqual(errors, []);
      await tab.close();
    });
  });
}
