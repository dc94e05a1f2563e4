// A 402 that offers NetPay beside other schemes, from a real vendor: a sandbox bank, a broker and a vendor built with
// the SDK behind Fastify, whose routes answer their 402s with a second challenge added by an onSend hook (a site
// that also takes bearer tokens, say). The wallet finds NetPay's challenge among them and pays it, once per engine.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pickNetPayChallenge } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import { createNetPayVendor, createSpendStore, netpayFastify } from '@netpay/vendor-sdk';
import Fastify, { type FastifyInstance } from 'fastify';
import { articleRoutes, startWorld, type World } from '@netpay/test-kit';
import { createWallet, MemoryCoinStore, WalletError } from '../src/index.ts';
import { TEST_CARD } from './helpers/test-net.ts';

/** The other challenge each article's 402 carries, and on which side of NetPay's. */
const OTHERS: Record<string, (netpay: string) => string> = {
  // Bearer first, with a quoted comma and escaped quotes that a comma-splitting reader would take for parameters.
  '1': (netpay) => `Bearer realm="x", error="invalid_token", error_description="pay, \\"then\\" read", ${netpay}`,
  // NetPay first, then token68 challenges.
  '2': (netpay) => `${netpay}, Negotiate YWJjZA==, Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==`,
};

for (const engine of testEngines()) {
  describe(`the wallet pays a real vendor's 402 that offers two schemes, on ${engine}`, () => {
    let world: World;
    let app: FastifyInstance;
    let closeVendor: () => Promise<void>;
    let url: string;

    before(async () => {
      world = await startWorld({ engine });
      const identity = await world.registerVendorIdentity('two-schemes');
      const store = await createSpendStore(identity.storeUrl);
      const vendor = createNetPayVendor({
        vendorId: identity.id,
        brokerUrl: world.brokerUrl,
        apiKey: identity.apiKey,
        signingKey: identity.signingKey,
        releaseUrl: `${identity.url}/netpay/release`,
        store,
      });
      app = Fastify({ logger: false });
      await app.register(netpayFastify, { vendor });
      app.addHook('onSend', async (request, reply, payload) => {
        const netpay = reply.getHeader('www-authenticate');
        const id = /\/articles\/(\w+)/.exec(request.url)?.[1] ?? '';
        const other = OTHERS[id];
        if (reply.statusCode === 402 && typeof netpay === 'string' && other) {
          reply.header('www-authenticate', other(netpay));
        }
        return payload;
      });
      articleRoutes(app, { '1': 3, '2': 4 });
      await app.listen({ host: '127.0.0.1', port: identity.port });
      url = identity.url;
      closeVendor = async () => {
        await app.close();
        await vendor.close();
        await store.close();
      };
    });

    after(async () => {
      await closeVendor?.();
      await world?.close();
    });

    test('each 402 carries two challenges, and the wallet pays the NetPay one', async () => {
      for (const [id, price] of [
        ['1', 3],
        ['2', 4],
      ] as const) {
        const raw = await fetch(`${url}/articles/${id}`, { headers: { accept: 'application/json' } });
        await raw.body?.cancel();
        assert.equal(raw.status, 402);
        const header = raw.headers.get('www-authenticate') ?? '';
        assert.match(header, /Bearer|Negotiate/);
        assert.deepEqual(pickNetPayChallenge(header), {
          realm: 'two-schemes',
          price,
          currency: 'NZD',
          broker: world.brokerUrl,
        });
      }

      const wallet = createWallet({ brokerUrl: world.brokerUrl, store: new MemoryCoinStore() });
      await wallet.register(`two-${engine}@example.com`, 'correct horse battery');
      await wallet.login(`two-${engine}@example.com`, 'correct horse battery');
      const coin = await wallet.buy({ amountMinor: 20, card: TEST_CARD });

      const first = await wallet.fetchWithPayment(`${url}/articles/1`);
      assert.equal(first.response.status, 200);
      const body = (await first.response.json()) as { article: string; paid: { charged: boolean } };
      assert.equal(body.article, '1');
      assert.equal(body.paid.charged, true);
      assert.equal(first.challenge?.price, 3);
      assert.deepEqual(
        first.payments.map((p) => [p.realm, p.chainId, p.index, p.status, p.receipt?.balanceMinor]),
        [['two-schemes', coin.chainId, 3, 'paid', 17]],
      );

      const second = await wallet.fetchWithPayment(`${url}/articles/2`);
      assert.equal(second.response.status, 200);
      await second.response.body?.cancel();
      assert.deepEqual(
        second.payments.map((p) => [p.index, p.status, p.receipt?.balanceMinor]),
        [[7, 'paid', 13]],
      );
      assert.deepEqual(await wallet.balance(), { NZD: 13 });
    });
  });
}

test('a 402 too broken to read is invalid_challenge only if it names NetPay', async () => {
  const answering = (header: string) =>
    createWallet({
      store: new MemoryCoinStore(),
      fetch: async () => new Response('{}', { status: 402, headers: { 'www-authenticate': header } }),
    });
  const other = await answering('Bearer realm="x').fetchWithPayment('http://127.0.0.1:1/x');
  assert.equal(other.response.status, 402);
  assert.deepEqual(other.payments, []);
  for (const header of ['Bearer realm="x", NetPay realm="x", price="5"', 'Bearer realm="x", NetPay realm="x']) {
    await assert.rejects(answering(header).fetch('http://127.0.0.1:1/x'), (err: unknown) => {
      assert.ok(err instanceof WalletError);
      assert.equal(err.code, 'invalid_challenge');
      return true;
    });
  }
});
