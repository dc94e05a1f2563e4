import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { MemoryCoinStore, type PaymentEntry, type Wallet, WalletError, createWallet } from '../src/index.ts';
import { DECLINED_CARD, TEST_CARD, type TestNet, startTestNet } from './helpers/test-net.ts';

let net: TestNet;
before(async () => {
  net = await startTestNet();
});
after(async () => {
  await net.close();
});

let userCount = 0;
const storeOf = new WeakMap<Wallet, MemoryCoinStore>();

async function newWallet(extra: Partial<Parameters<typeof createWallet>[0]> = {}): Promise<Wallet> {
  const store = (extra.store as MemoryCoinStore | undefined) ?? new MemoryCoinStore();
  const wallet = createWallet({ brokerUrl: net.brokerUrl, ...extra, store });
  storeOf.set(wallet, store);
  const email = `user${++userCount}@example.com`;
  await wallet.register(email, 'correct horse battery');
  await wallet.login(email, 'correct horse battery');
  return wallet;
}

const article = (realm: string, id: number | string) => `${net.url}/v/${realm}/articles/${id}`;

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<WalletError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof WalletError, `expected a WalletError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected WalletError ${code}`);
}

describe('account and purchase', () => {
  test('buy makes the chain locally and sends only chainId and anchor', async () => {
    const wallet = await newWallet();
    const coin = await wallet.buy({ amountMinor: 100, unitMinor: 1, card: TEST_CARD });
    assert.equal(coin.valueMinor, 100);
    assert.equal(coin.remainingMinor, 100);
    assert.equal(coin.currency, 'NZD');
    const sent = net.buyBodies.at(-1) as Record<string, unknown>;
    assert.deepEqual(Object.keys(sent).sort(), ['amount', 'anchor', 'chainId', 'payment', 'unit']);
    assert.equal(sent.chainId, coin.chainId);
    assert.deepEqual(await wallet.balance(), { NZD: 100 });
    const history = await wallet.history();
    assert.equal(history.length, 1);
    assert.equal(history[0]?.kind, 'purchase');
    assert.equal(await wallet.pendingPurchase(), undefined);
  });

  test('buy needs a session, a whole number of units, and a length the broker allows', async () => {
    const anon = createWallet({ brokerUrl: net.brokerUrl, store: new MemoryCoinStore() });
    await rejectsWith(anon.buy({ amountMinor: 10, card: TEST_CARD }), 'not_logged_in');
    const wallet = await newWallet();
    await rejectsWith(wallet.buy({ amountMinor: 10, unitMinor: 3, card: TEST_CARD }), 'invalid_argument');
    await rejectsWith(wallet.buy({ amountMinor: 1.5, card: TEST_CARD }), 'invalid_argument');
    await rejectsWith(wallet.buy({ amountMinor: 200_000, card: TEST_CARD }), 'invalid_argument');
    await wallet.logout();
    await rejectsWith(wallet.buy({ amountMinor: 10, card: TEST_CARD }), 'not_logged_in');
  });

  test('wrong password and declined card carry the broker’s code; a declined purchase is not left pending', async () => {
    const wallet = createWallet({ brokerUrl: net.brokerUrl, store: new MemoryCoinStore() });
    await wallet.register('decline@example.com', 'correct horse battery');
    await rejectsWith(wallet.login('decline@example.com', 'wrong password'), 'invalid_credentials');
    await rejectsWith(wallet.register('decline@example.com', 'correct horse battery'), 'email_taken');
    await wallet.login('decline@example.com', 'correct horse battery');
    const err = await rejectsWith(wallet.buy({ amountMinor: 10, card: DECLINED_CARD }), 'card_declined');
    assert.equal(err.status, 402);
    assert.equal(await wallet.pendingPurchase(), undefined);
    await wallet.buy({ amountMinor: 20, card: TEST_CARD });
    assert.deepEqual(await wallet.balance(), { NZD: 20 });
  });

  test('a buy whose answer is lost is retried with the same idempotency key and chain: one charge', async () => {
    const wallet = await newWallet();
    const charges = net.charges;
    net.faults.dropNextBuyResponse = true;
    await rejectsWith(wallet.buy({ amountMinor: 50, card: TEST_CARD }), 'network_error');
    assert.deepEqual(await wallet.pendingPurchase(), {
      amountMinor: 50,
      unitMinor: 1,
      createdAt: (await wallet.pendingPurchase())?.createdAt,
    });
    await rejectsWith(wallet.buy({ amountMinor: 70, card: TEST_CARD }), 'purchase_pending');
    const coin = await wallet.buy({ amountMinor: 50, card: TEST_CARD });
    assert.equal(net.charges, charges + 1);
    const [a, b] = net.buyBodies.slice(-2) as { chainId: string; anchor: string }[];
    assert.equal(a?.chainId, coin.chainId);
    assert.deepEqual(a, b);
    assert.equal((await wallet.coins()).length, 1);
    assert.equal(await wallet.pendingPurchase(), undefined);
  });

  test('a touchstone that does not match the chain is refused', async () => {
    const wallet = await newWallet();
    net.faults.badNextTouchstone = true;
    await rejectsWith(wallet.buy({ amountMinor: 10, card: TEST_CARD }), 'invalid_touchstone');
    assert.deepEqual(await wallet.coins(), []);
    assert.notEqual(await wallet.pendingPurchase(), undefined);
    await wallet.discardPendingPurchase();
    assert.equal(await wallet.pendingPurchase(), undefined);
  });

  test('refund takes the coin out of use and logs the refund', async () => {
    const wallet = await newWallet();
    const coin = await wallet.buy({ amountMinor: 40, card: TEST_CARD });
    await wallet.fetch(article('daily-planet', 1));
    const result = await wallet.refund(coin.chainId);
    assert.deepEqual(result, { chainId: coin.chainId, refundedMinor: 35, currency: 'NZD', releasedIndex: 5 });
    assert.equal((await wallet.coins())[0]?.status, 'refunded');
    assert.deepEqual(await wallet.balance(), {});
    assert.equal((await wallet.history()).at(-1)?.kind, 'refund');
    await rejectsWith(wallet.fetch(article('daily-planet', 2)), 'no_suitable_coin');
    await rejectsWith(wallet.refund(coin.chainId), 'not_refundable');
    assert.equal((await wallet.coins())[0]?.status, 'refunded');
  });

  test('sync learns a higher spent index from the broker, never a lower one', async () => {
    const wallet = await newWallet();
    const coin = await wallet.buy({ amountMinor: 40, card: TEST_CARD });
    net.spendElsewhere(coin.chainId, 12, await paywordOf(wallet, coin.chainId, 12));
    const [synced] = await wallet.sync();
    assert.equal(synced?.spentIndex, 12);
    assert.equal((await wallet.brokerCoins()).coins[0]?.spentIndex, 12);
  });
});

