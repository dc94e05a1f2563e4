// Property: whatever the sequence of payments, re-reads of bought resources, vendor faults, lost answers,
// resynchronisations and concurrency, the wallet never pays with the same (chain, index) twice, presents again only
// a point that bought the same resource at the same vendor, never sends an index past a chain's length, keeps its
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
  | { kind: 'pay'; read: Read; maxPrice?: number }
  | { kind: 'parallel'; reads: Read[] }
  | { kind: 'unavailable'; n: number }
  | { kind: 'lose-answer' }
  | { kind: 'spend-elsewhere'; coin: number; ahead: number }
  | { kind: 'buy'; amount: number; unit: number };

/** One article of one vendor: few enough that reads of articles already bought are frequent. */
type Read = { realm: keyof typeof PRICES; article: number };
const read: fc.Arbitrary<Read> = fc.record({
  realm: fc.constantFrom(...(Object.keys(PRICES) as (keyof typeof PRICES)[])),
  article: fc.nat(3),
});
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('pay' as const), read }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('pay' as const), read, maxPrice: fc.integer({ min: 0, max: 10 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('parallel' as const),
      reads: fc.array(read, { minLength: 2, maxLength: 5 }),
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

        const pay = async (r: Read, maxPriceMinor?: number) => {
          const url = `${net.url}/v/${r.realm}/a${r.article}`;
          try {
            const res =
              maxPriceMinor === undefined
                ? await wallet.fetch(url)
                : await wallet.fetch(url, undefined, { maxPriceMinor });
            await res.body?.cancel();
          } catch (err) {
            if (!(err instanceof WalletError && EXPECTED.has(err.code))) throw err;
          }
        };
        for (const o of ops) {
          if (o.kind === 'pay') await pay(o.read, o.maxPrice);
          else if (o.kind === 'parallel') await Promise.all(o.reads.map((r) => pay(r)));
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
        const received = net.received.filter((r) => mine.has(r.chain));
        // A re-read presents the point that bought the same resource before: it reveals nothing and pays nothing.
        const sent = received.filter((r) => !r.entitled);
        for (const [i, r] of received.entries()) {
          if (!r.entitled) continue;
          const bought = received
            .slice(0, i)
            .some(
              (p) =>
                !p.entitled &&
                p.accepted &&
                p.realm === r.realm &&
                p.resource === r.resource &&
                p.chain === r.chain &&
                p.index === r.index,
            );
          assert.ok(
            bought,
            `a re-read presented a point that did not buy ${r.realm}/${r.resource}: ${r.chain}:${r.index}`,
          );
        }
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
