/**
 * The vendor side of NetPay as one object: `createNetPayVendor` wires the protocol's parts together and every
 * method delegates to one of them: charge.ts (§4 paying), acquire-chain.ts (§5 claim), release-request.ts (§6),
 * lease-renewal.ts (§5 checkpoints), wallet-payment.ts and connect-pages.ts (§7 server-side wallets), over the
 * chains in memory (chain-cache.ts) and the spend store. http-reply.ts gives its answers their HTTP shape.
 */
import { type Clock, systemClock } from '@netpay/service-kit';
import { ChainAcquisition } from './acquire-chain.ts';
import { BrokerClient, type FetchLike } from './broker-client.ts';
import { ChainCache, DEFAULT_MAX_CHAINS_IN_MEMORY } from './chain-cache.ts';
import { type ChargeInput, Charges, type PaymentDecision } from './charge.ts';
import { ConnectPages, type SessionView } from './connect-pages.ts';
import { Connections } from './connection.ts';
import { KeyedQueue } from './keyed-queue.ts';
import type { RenewalReport } from './lease.ts';
import { LeaseRenewal } from './lease-renewal.ts';
import type { RequestOrigin } from './navigation.ts';
import { DEFAULT_MAX_STEPS_AHEAD, MIN_MAX_STEPS_AHEAD, type WorkMeter } from './payment.ts';
import { defaultPaywallHtml, type PaywallRenderer } from './paywall-page.ts';
import { type RedemptionProgress, type RedemptionReport, runRedemption } from './redemption-job.ts';
import { type HttpAnswer, ReleaseRequests } from './release-request.ts';
import { connectSecret, ServerWallets, walletSessionFrom, walletTokenBox } from './server-wallet.ts';
import type { SpendStore } from './spend-store.ts';
import { errorMessage, type VendorContext, type VendorLogger } from './vendor-context.ts';
import { WalletPayments } from './wallet-payment.ts';
import type { WebAnswer } from './web-answer.ts';

export type { ChargeInput, PaymentDecision } from './charge.ts';
export type { SessionView } from './connect-pages.ts';
export type { HttpAnswer } from './release-request.ts';
export type { VendorLogger } from './vendor-context.ts';

/** How to build a vendor. */
export interface NetPayVendorOptions {
  /** This vendor's id at the broker (a slug). */
  vendorId: string;
  /** The broker's base URL; its API is found through `/.well-known/netpay`. */
  brokerUrl: string;
  /** The vendor API key the broker issued (sent as `Authorization: Bearer`). */
  apiKey: string;
  /** The Ed25519 key release statements are signed with (registered at the broker under keyId). */
  signingKey: { privateSeed: Uint8Array; keyId: string };
  /** Where other vendors POST to obtain a release (§6), as registered at the broker. */
  releaseUrl: string;
  store: SpendStore;
  clock?: Clock;
  fetch?: FetchLike;
  logger?: VendorLogger;
  brokerTimeoutMs?: number;
  /** The currency prices are in; defaults to the broker's (discovery). */
  currency?: string;
  /** Renders the browser paywall; defaults to `defaultPaywallHtml`. */
  paywallHtml?: PaywallRenderer;
  /**
   * The vendor's public base URL, e.g. `https://news.example`. It turns on server-side wallets (§7 connect): the
   * broker sends browsers back to `<publicUrl>/netpay/callback`, which must lie under the site URL registered at
   * the broker, and session cookies are `Secure` when it is https. Default: `releaseUrl` without a trailing
   * `/netpay/release`, when it has one; otherwise server-side wallets are off.
   */
  publicUrl?: string;
  /**
   * §4 v1.1: how many hash steps beyond this vendor's last index a payword may lie (default 1000, at least 1000;
   * never less than a price in units). Further is `too_far_ahead` before any hashing, so no request makes the
   * vendor hash more than this; the wallet resynchronises from the `lastIndex` it is told.
   */
  maxStepsAhead?: number;
  /**
   * The most chains kept in memory (default 50,000). Beyond it the least recently used chain with nothing in
   * flight leaves memory and is read from the store again on its next payment. A chain in memory costs about
   * 3 KB of heap (its touchstone, epochs and its 16 most recent entitlements; older ones stay in the store), so
   * the default holds about 150 MB.
   */
  maxChainsInMemory?: number;
  /**
   * False when this process alone writes to the store (one vendor process). A fleet's processes share it, so a
   * refusal that a stale copy of the chain could explain (`already_spent`, `too_far_ahead`, a claim) is checked
   * against the store first; a vendor whose store is its own knows its copy is the store's and answers at once.
   * Default true, the safe choice: a second process on a store declared private could charge a reader twice.
   */
  storeShared?: boolean;
}

