import {
  type CoinList,
  type History,
  type Touchstone,
  type WwwAuthenticateParams,
  MAX_CHAIN_LENGTH,
  PaywordChain,
  b64uDecode,
  b64uEncode,
  findKey,
  formatAuthorization,
  isNetPayAuthorization,
  parseReceipt,
  parseWwwAuthenticate,
  randomBytes,
  verifyTouchstone,
} from '@netpay/protocol';
import { BrokerClient } from './broker-client.ts';
import { normalizeBrokerUrl, selectCoin, unitsFor } from './coin-selection.ts';
import {
  type CoinStore,
  type HistoryEntry,
  type PaymentStatus,
  type StoredCoin,
  type StoredCoinStatus,
  type WalletState,
  emptyState,
  isWalletState,
} from './coin-store.ts';
import { peekProblem } from './http-json.ts';
import { WalletError } from './wallet-error.ts';

/** The wallet's time source (the same shape as service-kit's `Clock`), injected so tests can fix the instant. */
export interface WalletClock {
  now(): Date;
}

export interface WalletOptions {
  /** The broker's base URL (discovery lives at `{brokerUrl}/.well-known/netpay`). Defaults to the one saved at login. */
  brokerUrl?: string;
  store: CoinStore;
  /** Defaults to `globalThis.fetch`. */
  fetch?: typeof fetch;
  clock?: WalletClock;
  /** Random bytes for chain ids, seeds and idempotency keys; defaults to the platform CSPRNG. */
  random?: (n: number) => Uint8Array;
  /** Default per-request price limit of `fetch`. */
  maxPriceMinor?: number;
  /** Default total the wallet may pay through `fetch` in its life (per currency). */
  budgetMinor?: number;
}

export interface Card {
  number: string;
  expiry: string;
  cvc: string;
}

export interface BuyOptions {
  /** The coin's value in minor units; a multiple of `unitMinor`. */
  amountMinor: number;
  /** The value of one payword (default 1). */
  unitMinor?: number;
  card: Card;
}

/** A coin as the wallet shows it (no seed). */
export interface CoinView {
  chainId: string;
  broker: string;
  currency: string;
  unitMinor: number;
  length: number;
  spentIndex: number;
  valueMinor: number;
  remainingMinor: number;
  status: StoredCoinStatus;
  expiresAt: string;
  purchasedAt: string;
  lastRealm?: string;
}

export interface PayOptions {
  /** Refuse (WalletError `price_too_high`) a price above this. Overrides the wallet's default. */
  maxPriceMinor?: number;
  /** Refuse (WalletError `budget_exceeded`) a payment that takes the wallet's total spent in this currency above
   * this. Overrides the wallet's default. */
  budgetMinor?: number;
}

/** One payment attempt made by `fetchWithPayment`. */
export interface PaymentAttempt {
  realm: string;
  url: string;
  chainId: string;
  index: number;
  amountMinor: number;
  currency: string;
  status: PaymentStatus;
  /** HTTP status of the vendor's answer. */
  httpStatus?: number;
  /** Problem code of a refused attempt. */
  code?: string;
  /** From the vendor's `NetPay-Receipt`. */
  receipt?: { index: number; balanceMinor: number };
}

export interface PaidFetchResult {
  response: Response;
  /** The challenge, when the first answer was a NetPay 402. */
  challenge?: WwwAuthenticateParams;
  /** Every payment attempt, in order; the last one with status `paid` is the one that was served. */
  payments: PaymentAttempt[];
}

/** A history entry before it gets its id. */
type NewEntry = HistoryEntry extends infer E ? (E extends HistoryEntry ? Omit<E, 'id'> : never) : never;

/** How many entries the local history keeps (oldest dropped first). */
export const MAX_HISTORY_ENTRIES = 10_000;
const MAX_PAY_ATTEMPTS = 16;
const IDEMPOTENCY_KEY_BYTES = 16;

function checkMinor(name: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new WalletError('invalid_argument', `${name} must be an integer ≥ ${min} of minor units`);
  }
  return value;
}

