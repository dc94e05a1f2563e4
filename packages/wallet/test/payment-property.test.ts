// Property: whatever the sequence of payments, vendor faults, lost answers, resynchronisations and concurrency,
// the wallet never sends the same (chain, index) twice, never sends an index past a chain's length, keeps its
// spentIndex at or above everything it sent, and never pays more than its budget. fast-check prints the seed and
// the shrunk counterexample on failure; replay with `fc.assert(..., { seed, path })`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { PaywordChain } from '@netpay/protocol';
import { MemoryCoinStore, WalletError, createWallet } from '../src/index.ts';
import { TEST_CARD, type TestNet, startTestNet } from './helpers/test-net.ts';

const PRICES = { 'daily-planet': 5, 'the-bugle': 3, penny: 1, pricey: 40 };
let net: TestNet;
before(async () => {
  net = await startTestNet({ prices: PRICES });
});
after(async () => {
  await net.close();
});

type Op =
  | { kind: 'pay'; realm: keyof typeof PRICES; maxPrice?: number }
  | { kind: 'parallel'; realms: (keyof typeof PRICES)[] }
  | { kind: 'unavailable'; n: number }
  | { kind: 'lose-answer' }
  | { kind: 'spend-elsewhere'; coin: number; ahead: number }
  | { kind: 'buy'; amount: number; unit: number };

const realm = fc.constantFrom(...(Object.keys(PRICES) as (keyof typeof PRICES)[]));
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('pay' as const), realm }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('pay' as const), realm, maxPrice: fc.integer({ min: 0, max: 10 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('parallel' as const),
      realms: fc.array(realm, { minLength: 2, maxLength: 5 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unavailable' as const), n: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lose-answer' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('spend-elsewhere' as const),
      coin: fc.nat(3),
      ahead: fc.integer({ min: 1, max: 30 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('buy' as const),
      amount: fc.integer({ min: 1, max: 12 }),
      unit: fc.constantFrom(1, 1, 5),
    }),
  },
);

const EXPECTED = new Set(['budget_exceeded', 'no_suitable_coin', 'network_error', 'price_too_high']);

test('no index is ever sent twice and the budget is never exceeded', async () => {
  let users = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ amount: fc.integer({ min: 1, max: 12 }), unit: fc.constantFrom(1, 5) }), {
        minLength: 1,
        maxLength: 3,
      }),
      fc.integer({ min: 0, max: 150 }),
      fc.array(op, { maxLength: 25 }),
      async (initialCoins, budgetMinor, ops) => {
        let loseNext = false;
        const store = new MemoryCoinStore();
        const wallet = createWallet({
          brokerUrl: net.brokerUrl,
          store,
          budgetMinor,
          fetch: async (input, init) => {
            const res = await fetch(input, init);
            if (loseNext && new Headers(init?.headers).get('authorization')?.startsWith('NetPay ')) {
              loseNext = false;
              await res.body?.cancel();
              throw new TypeError('the answer was lost');
            }
            return res;
          },
        });
        const email = `prop${++users}@example.com`;
        await wallet.register(email, 'correct horse battery');
        await wallet.login(email, 'correct horse battery');
        const coins: string[] = [];
        const buy = async (amount: number, unit: number) => {
          coins.push((await wallet.buy({ amountMinor: amount * unit, unitMinor: unit, card: TEST_CARD })).chainId);
        };
        for (const c of initialCoins) await buy(c.amount, c.unit);

        const pay = async (r: keyof typeof PRICES, maxPriceMinor?: number) => {
          try {
            const res =
              maxPriceMinor === undefined
                ? await wallet.fetch(`${net.url}/v/${r}/x`)
                : await wallet.fetch(`${net.url}/v/${r}/x`, undefined, { maxPriceMinor });
            await res.body?.cancel();
          } catch (err) {
            if (!(err instanceof WalletError && EXPECTED.has(err.code))) throw err;
          }
        };
        for (const o of ops) {
          if (o.kind === 'pay') await pay(o.realm, o.maxPrice);
          else if (o.kind === 'parallel') await Promise.all(o.realms.map((r) => pay(r)));
          else if (o.kind === 'unavailable') net.faults.unavailable = o.n;
          else if (o.kind === 'lose-answer') loseNext = true;
          else if (o.kind === 'buy') await buy(o.amount, o.unit);
          else {
            // Another copy of this wallet spends further on one coin, behind this wallet's back.
            const state = await store.load();
            const coin = state?.coins[o.coin % (state?.coins.length ?? 1)];
            if (!coin) continue;
            const last = net.spends.get(coin.chainId)?.index ?? 0;
            const to = Math.min(coin.length, Math.max(last, coin.spentIndex) + o.ahead);
            if (to > last) {
              net.spendElsewhere(coin.chainId, to, PaywordChain.fromB64(coin.chainId, coin.seed, coin.length).b64(to));
            }
          }
        }
        net.faults.unavailable = 0;

        const mine = new Set(coins);
        const sent = net.received.filter((r) => mine.has(r.chain));
        const keys = sent.map((r) => `${r.chain}:${r.index}`);
        assert.equal(new Set(keys).size, keys.length, `an index was sent twice: ${keys.join(' ')}`);
        const state = await store.load();
        for (const coin of state?.coins ?? []) {
          const indexes = sent.filter((r) => r.chain === coin.chainId).map((r) => r.index);
          assert.ok(
            indexes.every((i) => i <= coin.length && i <= coin.spentIndex),
            `chain sent past its length or its stored spentIndex: ${indexes} / ${coin.spentIndex}`,
          );
        }
        const revealed = sent.reduce((sum, r) => sum + PRICES[r.realm as keyof typeof PRICES], 0);
        assert.ok(revealed <= budgetMinor, `revealed ${revealed} > budget ${budgetMinor}`);
        assert.ok((wallet.spentMinor().NZD ?? 0) <= budgetMinor);
      },
    ),
    { numRuns: 100 },
  );
});
