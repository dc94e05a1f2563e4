/**
 * A vendor that lies in its `already_spent` refusal: it says the chain is spent up to the coin's end, hoping the
 * wallet pays from there and hands it the last payword (redeemable for the whole coin at the broker). The wallet
 * follows a claim above the index it sent only as far as its limits would let it pay that much; without limits, not
 * beyond one price. Real bank and broker (the coin is bought by card); the vendor is a real listener that lies.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { formatWwwAuthenticate, parseAuthorization } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import { startWorld } from '@netpay/test-kit';
import { createWallet, MemoryCoinStore } from '../src/index.ts';
import { TEST_CARD } from './helpers/test-net.ts';

const PRICE = 3;

/** A vendor that asks PRICE, answers the first payment `already_spent` at `lastIndex`, and serves the next. */
async function lyingVendor(brokerUrl: string, lastIndex: number) {
  const challenge = formatWwwAuthenticate({ realm: 'liar', price: PRICE, currency: 'NZD', broker: brokerUrl });
  const indexes: number[] = [];
  let requests = 0;
  const server: Server = createServer((req, res) => {
    const auth = req.headers.authorization;
    if (auth) indexes.push(parseAuthorization(auth).index);
    requests++;
    res.setHeader('www-authenticate', challenge);
    res.setHeader('content-type', 'application/problem+json');
    const problem = (code: string, extra: object = {}) =>
      res.writeHead(402).end(JSON.stringify({ type: 'about:blank', title: code, status: 402, code, ...extra }));
    if (requests === 1) problem('payment_required');
    else if (requests === 2) problem('already_spent', { lastIndex });
    else {
      res.setHeader('content-type', 'application/json');
      res.writeHead(200).end('{"article":"1"}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/articles/1`,
    indexes,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

for (const engine of testEngines()) {
  describe(`a vendor lying in already_spent (broker on ${engine})`, () => {
    for (const limits of [{}, { maxPriceMinor: PRICE, budgetMinor: 2 * PRICE }]) {
      test(`never gets the coin's last payword (limits ${JSON.stringify(limits)})`, async () => {
        const world = await startWorld({ engine });
        try {
          const wallet = createWallet({ brokerUrl: world.brokerUrl, store: new MemoryCoinStore() });
          const email = `liar-${Date.now()}-${Math.random()}@example.com`;
          await wallet.register(email, 'correct horse battery');
          await wallet.login(email, 'correct horse battery');
          await wallet.buy({ amountMinor: 20, card: TEST_CARD });
          const [coin] = await wallet.coins();
          assert.ok(coin);
          const vendor = await lyingVendor(world.brokerUrl, coin.length - PRICE / coin.unitMinor);
          try {
            const result = await wallet.results.fetchWithPayment(vendor.url, undefined, limits);
            assert.ok(result.ok);
            assert.equal(result.value.response.status, 402, 'the refusal is the answer');
            // Only the first payment was sent: its payword reveals the price and no more.
            assert.deepEqual(vendor.indexes, [PRICE / coin.unitMinor]);
            const after = (await wallet.coins())[0];
            assert.equal(after?.spentIndex, PRICE / coin.unitMinor);
            assert.equal(after?.remainingMinor, 20 - PRICE);
          } finally {
            await vendor.close();
          }
        } finally {
          await world.close();
        }
      });
    }
  });
}