function rfc3339(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

function viewOf(coin: StoredCoin, nowMs: number): CoinView {
  let status = coin.status;
  if (status === 'active' && coin.spentIndex >= coin.length) status = 'exhausted';
  if (status === 'active' && Date.parse(coin.touchstone.expiresAt) <= nowMs) status = 'expired';
  const view: CoinView = {
    chainId: coin.chainId,
    broker: coin.broker,
    currency: coin.currency,
    unitMinor: coin.unitMinor,
    length: coin.length,
    spentIndex: coin.spentIndex,
    valueMinor: coin.length * coin.unitMinor,
    remainingMinor: status === 'active' ? (coin.length - coin.spentIndex) * coin.unitMinor : 0,
    status,
    expiresAt: coin.touchstone.expiresAt,
    purchasedAt: coin.purchasedAt,
  };
  if (coin.lastRealm !== undefined) view.lastRealm = coin.lastRealm;
  return view;
}

/**
 * A client-side NetPay wallet: buys coins (payword chains it makes itself: the seed never leaves it), keeps them in a
 * `CoinStore`, and pays vendors' `402 NetPay` challenges from its `fetch`. Runs in Node and browsers.
 *
 * Safety rules it keeps: an index is recorded as spent in the store before its payword is sent, and `spentIndex`
 * only ever grows, so no index is revealed twice even across crashes; every payword revealed counts against the
 * budget, whatever the vendor answers.
 *
 * @example
 * const wallet = createWallet({ brokerUrl: 'http://127.0.0.1:4000', store: new MemoryCoinStore() });
 * await wallet.login('ann@example.com', 'correct horse');
 * await wallet.buy({ amountMinor: 1000, card: { number: '4242424242424242', expiry: '12/30', cvc: '123' } });
 * const res = await wallet.fetch('http://127.0.0.1:4001/api/articles/1', undefined, { maxPriceMinor: 50 });
 */
export class Wallet {
  readonly #store: CoinStore;
  readonly #fetch: typeof fetch;
  readonly #clock: WalletClock;
  readonly #random: (n: number) => Uint8Array;
  readonly #brokerUrl: string | undefined;
  readonly #clients = new Map<string, BrokerClient>();
  readonly #chains = new Map<string, PaywordChain>();
  readonly #spentMinor = new Map<string, number>();
  #maxPriceMinor: number | undefined;
  #budgetMinor: number | undefined;
  #lock: Promise<unknown> = Promise.resolve();

  constructor(options: WalletOptions) {
    if (!options?.store) throw new WalletError('invalid_argument', 'a store is required');
    this.#store = options.store;
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new WalletError('invalid_argument', 'no fetch available');
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#clock = options.clock ?? { now: () => new Date() };
    this.#random = options.random ?? randomBytes;
    this.#brokerUrl = options.brokerUrl === undefined ? undefined : normalizeBrokerUrl(options.brokerUrl);
    if (options.maxPriceMinor !== undefined) this.#maxPriceMinor = checkMinor('maxPriceMinor', options.maxPriceMinor);
    if (options.budgetMinor !== undefined) this.#budgetMinor = checkMinor('budgetMinor', options.budgetMinor);
  }

  // ---- state plumbing -------------------------------------------------------------------------------------------

  /** Runs `fn` on a freshly loaded state under the wallet's lock and saves the state afterwards if `fn` did not throw. */
  async #update<T>(fn: (state: WalletState) => T | Promise<T>): Promise<T> {
    const run = async () => {
      const state = await this.#load();
      const result = await fn(state);
      if (state.history.length > MAX_HISTORY_ENTRIES)
        state.history.splice(0, state.history.length - MAX_HISTORY_ENTRIES);
      await this.#store.save(state);
      return result;
    };
    const next = this.#lock.then(run, run);
    this.#lock = next.catch(() => {});
    return next;
  }

  async #read<T>(fn: (state: WalletState) => T): Promise<T> {
    const run = async () => fn(await this.#load());
    const next = this.#lock.then(run, run);
    this.#lock = next.catch(() => {});
    return next;
  }

  async #load(): Promise<WalletState> {
    const loaded = await this.#store.load();
    if (loaded === undefined) return emptyState();
    if (!isWalletState(loaded)) throw new WalletError('corrupt_store', 'the store does not hold a version 1 wallet');
    return loaded;
  }

  #brokerOf(state: WalletState): string {
    const url = this.#brokerUrl ?? state.brokerUrl;
    if (url === undefined) throw new WalletError('no_broker');
    return url;
  }

  #client(brokerUrl: string): BrokerClient {
    const key = normalizeBrokerUrl(brokerUrl);
    let client = this.#clients.get(key);
    if (!client) {
      client = new BrokerClient(key, this.#fetch);
      this.#clients.set(key, client);
    }
    return client;
  }

  /** The broker URL and token of the current session. */
  async #session(): Promise<{ broker: string; token: string }> {
    return this.#read((state) => {
      const broker = this.#brokerOf(state);
      if (state.token === undefined || (state.brokerUrl !== undefined && state.brokerUrl !== broker)) {
        throw new WalletError('not_logged_in');
      }
      return { broker, token: state.token };
    });
  }

  #chain(coin: StoredCoin): PaywordChain {
    let chain = this.#chains.get(coin.chainId);
    if (!chain) {
      chain = PaywordChain.fromB64(coin.chainId, coin.seed, coin.length);
      this.#chains.set(coin.chainId, chain);
    }
    return chain;
  }

  #entry(state: WalletState, entry: NewEntry): number {
    const id = state.nextEntryId++;
    state.history.push({ ...entry, id } as HistoryEntry);
    return id;
  }

  // ---- account ----------------------------------------------------------------------------------------------------

  /**
   * Creates a customer account at the broker (`POST {api}/customers`). Does not log in.
   *
   * @example
   * await wallet.register('ann@example.com', 'correct horse');
   */
  async register(email: string, password: string): Promise<void> {
    const broker = await this.#read((state) => this.#brokerOf(state));
    await this.#client(broker).register(email, password);
  }

  /**
   * Logs in (`POST {api}/sessions`) and keeps the token, the email and the broker URL in the store.
   *
   * @example
   * await wallet.login('ann@example.com', 'correct horse');
   */
  async login(email: string, password: string): Promise<void> {
    const broker = await this.#read((state) => this.#brokerOf(state));
    const token = await this.#client(broker).login(email, password);
    await this.#update((state) => {
      state.brokerUrl = broker;
      state.email = email;
      state.token = token;
    });
  }

  /** Forgets the session token (coins stay). */
  async logout(): Promise<void> {
    await this.#update((state) => {
      delete state.token;
    });
  }

  /** The configured broker and whether a session token is kept. */
  async session(): Promise<{ brokerUrl?: string; email?: string; loggedIn: boolean }> {
    return this.#read((state) => {
      const out: { brokerUrl?: string; email?: string; loggedIn: boolean } = { loggedIn: state.token !== undefined };
      const broker = this.#brokerUrl ?? state.brokerUrl;
      if (broker !== undefined) out.brokerUrl = broker;
      if (state.email !== undefined) out.email = state.email;
      return out;
    });
  }

  // ---- coins ------------------------------------------------------------------------------------------------------

  /**
   * Buys a coin: makes a chain here, sends only its chainId and anchor with the card, checks the touchstone the broker
   * signs (key from discovery; chainId, anchor, length, unit, currency, broker) and stores the coin with its seed.
   *
   * The request (chain and idempotency key) is saved before it is sent. If the answer is lost, calling `buy` again
   * with the same amount and unit resends the same request, so the broker charges at most once; a different purchase
   * is refused with `purchase_pending` until then (or until `discardPendingPurchase`).
   *
   * @throws WalletError: `not_logged_in`, `invalid_argument`, `purchase_pending`, `invalid_touchstone`,
   *   `network_error`, or the broker's code (`card_declined`, `insufficient_funds`, …)
   * @example
   * const coin = await wallet.buy({ amountMinor: 500, unitMinor: 1, card: { number: '4242424242424242', expiry: '12/30', cvc: '123' } });
   */
  async buy(options: BuyOptions): Promise<CoinView> {
    const amountMinor = checkMinor('amountMinor', options?.amountMinor, 1);
    const unitMinor = checkMinor('unitMinor', options.unitMinor ?? 1, 1);
    if (amountMinor % unitMinor !== 0) {
      throw new WalletError('invalid_argument', 'amountMinor must be a multiple of unitMinor');
    }
    const length = amountMinor / unitMinor;
    const { broker, token } = await this.#session();
    const client = this.#client(broker);
    const discovery = await client.discovery();
    if (length > discovery.maxChainLength || length > MAX_CHAIN_LENGTH) {
      throw new WalletError(
        'invalid_argument',
        `amountMinor / unitMinor = ${length} units, above the broker's maxChainLength ${discovery.maxChainLength}`,
      );
    }

    const pending = await this.#update((state) => {
      const p = state.pendingPurchase;
      if (p) {
        if (normalizeBrokerUrl(p.broker) === broker && p.amountMinor === amountMinor && p.unitMinor === unitMinor)
          return p;
        throw new WalletError(
          'purchase_pending',
          `a purchase of ${p.amountMinor} (unit ${p.unitMinor}) started ${p.createdAt} did not complete: ` +
            'buy that again first, or discard it',
        );
      }
      const chainId = this.#random(16);
      const seed = this.#random(32);
      state.pendingPurchase = {
        idempotencyKey: b64uEncode(this.#random(IDEMPOTENCY_KEY_BYTES)),
        broker,
        chainId: b64uEncode(chainId),
        seed: b64uEncode(seed),
        amountMinor,
        unitMinor,
        createdAt: rfc3339(this.#clock.now()),
      };
      return state.pendingPurchase;
    });

    const chain = new PaywordChain(b64uDecode(pending.chainId, 16), b64uDecode(pending.seed, 32), length);
    let response: Awaited<ReturnType<BrokerClient['buyCoin']>>;
    try {
      response = await client.buyCoin(token, pending.idempotencyKey, {
        amount: amountMinor,
        unit: unitMinor,
        chainId: pending.chainId,
        anchor: chain.anchorB64,
        payment: { card: { number: options.card.number, expiry: options.card.expiry, cvc: options.card.cvc } },
      });
    } catch (err) {
      // A definite refusal means nothing was bought: forget the request. Anything else (no answer, 5xx, rate limit,
      // the key reused with other card details) leaves it pending, so a retry cannot pay twice.
      const status = err instanceof WalletError ? err.status : undefined;
      const definite =
        status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 422 && status !== 429;
      if (definite) {
        await this.#update((state) => {
          if (state.pendingPurchase?.idempotencyKey === pending.idempotencyKey) delete state.pendingPurchase;
        });
      }
      throw err;
    }

    const touchstone = response.touchstone;
    const problem = this.#checkTouchstone(touchstone, {
      chainId: pending.chainId,
      anchor: chain.anchorB64,
      length,
      unitMinor,
      currency: discovery.currency,
      broker: discovery.broker,
      keys: discovery.keys,
    });
    if (problem !== undefined || response.chainId !== pending.chainId) {
      // The request stays pending: the seed is the customer's evidence of what was paid for.
      throw new WalletError('invalid_touchstone', problem ?? 'the broker answered for another chainId');
    }

    this.#chains.set(pending.chainId, chain);
    const now = rfc3339(this.#clock.now());
    const coin: StoredCoin = {
      chainId: pending.chainId,
      seed: pending.seed,
      length,
      unitMinor,
      currency: touchstone.currency,
      broker: touchstone.broker,
      touchstone,
      spentIndex: 0,
      status: 'active',
      purchasedAt: now,
    };
    await this.#update((state) => {
      if (!state.coins.some((c) => c.chainId === coin.chainId)) {
        state.coins.push(coin);
        this.#entry(state, {
          kind: 'purchase',
          at: now,
          chainId: coin.chainId,
          amountMinor,
          currency: coin.currency,
        });
      }
      if (state.pendingPurchase?.idempotencyKey === pending.idempotencyKey) delete state.pendingPurchase;
    });
    return viewOf(coin, this.#clock.now().getTime());
  }

  #checkTouchstone(
    t: Touchstone,
    want: {
      chainId: string;
      anchor: string;
      length: number;
      unitMinor: number;
      currency: string;
      broker: string;
      keys: { keyId: string; alg: string; publicKey: string }[];
    },
  ): string | undefined {
    const key = findKey(want.keys, t.keyId);
    if (!key) return `unknown broker key ${t.keyId}`;
    if (!verifyTouchstone(t, key)) return 'the touchstone signature does not verify';
    if (t.chainId !== want.chainId) return 'the touchstone is for another chain';
    if (t.anchor !== want.anchor) return 'the touchstone anchor is not the chain’s';
    if (t.length !== want.length) return `the touchstone length ${t.length} is not ${want.length}`;
    if (t.unit !== want.unitMinor) return `the touchstone unit ${t.unit} is not ${want.unitMinor}`;
    if (t.currency !== want.currency) return `the touchstone currency ${t.currency} is not ${want.currency}`;
    if (normalizeBrokerUrl(t.broker) !== normalizeBrokerUrl(want.broker)) return 'the touchstone names another broker';
    if (!(Date.parse(t.expiresAt) > this.#clock.now().getTime())) return 'the touchstone has already expired';
    return undefined;
  }

  /** The purchase that was sent but not completed, if any (no seed). */
  async pendingPurchase(): Promise<{ amountMinor: number; unitMinor: number; createdAt: string } | undefined> {
    return this.#read((state) => {
      const p = state.pendingPurchase;
      return p && { amountMinor: p.amountMinor, unitMinor: p.unitMinor, createdAt: p.createdAt };
    });
  }

  /** Forgets an incomplete purchase. If the broker did charge for it, that coin is lost to this wallet. */
  async discardPendingPurchase(): Promise<void> {
    await this.#update((state) => {
      delete state.pendingPurchase;
    });
  }

  /**
   * The wallet's coins, as it knows them locally (no network).
   *
   * @example
   * for (const c of await wallet.coins()) console.log(c.chainId, c.remainingMinor);
   */
  async coins(): Promise<CoinView[]> {
    const nowMs = this.#clock.now().getTime();
    return this.#read((state) => state.coins.map((c) => viewOf(c, nowMs)));
  }

  /**
   * Σ of what is left on usable coins, per currency.
   *
   * @example
   * await wallet.balance(); // { NZD: 995 }
   */
  async balance(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const c of await this.coins()) {
      if (c.status === 'active') out[c.currency] = (out[c.currency] ?? 0) + c.remainingMinor;
    }
    return out;
  }

  /**
   * The local log: purchases, payments (recorded before sending, then marked) and refunds, oldest first.
   *
   * @example
   * const paid = (await wallet.history()).filter((e) => e.kind === 'payment' && e.status === 'paid');
   */
  async history(): Promise<HistoryEntry[]> {
    return this.#read((state) => state.history);
  }

  /** The broker's view of the customer's coins (`GET {api}/coins`). */
  async brokerCoins(): Promise<CoinList> {
    const { broker, token } = await this.#session();
    return this.#client(broker).coins(token);
  }

  /** The broker's view of the customer's history (`GET {api}/history`). */
  async brokerHistory(): Promise<History> {
    const { broker, token } = await this.#session();
    return this.#client(broker).history(token);
  }

  /**
   * Merges the broker's view into the local coins: a higher spent index the broker has learnt (spends it saw, e.g.
   * from another copy of this wallet) and final statuses. Never lowers a local spentIndex.
   */
  async sync(): Promise<CoinView[]> {
    const remote = await this.brokerCoins();
    const byId = new Map(remote.coins.map((c) => [c.chainId, c]));
    await this.#update((state) => {
      for (const coin of state.coins) {
        const r = byId.get(coin.chainId);
        if (!r) continue;
        coin.spentIndex = Math.max(coin.spentIndex, Math.min(r.spentIndex, coin.length));
        if (r.status !== 'active' && coin.status !== 'refunded') coin.status = r.status;
      }
    });
    return this.coins();
  }

  /**
   * Asks the broker to refund a coin's unspent remainder (`POST {api}/coins/{chainId}/refund`). The coin is taken
   * out of use before the request is sent.
   *
   * @example
   * const { refunded } = await wallet.refund(coin.chainId);
   */
  async refund(chainId: string): Promise<{ chainId: string; refundedMinor: number; releasedIndex: number }> {
    const { broker, token } = await this.#session();
    const before = await this.#update((state) => {
      const coin = state.coins.find((c) => c.chainId === chainId);
      if (!coin) return undefined;
      const status = coin.status;
      if (coin.status !== 'refunded') coin.status = 'refunding';
      return status;
    });
    let res: Awaited<ReturnType<BrokerClient['refund']>>;
    try {
      res = await this.#client(broker).refund(token, chainId);
    } catch (err) {
      const status = err instanceof WalletError ? err.status : undefined;
      if (before !== undefined && status !== undefined && status >= 400 && status < 500) {
        await this.#update((state) => {
          const coin = state.coins.find((c) => c.chainId === chainId);
          if (coin && coin.status === 'refunding') coin.status = before;
        });
      }
      throw err;
    }
    if (res.chainId !== chainId) throw new WalletError('invalid_response', 'refund answered for another chain');
    await this.#update((state) => {
      const coin = state.coins.find((c) => c.chainId === chainId);
      if (coin) {
        coin.status = 'refunded';
        coin.spentIndex = Math.max(coin.spentIndex, Math.min(res.releasedIndex, coin.length));
      }
      this.#entry(state, {
        kind: 'refund',
        at: rfc3339(this.#clock.now()),
        chainId,
        amountMinor: res.refunded,
        currency: coin?.currency ?? '',
        releasedIndex: res.releasedIndex,
      });
    });
    return { chainId, refundedMinor: res.refunded, releasedIndex: res.releasedIndex };
  }

  // ---- budget -------------------------------------------------------------------------------------------------------

  /** What this wallet object has paid through `fetch`, per currency (every payword revealed counts). */
  spentMinor(): Record<string, number> {
    return Object.fromEntries(this.#spentMinor);
  }

  /** Sets the defaults of `fetch`'s limits (undefined removes one). */
  setLimits(limits: { maxPriceMinor?: number; budgetMinor?: number }): void {
    this.#maxPriceMinor =
      limits.maxPriceMinor === undefined ? undefined : checkMinor('maxPriceMinor', limits.maxPriceMinor);
    this.#budgetMinor = limits.budgetMinor === undefined ? undefined : checkMinor('budgetMinor', limits.budgetMinor);
  }

  // ---- paying -------------------------------------------------------------------------------------------------------

  /**
   * `fetch` that pays NetPay challenges. Answers other than a NetPay 402 (including 402s of other schemes) are
   * returned as they are. A NetPay 402 is paid with a coin of the same broker and currency and the request repeated
   * with `Authorization: NetPay …`; the vendor's final answer is returned. When every usable coin was refused (a 402
   * or 503 problem), the last refusal is returned.
   *
   * Refusals decided by the wallet throw a `WalletError` (nothing is sent): `price_too_high`, `budget_exceeded`,
   * `no_suitable_coin` (no coin could even be tried), `invalid_challenge`. A request whose payment was sent but not
   * answered throws `network_error` (the units count as spent). The request body must be replayable (string,
   * ArrayBuffer, Blob, FormData, URLSearchParams), since it is sent twice.
   *
   * @example
   * const res = await wallet.fetch('http://127.0.0.1:4001/api/articles/1', undefined, { maxPriceMinor: 20, budgetMinor: 100 });
   * console.log(await res.json());
   */
  async fetch(input: string | URL, init?: RequestInit, options?: PayOptions): Promise<Response> {
    return (await this.fetchWithPayment(input, init, options)).response;
  }

  /**
   * Like `fetch`, and also returns the challenge and every payment attempt.
   *
   * @example
   * const { response, payments } = await wallet.fetchWithPayment(url);
   * const paid = payments.find((p) => p.status === 'paid');
   */
  async fetchWithPayment(input: string | URL, init?: RequestInit, options: PayOptions = {}): Promise<PaidFetchResult> {
    const maxPriceMinor =
      options.maxPriceMinor === undefined ? this.#maxPriceMinor : checkMinor('maxPriceMinor', options.maxPriceMinor);
    const budgetMinor =
      options.budgetMinor === undefined ? this.#budgetMinor : checkMinor('budgetMinor', options.budgetMinor);

    const first = await this.#send(input, init);
    const header = first.headers.get('www-authenticate');
    if (first.status !== 402 || header === null || !isNetPayAuthorization(header))
      return { response: first, payments: [] };

    let challenge: WwwAuthenticateParams;
    try {
      challenge = parseWwwAuthenticate(header);
    } catch (cause) {
      await first.body?.cancel().catch(() => {});
      throw new WalletError('invalid_challenge', `malformed challenge: ${String((cause as Error).message)}`, { cause });
    }
    if (challenge.price <= 0) {
      await first.body?.cancel().catch(() => {});
      throw new WalletError('invalid_challenge', 'the price must be positive');
    }
    const refuse = (code: 'price_too_high' | 'budget_exceeded', message: string) => {
      throw new WalletError(code, message, { status: 402 });
    };
    if (maxPriceMinor !== undefined && challenge.price > maxPriceMinor) {
      await first.body?.cancel().catch(() => {});
      refuse('price_too_high', `price ${challenge.price} ${challenge.currency} is above the limit ${maxPriceMinor}`);
    }
    await first.body?.cancel().catch(() => {});
    const spentSoFar = this.#spentMinor.get(challenge.currency) ?? 0;
    if (budgetMinor !== undefined && spentSoFar + challenge.price > budgetMinor) {
      refuse(
        'budget_exceeded',
        `paying ${challenge.price} ${challenge.currency} would take the total to ${spentSoFar + challenge.price}, above the budget ${budgetMinor}`,
      );
    }

    const target = first.url || String(input);
    const payments: PaymentAttempt[] = [];
    const exclude = new Set<string>();
    const resynced = new Set<string>();
    /** Per coin, the vendor's last index to pay from once instead of spentIndex (after too_far_ahead). */
    const resumeFrom = new Map<string, number>();
    const resumed = new Set<string>();
    let last: Response | undefined;

    for (let attempt = 0; attempt < MAX_PAY_ATTEMPTS; attempt++) {
      const reserved = await this.#reserve(challenge, target, exclude, budgetMinor, resumeFrom);
      if (reserved === undefined) break;
      const { coin, index, payword, entryId } = reserved;
      const payment: PaymentAttempt = {
        realm: challenge.realm,
        url: target,
        chainId: coin.chainId,
        index,
        amountMinor: challenge.price,
        currency: challenge.currency,
        status: 'pending',
      };
      payments.push(payment);

      const headers = new Headers(init?.headers);
      headers.set('authorization', formatAuthorization({ chain: coin.chainId, index, payword }));
      let res: Response;
      try {
        res = await this.#send(target, { ...init, headers });
      } catch (err) {
        payment.status = 'unknown';
        await this.#mark(entryId, 'unknown');
        throw err;
      }
      payment.httpStatus = res.status;

      if (res.status === 402 || res.status === 503) {
        const problem = await peekProblem(res);
        const code = typeof problem?.code === 'string' ? problem.code : undefined;
        payment.status = 'refused';
        if (code !== undefined) payment.code = code;
        await this.#mark(entryId, 'refused', code);
        const retryable = new Set([
          'already_spent',
          'chain_exhausted',
          'chain_expired',
          'invalid_payword',
          'insufficient_amount',
          'currency_mismatch',
          'unknown_chain',
          'too_far_ahead',
          'broker_unavailable',
          'previous_holder_unavailable',
        ]);
        if (code === undefined || !retryable.has(code)) return { response: res, challenge, payments };
        await last?.body?.cancel().catch(() => {});
        last = res;
        if (code === 'already_spent') {
          const lastIndex = problem?.lastIndex;
          const valid = typeof lastIndex === 'number' && Number.isSafeInteger(lastIndex) && lastIndex >= 0;
          if (valid && lastIndex <= coin.length && !resynced.has(coin.chainId)) {
            // Another holder or copy of this wallet spent further: start above what the vendor knows, once.
            resynced.add(coin.chainId);
            await this.#resync(coin.chainId, lastIndex);
            continue;
          }
          exclude.add(coin.chainId);
          continue;
        }
        if (code === 'too_far_ahead') {
          const units = unitsFor(coin, challenge.price) as number;
          if (!resumed.has(coin.chainId) && resumable(problem?.lastIndex, index, units)) {
            // The vendor is behind this wallet (spent elsewhere, or answers that never came back): pay the price
            // from where the vendor is, once per coin. That payword is at or below the one just sent, so nothing
            // is revealed beyond what the wallet already spent.
            resumed.add(coin.chainId);
            resumeFrom.set(coin.chainId, problem?.lastIndex as number);
            continue;
          }
          exclude.add(coin.chainId);
          continue;
        }
        if (code === 'chain_exhausted') await this.#setStatus(coin.chainId, 'exhausted');
        if (code === 'chain_expired') await this.#setStatus(coin.chainId, 'expired');
        exclude.add(coin.chainId);
        continue;
      }

      if (!res.ok) {
        // 400 means the vendor rejected the request before charging; anything else leaves the outcome unknown.
        payment.status = res.status >= 400 && res.status < 500 ? 'refused' : 'unknown';
        await this.#mark(entryId, payment.status);
        return { response: res, challenge, payments };
      }

      payment.status = 'paid';
      let receiptIndex: number | undefined;
      const receiptHeader = res.headers.get('netpay-receipt');
      if (receiptHeader !== null) {
        try {
          const receipt = parseReceipt(receiptHeader);
          if (receipt.chain === coin.chainId) {
            payment.receipt = { index: receipt.index, balanceMinor: receipt.balance };
            receiptIndex = receipt.index;
          }
        } catch {
          // A malformed receipt does not undo a served payment.
        }
      }
      await this.#update((state) => {
        const stored = state.coins.find((c) => c.chainId === coin.chainId);
        if (stored && receiptIndex !== undefined && receiptIndex <= stored.length) {
          stored.spentIndex = Math.max(stored.spentIndex, receiptIndex);
        }
        if (stored) stored.lastRealm = challenge.realm;
        const entry = state.history.find((e) => e.id === entryId);
        if (entry?.kind === 'payment') entry.status = 'paid';
      });
      await last?.body?.cancel().catch(() => {});
      return { response: res, challenge, payments };
    }

    if (last) return { response: last, challenge, payments };
    throw new WalletError(
      'no_suitable_coin',
      `no usable ${challenge.currency} coin of ${challenge.broker} with ${challenge.price} left (buy one first)`,
      { status: 402 },
    );
  }

  async #send(input: string | URL, init?: RequestInit): Promise<Response> {
    try {
      return await this.#fetch(input, init);
    } catch (cause) {
      if (cause instanceof WalletError) throw cause;
      throw new WalletError('network_error', `cannot fetch ${String(input)}: ${String((cause as Error)?.message)}`, {
        cause,
      });
    }
  }

  /**
   * Picks a coin, advances its spentIndex to k = spentIndex + price/unit, counts the price against the budget and logs
   * the payment as pending, all saved before the payword is returned to be sent.
   */
  async #reserve(
    challenge: WwwAuthenticateParams,
    url: string,
    exclude: Set<string>,
    budgetMinor: number | undefined,
    resumeFrom: Map<string, number> = new Map(),
  ): Promise<{ coin: StoredCoin; index: number; payword: string; entryId: number } | undefined> {
    return this.#update((state) => {
      const now = this.#clock.now();
      const coin = selectCoin(
        state.coins,
        { realm: challenge.realm, priceMinor: challenge.price, currency: challenge.currency, broker: challenge.broker },
        now.getTime(),
        exclude,
      );
      if (!coin) return undefined;
      const spent = this.#spentMinor.get(challenge.currency) ?? 0;
      if (budgetMinor !== undefined && spent + challenge.price > budgetMinor) {
        throw new WalletError(
          'budget_exceeded',
          `paying ${challenge.price} ${challenge.currency} would take the total to ${spent + challenge.price}, above the budget ${budgetMinor}`,
          { status: 402 },
        );
      }
      const units = unitsFor(coin, challenge.price) as number;
      const from = resumeFrom.get(coin.chainId);
      resumeFrom.delete(coin.chainId);
      const index = (from ?? coin.spentIndex) + units;
      const payword = this.#chain(coin).b64(index);
      coin.spentIndex = Math.max(coin.spentIndex, index);
      this.#spentMinor.set(challenge.currency, spent + challenge.price);
      const entryId = this.#entry(state, {
        kind: 'payment',
        at: rfc3339(now),
        realm: challenge.realm,
        url,
        amountMinor: challenge.price,
        currency: challenge.currency,
        chainId: coin.chainId,
        index,
        status: 'pending',
      });
      return { coin: { ...coin }, index, payword, entryId };
    });
  }

  async #mark(entryId: number, status: PaymentStatus, code?: string): Promise<void> {
    await this.#update((state) => {
      const entry = state.history.find((e) => e.id === entryId);
      if (entry?.kind !== 'payment') return;
      entry.status = status;
      if (code !== undefined) entry.code = code;
    });
  }

  async #resync(chainId: string, lastIndex: number): Promise<void> {
    await this.#update((state) => {
      const coin = state.coins.find((c) => c.chainId === chainId);
      if (coin) coin.spentIndex = Math.max(coin.spentIndex, lastIndex);
    });
  }

  async #setStatus(chainId: string, status: StoredCoinStatus): Promise<void> {
    await this.#update((state) => {
      const coin = state.coins.find((c) => c.chainId === chainId);
      if (coin && coin.status === 'active') coin.status = status;
    });
  }
}

/**
 * Whether a too_far_ahead answer can be followed: its `lastIndex` is an index, and paying the price from it
 * (lastIndex + units) stays at or below the index just refused, so the wallet never pays more than the price
 * beyond what it had already spent. A vendor that claims to be further is not believed.
 */
function resumable(lastIndex: unknown, refusedIndex: number, units: number): lastIndex is number {
  return (
    typeof lastIndex === 'number' &&
    Number.isSafeInteger(lastIndex) &&
    lastIndex >= 0 &&
    lastIndex + units <= refusedIndex
  );
}

/**
 * Creates a wallet.
 *
 * @example
 * import { createWallet, MemoryCoinStore } from '@netpay/wallet';
 * const wallet = createWallet({ brokerUrl: 'http://127.0.0.1:4000', store: new MemoryCoinStore(), budgetMinor: 500 });
 */
export function createWallet(options: WalletOptions): Wallet {
  return new Wallet(options);
}
