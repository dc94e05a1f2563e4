import type { CoinList, History } from '@netpay/protocol';
import { wholeMinor } from './amount-argument.ts';
import type { HistoryEntry } from './coin-store.ts';
import type { CoinView } from './coin-view.ts';
import { type SessionInfo, login, logout, register, session } from './operations/account.ts';
import {
  type BuyOptions,
  type PendingPurchaseView,
  buy,
  discardPendingPurchase,
  pendingPurchase,
} from './operations/buy.ts';
import { balance, coins, history } from './operations/coins.ts';
import { type PaidFetchResult, type PayOptions, fetchWithPayment } from './operations/pay.ts';
import { type RefundOutcome, refund } from './operations/refund.ts';
import { brokerCoins, brokerHistory, sync } from './operations/sync.ts';
import { WalletContext, type WalletOptions } from './wallet-state.ts';
import { type WalletResult, unwrap } from './wallet-result.ts';

export type { CoinView } from './coin-view.ts';
export type { SessionInfo } from './operations/account.ts';
export type { BuyOptions, Card, PendingPurchaseView } from './operations/buy.ts';
export type { EntitlementUse, PaidFetchResult, PayOptions, PaymentAttempt } from './operations/pay.ts';
export type { RefundOutcome } from './operations/refund.ts';
export { MAX_HISTORY_ENTRIES, type WalletClock, type WalletOptions } from './wallet-state.ts';

/** Every wallet operation with its outcome as a value (`WalletResult`): what `Wallet#results` holds. */
export interface WalletResults {
  register(email: string, password: string): Promise<WalletResult<void>>;
  login(email: string, password: string): Promise<WalletResult<void>>;
  logout(): Promise<WalletResult<void>>;
  session(): Promise<WalletResult<SessionInfo>>;
  buy(options: BuyOptions): Promise<WalletResult<CoinView>>;
  pendingPurchase(): Promise<WalletResult<PendingPurchaseView | undefined>>;
  discardPendingPurchase(): Promise<WalletResult<void>>;
  coins(): Promise<WalletResult<CoinView[]>>;
  balance(): Promise<WalletResult<Record<string, number>>>;
  history(): Promise<WalletResult<HistoryEntry[]>>;
  brokerCoins(): Promise<WalletResult<CoinList>>;
  brokerHistory(): Promise<WalletResult<History>>;
  sync(): Promise<WalletResult<CoinView[]>>;
  refund(chainId: string): Promise<WalletResult<RefundOutcome>>;
  fetchWithPayment(
    input: string | URL,
    init?: RequestInit,
    options?: PayOptions,
  ): Promise<WalletResult<PaidFetchResult>>;
}

/**
 * A client-side NetPay wallet: buys coins (payword chains it makes itself: the seed never leaves it), keeps them in a
 * `CoinStore`, pays vendors' `402 NetPay` challenges from its `fetch`, and reads what it bought again for free by
 * presenting the point that bought it. Runs in Node and browsers.
 *
 * A thin facade over the operations in `operations/*.ts`, which work on one injected `WalletContext`. Each
 * operation is here twice: under `results` it answers a `WalletResult` (expected failures are values); as a method
 * it returns the value and throws the failure as a `WalletError` (the original API).
 *
 * Safety rules it keeps: an index is recorded as spent in the store before its payword is sent, and `spentIndex`
 * only ever grows, so no index is revealed twice even across crashes; every payword revealed counts against the
 * budget, whatever the vendor answers; a re-read presents only a point the vendor already holds.
 *
 * @example
 * const wallet = createWallet({ brokerUrl: 'http://127.0.0.1:4000', store: new MemoryCoinStore() });
 * await wallet.login('ann@example.com', 'correct horse');
 * await wallet.buy({ amountMinor: 1000, card: { number: '4242424242424242', expiry: '12/30', cvc: '123' } });
 * const res = await wallet.fetch('http://127.0.0.1:4001/api/articles/1', undefined, { maxPriceMinor: 50 });
 * const again = await wallet.results.fetchWithPayment('http://127.0.0.1:4001/api/articles/1');
 * if (again.ok) console.log(again.value.entitlement?.status); // 'served': read again, nothing paid
 */
export class Wallet {
  /** The operations with their outcomes as values. */
  readonly results: WalletResults;
  readonly #ctx: WalletContext;

  /** @throws WalletError `invalid_argument` for a missing store or fetch, or a limit that is not minor units. */
  constructor(options: WalletOptions) {
    const ctx = new WalletContext(options);
    this.#ctx = ctx;
    for (const name of ['maxPriceMinor', 'budgetMinor'] as const) {
      if (options[name] !== undefined) ctx.limits[name] = unwrap(wholeMinor(name, options[name]));
    }
    this.results = {
      register: (email, password) => register(ctx, email, password),
      login: (email, password) => login(ctx, email, password),
      logout: () => logout(ctx),
      session: () => session(ctx),
      buy: (o) => buy(ctx, o),
      pendingPurchase: () => pendingPurchase(ctx),
      discardPendingPurchase: () => discardPendingPurchase(ctx),
      coins: () => coins(ctx),
      balance: () => balance(ctx),
      history: () => history(ctx),
      brokerCoins: () => brokerCoins(ctx),
      brokerHistory: () => brokerHistory(ctx),
      sync: () => sync(ctx),
      refund: (chainId) => refund(ctx, chainId),
      fetchWithPayment: (input, init, o) => fetchWithPayment(ctx, input, init, o),
    };
  }

  /**
   * Creates a customer account at the broker (`POST {api}/customers`). Does not log in.
   *
   * @example
   * await wallet.register('ann@example.com', 'correct horse');
   */
  async register(email: string, password: string): Promise<void> {
    unwrap(await this.results.register(email, password));
  }