/** What the vendor holds in memory now, against its bound. */
export interface VendorMemory {
  chainsInMemory: number;
  maxChainsInMemory: number;
}

/** The vendor's money, combining its own records with the broker's account. */
export interface VendorAccountSummary {
  currency: string | null;
  /** Everything taken in payments, locally. */
  earned: number;
  /** Spent and not yet redeemed. */
  pending: number;
  /** Redeemed and accepted by the broker (gross, before the fee). */
  redeemed: number;
  /** Ranges the broker refused. */
  rejected: number;
  /** Paid out by the broker to the vendor's bank account (null when the broker cannot be reached). */
  paidOut: number | null;
  /** The broker's balance for the vendor (null when the broker cannot be reached). */
  balance: number | null;
  /** The same figures with their unit in the name (STYLE.md): minor units. */
  earnedMinor: number;
  pendingMinor: number;
  redeemedMinor: number;
  paidOutMinor: number | null;
  balanceMinor: number | null;
}

/** The vendor side of NetPay. */
export interface NetPayVendor {
  readonly vendorId: string;
  /** Decides a request (§4): free, paid or a problem to send. */
  charge(input: ChargeInput): Promise<PaymentDecision>;
  /** Answers another vendor's release request (§6); `body` is the parsed JSON body. */
  release(body: unknown): Promise<HttpAnswer>;
  /** True when server-side wallets (§7 connect) are on (a public URL is known). */
  readonly serverWallets: boolean;
  /** The vendor's clock in ms (the time figures are stamped with). */
  now(): number;
  /** `GET /netpay/connect?return_to=/path`: starts connect at the broker (303 with cookies). */
  connect(input: { returnTo?: unknown; cookie?: string | undefined; request?: RequestOrigin }): WebAnswer;
  /** `GET /netpay/callback?code&state`: connects the browser's session, then 303 to `return_to`. */
  connectCallback(input: { query: Record<string, unknown>; cookie?: string | undefined }): Promise<WebAnswer>;
  /**
   * `POST /netpay/pay` (the paywall's "Read for 12c" form): checks the form is this site's and this session's,
   * then 303 to the page with the reader's go-ahead, so its GET pays once.
   */
  confirmPayment(input: { body: unknown; cookie?: string | undefined; request: RequestOrigin }): WebAnswer;
  /**
   * What a browser session (the `np_wallet_session` cookie's value) has here: its wallet's figures (null when not
   * connected) and what it bought. `sinceMs`: when the request began, so a balance the broker gave while serving
   * it counts as fresh. A memory cache in front of indexed reads.
   */
  sessionView(sessionId: string | undefined, sinceMs?: number): Promise<SessionView>;
  /** `sessionView` for a request's `Cookie` header. */
  sessionViewFor(cookieHeader: string | undefined, sinceMs?: number): Promise<SessionView>;
  /** Checkpoints every lease that expires within the next third of its TTL. */
  renewLeases(): Promise<RenewalReport>;
  /** Redeems everything spent and not yet redeemed. Safe to interrupt and re-run. */
  redeemNow(options?: { onProgress?: (p: RedemptionProgress) => void }): Promise<RedemptionReport>;
  account(): Promise<VendorAccountSummary>;
  /** Work done verifying presented paywords since start: hash steps (each request costs at most `maxStepsAhead`). */
  work(): { hashSteps: number };
  /** The chains held in memory now and the bound (`maxChainsInMemory`). */
  memory(): VendorMemory;
  /** Runs redemption and lease renewal on timers; returns the function that stops them. */
  startBackgroundJobs(options?: { redeemIntervalMs?: number; renewIntervalMs?: number }): () => void;
  /** Stops background jobs; the caller closes the store. */
  close(): Promise<void>;
}

/**
 * Builds the vendor side of NetPay: the payment decision for each request, the release endpoint other vendors
 * call, lease renewal and redemption. Framework adapters (`netpayFastify`, `netpayExpress`) map its decisions onto
 * HTTP.
 *
 * @example
 * const store = await createSpendStore('sqlite:./data/vendor.db');
 * const key = loadOrCreateVendorKey('./data');
 * const vendor = createNetPayVendor({
 *   vendorId: 'daily-planet', brokerUrl: 'http://127.0.0.1:4000', apiKey: process.env.NETPAY_API_KEY!,
 *   signingKey: key, releaseUrl: 'https://daily-planet.example/netpay/release', store,
 * });
 * const decision = await vendor.charge({ authorization: req.headers.authorization, resource: 'GET /a/1', priceMinor: 2 });
 */
export function createNetPayVendor(options: NetPayVendorOptions): NetPayVendor {
  return new Vendor(options);
}