/** Reads a payword out of the wallet's store (tests only: plays "another copy of the wallet"). */
async function paywordOf(wallet: Wallet, chainId: string, index: number): Promise<string> {
  const state = await storeOf.get(wallet)?.load();
  const coin = state?.coins.find((c) => c.chainId === chainId);
  if (!coin) throw new Error('no such coin');
  return PaywordChain.fromB64(coin.chainId, coin.seed, coin.length).b64(index);
}

describe('paying', () => {
  async function walletWithCoin(amountMinor = 100, extra: Partial<Parameters<typeof createWallet>[0]> = {}) {
    const store = new MemoryCoinStore();
    const wallet = await newWallet({ store, ...extra });
    const coin = await wallet.buy({ amountMinor, card: TEST_CARD });
    return { wallet, coin, store };
  }

  test('free answers and 402s of other schemes are returned as they are', async () => {
    const { wallet } = await walletWithCoin();
    const free = await wallet.fetch(`${net.url}/free`);
    assert.equal(free.status, 200);
    assert.deepEqual(await free.json(), { free: true });
    const other = await wallet.fetch(`${net.url}/other-402`);
    assert.equal(other.status, 402);
    assert.equal(await other.text(), 'pay some other way');
    assert.deepEqual(await wallet.history().then((h) => h.filter((e) => e.kind === 'payment')), []);
  });

  test('pays a NetPay 402 with k = spentIndex + price/unit and follows the receipt', async () => {
    const { wallet, coin } = await walletWithCoin();
    const { response, payments, challenge } = await wallet.fetchWithPayment(article('daily-planet', 1));
    assert.equal(response.status, 200);
    assert.equal((await response.json()).resource, 'articles/1');
    assert.equal(challenge?.price, 5);
    assert.equal(payments.length, 1);
    assert.deepEqual(payments[0]?.receipt, { index: 5, balanceMinor: 95 });
    await wallet.fetch(article('the-bugle', 2));
    const [view] = await wallet.coins();
    assert.equal(view?.spentIndex, 8);
    assert.equal(view?.lastRealm, 'the-bugle');
    assert.deepEqual(await wallet.balance(), { NZD: 92 });
    const spends = (await wallet.history()).filter((e): e is PaymentEntry => e.kind === 'payment');
    assert.deepEqual(
      spends.map((e) => [e.realm, e.index, e.amountMinor, e.status, e.chainId]),
      [
        ['daily-planet', 5, 5, 'paid', coin.chainId],
        ['the-bugle', 8, 3, 'paid', coin.chainId],
      ],
    );
    assert.equal(spends[0]?.url, article('daily-planet', 1));
    assert.deepEqual(wallet.spentMinor(), { NZD: 8 });
  });

  test('refuses a price above the per-request limit and a payment past the budget, sending nothing', async () => {
    const { wallet } = await walletWithCoin(100, { budgetMinor: 12 });
    const before = net.received.length;
    await rejectsWith(wallet.fetch(article('daily-planet', 1), undefined, { maxPriceMinor: 4 }), 'price_too_high');
    assert.equal(net.received.length, before);
    await wallet.fetch(article('daily-planet', 1)); // 5
    await wallet.fetch(article('daily-planet', 2)); // 10
    await rejectsWith(wallet.fetch(article('daily-planet', 3)), 'budget_exceeded');
    assert.equal((await wallet.fetch(article('the-bugle', 3), undefined, { budgetMinor: 13 })).status, 200);
    assert.equal(net.received.length, before + 3);
    assert.deepEqual(await wallet.balance(), { NZD: 87 });
  });

  test('no coin of the right currency, broker, size or age: no_suitable_coin', async () => {
    const { wallet } = await walletWithCoin(4);
    await rejectsWith(wallet.fetch(article('daily-planet', 1)), 'no_suitable_coin'); // 4 < 5
    const later = new Date(Date.now() + 400 * 86_400_000);
    const { store } = await walletWithCoin(100);
    const old = createWallet({ brokerUrl: net.brokerUrl, store, clock: { now: () => later } });
    await rejectsWith(old.fetch(article('daily-planet', 1)), 'no_suitable_coin');
    assert.equal((await old.coins())[0]?.status, 'expired');
  });

  test('malformed NetPay challenges are refused with invalid_challenge', async () => {
    const { wallet } = await walletWithCoin();
    const fake = (header: string) =>
      createWallet({
        store: new MemoryCoinStore(),
        fetch: async () => new Response('{}', { status: 402, headers: { 'www-authenticate': header } }),
      });
    await rejectsWith(fake('NetPay realm="x", price="5"').fetch('http://127.0.0.1:1/x'), 'invalid_challenge');
    await rejectsWith(
      fake('NetPay realm="x", price="0", currency="NZD", broker="http://b"').fetch('http://127.0.0.1:1/x'),
      'invalid_challenge',
    );
    assert.ok(wallet);
  });

  test('already_spent with lastIndex beyond what it sent is not followed without limits that cover the jump', async () => {
    const { wallet, coin } = await walletWithCoin();
    await wallet.fetch(article('daily-planet', 1)); // index 5
    net.spendElsewhere(coin.chainId, 30, await paywordOf(wallet, coin.chainId, 30));
    // 20 units above the index it sent: as much a lie as another copy's spending. Following it would hand the vendor
    // a payword worth those units too; without a limit that covers them, the coin is left alone.
    const { response, payments } = await wallet.fetchWithPayment(article('daily-planet', 2));
    assert.equal(response.status, 402);
    assert.deepEqual(
      payments.map((p) => [p.index, p.status, p.code]),
      [[10, 'refused', 'already_spent']],
    );
    assert.equal((await wallet.coins())[0]?.spentIndex, 10);
  });

  test('already_spent with lastIndex resynchronises once and pays above it, when the limits cover the jump', async () => {
    const { wallet, coin } = await walletWithCoin();
    await wallet.fetch(article('daily-planet', 1)); // index 5
    net.spendElsewhere(coin.chainId, 30, await paywordOf(wallet, coin.chainId, 30));
    // The jump (20 units) and the price (5) are counted as paid: within a per-request limit of 25, it is followed.
    const { response, payments } = await wallet.fetchWithPayment(article('daily-planet', 2), undefined, {
      maxPriceMinor: 25,
    });
    assert.equal(response.status, 200);
    assert.deepEqual(
      payments.map((p) => [p.index, p.status, p.code]),
      [
        [10, 'refused', 'already_spent'],
        [35, 'paid', undefined],
      ],
    );
    assert.equal((await wallet.coins())[0]?.spentIndex, 35);
  });

  test("too_far_ahead with lastIndex pays the price from the vendor's last index, and no more", async () => {
    const { wallet, coin, store } = await walletWithCoin(3000);
    await wallet.fetch(article('daily-planet', 1)); // index 5 at the vendors
    // This wallet revealed paywords up to 2000 that never reached these vendors (answers lost, say).
    const state = await store.load();
    const stored = state?.coins.find((c) => c.chainId === coin.chainId);
    assert.ok(state && stored);
    stored.spentIndex = 2000;
    await store.save(state);
    const { response, payments } = await wallet.fetchWithPayment(article('daily-planet', 2));
    assert.equal(response.status, 200);
    assert.deepEqual(
      payments.map((p) => [p.index, p.status, p.code]),
      [
        [2005, 'refused', 'too_far_ahead'],
        [10, 'paid', undefined],
      ],
    );
    // The vendor was paid exactly the price (5 units from its last index 5); the wallet keeps its high-water mark.
    assert.equal(net.spends.get(coin.chainId)?.index, 10);
    assert.equal((await wallet.coins())[0]?.spentIndex, 2005);
    assert.deepEqual(
      net.received.filter((r) => r.chain === coin.chainId && r.accepted).map((r) => r.index),
      [5, 10],
    );
  });

  test('a too_far_ahead whose lastIndex would cost more than the price is not followed', async () => {
    const { wallet, coin } = await walletWithCoin(100);
    await wallet.fetch(article('daily-planet', 1)); // index 5
    // A vendor claiming to be at 9 asks for 9 + 5 = 14 while the wallet owes up to 10: another coin, or none.
    net.faults.tooFarAheadLastIndex = 9;
    const { response, payments } = await wallet.fetchWithPayment(article('daily-planet', 2));
    assert.equal(response.status, 402);
    assert.equal((await response.json()).code, 'too_far_ahead');
    assert.deepEqual(
      payments.map((p) => [p.chainId, p.index, p.code]),
      [[coin.chainId, 10, 'too_far_ahead']],
    );
    assert.equal((await wallet.coins())[0]?.spentIndex, 10);
  });

  test('an exhausted coin is marked and another coin pays', async () => {
    const { wallet, coin, store } = await walletWithCoin(10);
    const second = await wallet.buy({ amountMinor: 100, card: TEST_CARD });
    // The vendors saw the first coin spent to its end elsewhere; the wallet does not know yet.
    net.spendElsewhere(coin.chainId, 10, await paywordOf(wallet, coin.chainId, 10));
    const { response, payments } = await wallet.fetchWithPayment(article('daily-planet', 1));
    assert.equal(response.status, 200);
    assert.deepEqual(
      payments.map((p) => [p.chainId, p.status, p.code]),
      [
        [coin.chainId, 'refused', 'chain_exhausted'],
        [second.chainId, 'paid', undefined],
      ],
    );
    const state = await store.load();
    assert.equal(state?.coins.find((c) => c.chainId === coin.chainId)?.status, 'exhausted');
  });

  test('503 broker_unavailable: another coin is tried, and with none left the 503 is returned', async () => {
    const { wallet } = await walletWithCoin(50);
    await wallet.buy({ amountMinor: 60, card: TEST_CARD });
    net.faults.unavailable = 1;
    const { response, payments } = await wallet.fetchWithPayment(article('the-bugle', 1));
    assert.equal(response.status, 200);
    assert.deepEqual(
      payments.map((p) => p.status),
      ['refused', 'paid'],
    );
    net.faults.unavailable = 2;
    const failed = await wallet.fetchWithPayment(article('the-bugle', 2));
    assert.equal(failed.response.status, 503);
    assert.equal((await failed.response.json()).code, 'broker_unavailable');
    assert.equal(failed.payments.length, 2);
    // The revealed indexes are never used again: the next payment starts above them.
    const next = await wallet.fetchWithPayment(article('the-bugle', 3));
    const used = new Set([...payments, ...failed.payments].map((p) => `${p.chainId}:${p.index}`));
    assert.ok(!used.has(`${next.payments[0]?.chainId}:${next.payments[0]?.index}`));
    assert.equal(next.response.status, 200);
  });

  test('the spend is stored before the payword is sent: a lost answer never leads to reusing the index', async () => {
    const store = new MemoryCoinStore();
    const wallet = await newWallet({ store });
    await wallet.buy({ amountMinor: 100, card: TEST_CARD });
    let seenAtSend: number | undefined;
    const crashing = createWallet({
      store,
      fetch: async (input, init) => {
        const auth = new Headers(init?.headers).get('authorization');
        if (auth) {
          seenAtSend = (await store.load())?.coins[0]?.spentIndex;
          throw new TypeError('connection reset');
        }
        return fetch(input, init);
      },
    });
    await rejectsWith(crashing.fetch(article('daily-planet', 1)), 'network_error');
    assert.equal(seenAtSend, 5);
    const entry = (await crashing.history()).at(-1) as PaymentEntry;
    assert.deepEqual([entry.index, entry.status], [5, 'unknown']);
    // A fresh wallet on the same store (after a crash) starts at 10.
    const restarted = createWallet({ store });
    const { payments } = await restarted.fetchWithPayment(article('daily-planet', 1));
    assert.deepEqual(
      payments.map((p) => [p.index, p.status]),
      [[10, 'paid']],
    );
  });

  test('a re-read presents the point that bought the URL and pays nothing; only a 402 makes it pay', async () => {
    const { wallet, coin, store } = await walletWithCoin();
    const url = article('daily-planet', 'owned');
    const first = await wallet.fetchWithPayment(url);
    assert.deepEqual(
      first.payments.map((p) => [p.index, p.status]),
      [[5, 'paid']],
    );
    assert.equal(first.entitlement, undefined);
    const saved = (await store.load())?.entitlements;
    assert.deepEqual(
      saved?.map((e) => [e.url, e.chainId, e.index, e.realm, e.amountMinor]),
      [[url, coin.chainId, 5, 'daily-planet', 5]],
    );

    const before = net.received.length;
    const again = await wallet.fetchWithPayment(url);
    assert.equal(again.response.status, 200);
    assert.equal((await again.response.json()).resource, 'articles/owned');
    assert.deepEqual(again.payments, []);
    assert.equal(again.entitlement?.status, 'served');
    assert.deepEqual(again.entitlement?.receipt, { index: 5, balanceMinor: 95 });
    // One request, carrying the very point that bought it.
    assert.deepEqual(net.received.slice(before), [
      {
        realm: 'daily-planet',
        resource: 'articles/owned',
        chain: coin.chainId,
        index: 5,
        accepted: true,
        entitled: true,
      },
    ]);

    // Other purchases in between, a fragment, a result value: still the same point, still free.
    await wallet.fetch(article('the-bugle', 'other'));
    const later = await wallet.results.fetchWithPayment(`${url}#comments`);
    assert.ok(later.ok);
    assert.equal(later.value.entitlement?.status, 'served');
    assert.equal(later.value.entitlement?.index, 5);
    assert.equal((await wallet.coins())[0]?.spentIndex, 8);
    assert.deepEqual(await wallet.balance(), { NZD: 92 });
    assert.deepEqual(wallet.spentMinor(), { NZD: 8 });
    const paid = (await wallet.history()).filter((e) => e.kind === 'payment');
    assert.deepEqual(
      paid.map((e) => e.url),
      [url, article('the-bugle', 'other')],
    );

    // A vendor that no longer honours it answers 402: the wallet pays as for a first read and keeps the new point.
    net.entitlements.clear();
    const repaid = await wallet.fetchWithPayment(url);
    assert.equal(repaid.response.status, 200);
    assert.deepEqual(
      [repaid.entitlement?.status, repaid.entitlement?.httpStatus, repaid.entitlement?.code],
      ['refused', 402, 'already_spent'],
    );
    assert.deepEqual(
      repaid.payments.map((p) => [p.index, p.status]),
      [[13, 'paid']],
    );
    const third = await wallet.fetchWithPayment(url);
    assert.deepEqual([third.entitlement?.status, third.entitlement?.index, third.payments], ['served', 13, []]);
  });

  test('only GETs present a bought point; a budget or price limit does not stop a free re-read', async () => {
    const { wallet } = await walletWithCoin(100, { budgetMinor: 5 });
    const url = article('daily-planet', 'limits');
    await wallet.fetch(url);
    const again = await wallet.fetchWithPayment(url, undefined, { maxPriceMinor: 1 });
    assert.equal(again.entitlement?.status, 'served');
    const before = net.received.length;
    await rejectsWith(wallet.fetch(url, { method: 'POST', body: 'x' }), 'budget_exceeded');
    assert.equal(net.received.length, before, 'a POST is a new purchase, refused here by the budget');
  });

  test('concurrent payments on one coin take distinct indexes', async () => {
    const { wallet } = await walletWithCoin(200);
    const before = net.received.length;
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => wallet.fetchWithPayment(article('daily-planet', i))),
    );
    assert.ok(results.every((r) => r.response.status === 200));
    const sent = net.received.slice(before).map((r) => r.index);
    assert.equal(new Set(sent).size, sent.length);
  });
});