  /**
   * Logs in (`POST {api}/sessions`) and keeps the token, the email and the broker URL in the store.
   *
   * @example
   * await wallet.login('ann@example.com', 'correct horse');
   */
  async login(email: string, password: string): Promise<void> {
    unwrap(await this.results.login(email, password));
  }

  /** Forgets the session token (coins stay). */
  async logout(): Promise<void> {
    unwrap(await this.results.logout());
  }

  /** The configured broker and whether a session token is kept. */
  async session(): Promise<SessionInfo> {
    return unwrap(await this.results.session());
  }

  /**
   * Buys a coin (see `operations/buy.ts`): the chain is made here, only its chainId and anchor go to the broker, and
   * a purchase whose answer was lost is resent with the same idempotency key.
   *
   * @throws WalletError: `not_logged_in`, `invalid_argument`, `purchase_pending`, `invalid_touchstone`,
   *   `network_error`, or the broker's code (`card_declined`, `insufficient_funds`, …)
   * @example
   * const coin = await wallet.buy({ amountMinor: 500, unitMinor: 1, card: { number: '4242424242424242', expiry: '12/30', cvc: '123' } });
   */
  async buy(options: BuyOptions): Promise<CoinView> {
    return unwrap(await this.results.buy(options));
  }

  /** The purchase that was sent but not completed, if any (no seed). */
  async pendingPurchase(): Promise<PendingPurchaseView | undefined> {
    return unwrap(await this.results.pendingPurchase());
  }

  /** Forgets an incomplete purchase. If the broker did charge for it, that coin is lost to this wallet. */
  async discardPendingPurchase(): Promise<void> {
    unwrap(await this.results.discardPendingPurchase());
  }

  /**
   * The wallet's coins, as it knows them locally (no network).
   *
   * @example
   * for (const c of await wallet.coins()) console.log(c.chainId, c.remainingMinor);
   */
  async coins(): Promise<CoinView[]> {
    return unwrap(await this.results.coins());
  }

  /**
   * Σ of what is left on usable coins, per currency.
   *
   * @example
   * await wallet.balance(); // { NZD: 995 }
   */
  async balance(): Promise<Record<string, number>> {
    return unwrap(await this.results.balance());
  }

  /**
   * The local log: purchases, payments (recorded before sending, then marked) and refunds, oldest first.
   *
   * @example
   * const paid = (await wallet.history()).filter((e) => e.kind === 'payment' && e.status === 'paid');
   */
  async history(): Promise<HistoryEntry[]> {
    return unwrap(await this.results.history());
  }

  /** The broker's view of the customer's coins (`GET {api}/coins`). */
  async brokerCoins(): Promise<CoinList> {
    return unwrap(await this.results.brokerCoins());
  }

  /** The broker's view of the customer's history (`GET {api}/history`). */
  async brokerHistory(): Promise<History> {
    return unwrap(await this.results.brokerHistory());
  }

  /**
   * Merges the broker's view into the local coins: a higher spent index the broker has learnt and final statuses.
   * Never lowers a local spentIndex.
   */
  async sync(): Promise<CoinView[]> {
    return unwrap(await this.results.sync());
  }

  /**
   * Asks the broker to refund a coin's unspent remainder (`POST {api}/coins/{chainId}/refund`). The coin is taken
   * out of use before the request is sent.
   *
   * @example
   * const { refundedMinor, currency } = await wallet.refund(coin.chainId);
   */
  async refund(chainId: string): Promise<RefundOutcome> {
    return unwrap(await this.results.refund(chainId));
  }

  /** What this wallet object has paid through `fetch`, per currency (every payword revealed counts). */
  spentMinor(): Record<string, number> {
    return Object.fromEntries(this.#ctx.spentMinor);
  }

  /**
   * Sets the defaults of `fetch`'s limits (undefined removes one).
   *
   * @throws WalletError `invalid_argument` for a limit that is not a whole number of minor units
   */
  setLimits(limits: { maxPriceMinor?: number; budgetMinor?: number }): void {
    const next: { maxPriceMinor?: number; budgetMinor?: number } = {};
    for (const name of ['maxPriceMinor', 'budgetMinor'] as const) {
      if (limits[name] !== undefined) next[name] = unwrap(wholeMinor(name, limits[name]));
    }
    this.#ctx.limits = next;
  }

  /**
   * `fetch` that pays NetPay challenges (see `operations/pay.ts`). A GET of a URL bought before presents the point
   * that bought it first and pays only if the vendor answers 402.
   *
   * @throws WalletError: `price_too_high`, `budget_exceeded`, `no_suitable_coin`, `invalid_challenge` (nothing
   *   sent), `network_error` (a payment sent and not answered: its units count as spent)
   * @example
   * const res = await wallet.fetch('http://127.0.0.1:4001/api/articles/1', undefined, { maxPriceMinor: 20, budgetMinor: 100 });
   * console.log(await res.json());
   */
  async fetch(input: string | URL, init?: RequestInit, options?: PayOptions): Promise<Response> {
    return (await this.fetchWithPayment(input, init, options)).response;
  }

  /**
   * Like `fetch`, and also returns the challenge, every payment attempt and the re-read of a bought URL.
   *
   * @example
   * const { response, payments, entitlement } = await wallet.fetchWithPayment(url);
   * const paid = payments.find((p) => p.status === 'paid');
   */
  async fetchWithPayment(input: string | URL, init?: RequestInit, options: PayOptions = {}): Promise<PaidFetchResult> {
    return unwrap(await this.results.fetchWithPayment(input, init, options));
  }
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