class Vendor implements NetPayVendor {
  readonly vendorId: string;
  readonly #ctx: VendorContext;
  readonly #logger: VendorLogger | undefined;
  readonly #work: WorkMeter = { hashSteps: 0 };
  readonly #charges: Charges;
  readonly #releases: ReleaseRequests;
  readonly #leases: LeaseRenewal;
  readonly #pages: ConnectPages;
  /** Whether the site is https, so its wallet session is the `__Host-` cookie alone (undefined without wallets). */
  readonly #secureSessions: boolean | undefined;
  readonly #serverWallets: boolean;
  #redeeming: Promise<RedemptionReport> | undefined;
  readonly #timers = new Set<ReturnType<typeof setInterval>>();

  constructor(options: NetPayVendorOptions) {
    this.vendorId = options.vendorId;
    const maxStepsAhead = options.maxStepsAhead ?? DEFAULT_MAX_STEPS_AHEAD;
    if (!Number.isSafeInteger(maxStepsAhead) || maxStepsAhead < MIN_MAX_STEPS_AHEAD) {
      throw new RangeError(`maxStepsAhead must be an integer of at least ${MIN_MAX_STEPS_AHEAD}`);
    }
    const clock = options.clock ?? systemClock;
    const now = () => clock.now().getTime();
    const brokerUrl = options.brokerUrl.replace(/\/+$/, '');
    const renderHtml = options.paywallHtml ?? defaultPaywallHtml;
    this.#logger = options.logger;
    const broker = new BrokerClient({
      brokerUrl,
      apiKey: options.apiKey,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.brokerTimeoutMs ? { timeoutMs: options.brokerTimeoutMs } : {}),
      now,
    });
    const claims = new KeyedQueue();
    const ctx: VendorContext = {
      vendorId: options.vendorId,
      store: options.store,
      broker,
      brokerUrl,
      chains: new ChainCache(options.store, now, {
        maxChains: options.maxChainsInMemory ?? DEFAULT_MAX_CHAINS_IN_MEMORY,
        // A chain mid-claim stays: the claim adopts its epochs into this very copy.
        busy: (chainId) => claims.has(chainId),
      }),
      claims,
      clock,
      signingKey: options.signingKey,
      logger: options.logger,
      now,
    };
    this.#ctx = ctx;
    // The parts call one another through ports, wired here, so no module imports another's class.
    const leases = new LeaseRenewal(ctx);
    const releases: ReleaseRequests = new ReleaseRequests(ctx, {
      obtainStart: (chain, epoch) => acquisition.obtainStart(chain, epoch),
    });
    const acquisition: ChainAcquisition = new ChainAcquisition(ctx, {
      releaseOwn: (chain, epoch, to) => releases.releaseEpoch(chain, epoch, to),
      checkpoint: (chain, epoch) => leases.checkpoint(chain, epoch),
    });
    const acquire = acquisition.acquire.bind(acquisition);
    const publicUrl = options.publicUrl ?? options.releaseUrl.match(/^(https?:\/\/.+)\/netpay\/release$/)?.[1];
    const secret = connectSecret(options.signingKey.privateSeed);
    let connections: Connections | undefined;
    let wallets: ServerWallets | undefined;
    let walletPayments: WalletPayments | undefined;
    if (publicUrl) {
      const serverWallets = new ServerWallets(options.store, walletTokenBox(options.signingKey.privateSeed));
      wallets = serverWallets;
      connections = new Connections({
        vendorId: this.vendorId,
        publicUrl,
        brokerUrl,
        releaseUrl: options.releaseUrl,
        secret,
        port: {
          exchangeGrant: (code) => broker.exchangeConnectionGrant(code),
          requestAllowance: (request) => broker.requestAllowance(request),
          adoptClaim: (chainId, claim) => acquisition.adoptBrokerClaim(chainId, claim),
          checkAllowance: (chainId, allowance) => (walletPayments as WalletPayments).checkAllowance(chainId, allowance),
          wallets: serverWallets,
          store: options.store,
          now,
          logWarn: (fields, m) => options.logger?.warn(fields, m),
        },
      });
      walletPayments = new WalletPayments(ctx, {
        connections,
        wallets: serverWallets,
        secret,
        renderHtml,
        ports: { acquire, pay: (facts, params, resource, note) => this.#charges.pay(facts, params, resource, note) },
      });
    }
    this.#charges = new Charges(
      ctx,
      { acquire, ...(walletPayments ? { wallets: walletPayments } : {}) },
      {
        renderHtml,
        maxStepsAhead,
        work: this.#work,
        currency: options.currency,
        storeShared: options.storeShared ?? true,
      },
    );
    this.#releases = releases;
    this.#leases = leases;
    this.#serverWallets = connections !== undefined;
    this.#secureSessions = connections?.secure;
    this.#pages = new ConnectPages(ctx, { connections, wallets, secret });
  }

  get serverWallets(): boolean {
    return this.#serverWallets;
  }

  now(): number {
    return this.#ctx.now();
  }

  charge(input: ChargeInput): Promise<PaymentDecision> {
    return this.#charges.charge(input);
  }

  async release(body: unknown): Promise<HttpAnswer> {
    const answer = await this.#releases.answer(body);
    // The release is this vendor's end of the epoch; until the broker has it, a next holder that withholds it can
    // wait for this vendor's lease to run out and be given a forced start at its last checkpoint (the units above
    // it, paid to this vendor, then go to that holder). The redemption carries the release (`to.release`), so with
    // the background jobs on it goes out now rather than at the next interval. Single-flight, and a no-op (no
    // request) when nothing is left to redeem, so a caller repeating the release request costs nothing more.
    if (answer.status === 200 && this.#timers.size > 0) {
      setImmediate(() => {
        if (this.#timers.size === 0) return; // closed meanwhile
        this.redeemNow().catch((error) =>
          this.#logger?.warn({ err: errorMessage(error) }, 'netpay redemption after a release failed'),
        );
      });
    }
    return answer;
  }

  connect(input: { returnTo?: unknown; cookie?: string | undefined; request?: RequestOrigin }): WebAnswer {
    return this.#pages.connect(input);
  }

  connectCallback(input: { query: Record<string, unknown>; cookie?: string | undefined }): Promise<WebAnswer> {
    return this.#pages.connectCallback(input);
  }

  confirmPayment(input: { body: unknown; cookie?: string | undefined; request: RequestOrigin }): WebAnswer {
    return this.#pages.confirmPayment(input);
  }

  sessionView(sessionId: string | undefined, sinceMs?: number): Promise<SessionView> {
    return this.#pages.sessionView(sessionId, sinceMs);
  }

  sessionViewFor(cookieHeader: string | undefined, sinceMs?: number): Promise<SessionView> {
    return this.#pages.sessionView(walletSessionFrom(cookieHeader, this.#secureSessions), sinceMs);
  }

  renewLeases(): Promise<RenewalReport> {
    return this.#leases.renewLeases();
  }

  redeemNow(options: { onProgress?: (p: RedemptionProgress) => void } = {}): Promise<RedemptionReport> {
    if (!this.#redeeming) {
      this.#redeeming = runRedemption(
        {
          store: this.#ctx.store,
          broker: this.#ctx.broker,
          log: (m, fields) => this.#logger?.info(fields ?? {}, `netpay ${m}`),
        },
        options.onProgress,
      ).finally(() => {
        this.#redeeming = undefined;
      });
    }
    return this.#redeeming;
  }

  work(): { hashSteps: number } {
    return { hashSteps: this.#work.hashSteps };
  }

  memory(): VendorMemory {
    return { chainsInMemory: this.#ctx.chains.size, maxChainsInMemory: this.#ctx.chains.max };
  }

  async account(): Promise<VendorAccountSummary> {
    const totals = await this.#ctx.store.totals();
    let remote: { paidOut: number; balance: number; currency: string } | undefined;
    try {
      remote = await this.#ctx.broker.account();
    } catch (error) {
      this.#logger?.warn({ err: errorMessage(error) }, 'netpay account: broker unreachable');
    }
    return {
      currency: remote?.currency ?? this.#charges.currency ?? null,
      earned: totals.earned,
      pending: totals.pending,
      redeemed: totals.redeemed,
      rejected: totals.rejected,
      paidOut: remote?.paidOut ?? null,
      balance: remote?.balance ?? null,
      earnedMinor: totals.earned,
      pendingMinor: totals.pending,
      redeemedMinor: totals.redeemed,
      paidOutMinor: remote?.paidOut ?? null,
      balanceMinor: remote?.balance ?? null,
    };
  }

  startBackgroundJobs(options: { redeemIntervalMs?: number; renewIntervalMs?: number } = {}): () => void {
    const redeemMs = options.redeemIntervalMs ?? 60_000;
    const renewMs = options.renewIntervalMs ?? 15_000;
    const redeem = setInterval(() => {
      this.redeemNow().catch((error) => this.#logger?.warn({ err: errorMessage(error) }, 'netpay redemption failed'));
    }, redeemMs);
    const renew = setInterval(() => {
      this.renewLeases().catch((error) => this.#logger?.warn({ err: errorMessage(error) }, 'netpay renewal failed'));
    }, renewMs);
    redeem.unref();
    renew.unref();
    this.#timers.add(redeem);
    this.#timers.add(renew);
    return () => {
      clearInterval(redeem);
      clearInterval(renew);
      this.#timers.delete(redeem);
      this.#timers.delete(renew);
    };
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers.clear();
    await Promise.allSettled([this.#redeeming, this.#leases.running]);
    await Promise.allSettled([...this.#ctx.chains.values()].map((c) => c.writeTail));
  }
}
