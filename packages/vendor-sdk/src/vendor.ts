import {
  b64uDecode,
  type ClaimResponse,
  type ErrorCode,
  findKey,
  formatReceipt,
  type HolderCertificate,
  isNetPayAuthorization,
  MAX_HEADER_LENGTH,
  PROBLEM_CONTENT_TYPE,
  ProtocolError,
  parseAuthorization,
  parseWire,
  problemDetails,
  type Allowance,
  type ReleaseStatement,
  ReleaseRequestSchema,
  verifyHolderCertificate,
  verifyTouchstone,
} from '@netpay/protocol';
import { type Clock, systemClock } from '@netpay/service-kit';
import { BrokerClient, type FetchLike } from './broker-client.ts';
import {
  type ChallengeFacts,
  type ProblemDecision,
  paymentProblem,
  paymentRequired,
  type WalletPaywall,
  withWalletPaywall,
} from './challenge.ts';
import { ChainState, type EpochState } from './chain-state.ts';
import { type ClaimProof, claimWithProof, type ProofSource, walletProofs } from './claim-proof.ts';
import { Connections, type RefreshOutcome, safeReturnTo } from './connection.ts';
import { KeyedQueue } from './keyed-queue.ts';
import { type RenewalReport, needsRenewal } from './lease.ts';
import {
  balanceMinor,
  checkPayment,
  DEFAULT_MAX_STEPS_AHEAD,
  MIN_MAX_STEPS_AHEAD,
  verifiesAtOrBelow,
  type WorkMeter,
} from './payment.ts';
import { type RequestOrigin, sameOriginPost, sameSiteNavigation } from './navigation.ts';
import { openIntent, PAY_PATH, payFormToken, payFormTokenMatches, readPayForm } from './pay-confirm.ts';
import { defaultPaywallHtml, type PaywallRenderer } from './paywall-page.ts';
import { type RedemptionProgress, type RedemptionReport, runRedemption } from './redemption-job.ts';
import { checkRelease, makeRelease } from './release.ts';
import { type CheckpointOutcome, checkpointEpoch, releaseUnreported } from './release-report.ts';
import {
  allowanceLeftMinor,
  connectSecret,
  hasWallet,
  paywordBelow,
  ServerWallets,
  type SessionState,
  type SessionWallet,
  sessionHashOf,
  type WalletView,
  walletSessionFrom,
  walletTokenBox,
} from './server-wallet.ts';
import type { ChainRecord, EpochRecord, SpendStore } from './spend-store.ts';
import { page, redirect, type WebAnswer } from './web-answer.ts';

/** Logs the SDK writes; a pino logger fits. */
export interface VendorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

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
}

/** A request to charge for, as plain values (framework adapters fill it in). */
export interface ChargeInput {
  /** The `Authorization` header, if any. */
  authorization?: string | undefined;
  /** The `Accept` header, to give browsers an HTML paywall. */
  accept?: string | undefined;
  /** What is being bought, e.g. `GET /articles/42`; retries and entitlements are per resource. */
  resource: string;
  /** The price in minor units; 0 means free. */
  priceMinor: number;
  /** The `Cookie` header: a server-side wallet's session pays when there is no `Authorization`. */
  cookie?: string | undefined;
  /** The request's path and query, where connect returns the browser to (the paywall's button). */
  path?: string | undefined;
  /**
   * `Sec-Fetch-Site` and `Referer`: a server-side wallet pays only for a navigation on this site (§7 v1.1); from
   * anywhere else the reader gets the paywall with a form that pays, never a charge.
   */
  secFetchSite?: string | undefined;
  referer?: string | undefined;
  /** What is sold, in words, for the customer's history at the broker (an article's title). */
  description?: string | undefined;
}

/** The vendor's verdict on a request: serve it free, serve it paid (with a receipt), or answer a problem. */
export type PaymentDecision =
  | { kind: 'free' }
  | {
      kind: 'paid';
      chainId: string;
      index: number;
      balanceMinor: number;
      /** The `NetPay-Receipt` header value. */
      receipt: string;
      /** False for a retry of the last payment or an entitlement (nothing was charged). */
      charged: boolean;
    }
  | ProblemDecision;

/** An HTTP answer for the release endpoint. */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
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
  /** Runs redemption and lease renewal on timers; returns the function that stops them. */
  startBackgroundJobs(options?: { redeemIntervalMs?: number; renewIntervalMs?: number }): () => void;
  /** Stops background jobs; the caller closes the store. */
  close(): Promise<void>;
}

/** A browser session as pages show it. */
export interface SessionView {
  wallet: WalletView | null;
  /** Resources the session bought here (a front page marks them). */
  bought: ReadonlySet<string>;
}

const NO_SESSION: SessionView = Object.freeze({ wallet: null, bought: new Set<string>() });

/** The longest description a spend note carries. */
const MAX_NOTE_LENGTH = 120;

class Failure {
  constructor(readonly problem: ProblemDecision) {}
}

const noop = () => undefined;

/**
 * Rounds of check-and-record one payment may take: claims, reloads after another process of this vendor advanced
 * the chain, and conflicts in the durable write each take one.
 */
const MAX_PAY_ATTEMPTS = 8;

/** Refusals a stale view of the chain could explain (another process advanced it): reload and check again first. */
const STALE_EXPLAINS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'already_spent',
  'too_far_ahead',
  'insufficient_amount',
]);

/** Times a release is signed again because another process took a payment between the read and the write. */
const MAX_RELEASE_ATTEMPTS = 20;

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
  readonly #o: NetPayVendorOptions;
  readonly #store: SpendStore;
  readonly #clock: Clock;
  readonly #broker: BrokerClient;
  readonly #brokerUrl: string;
  readonly #renderHtml: PaywallRenderer;
  readonly #chains = new Map<string, ChainState>();
  readonly #maxStepsAhead: number;
  readonly #work: WorkMeter = { hashSteps: 0 };
  readonly #loading = new Map<string, Promise<ChainState | undefined>>();
  readonly #claims = new KeyedQueue();
  readonly #wallets: ServerWallets | undefined;
  readonly #connections: Connections | undefined;
  readonly #secret: Uint8Array;
  #currency: string | undefined;
  #redeeming: Promise<RedemptionReport> | undefined;
  #renewing: Promise<RenewalReport> | undefined;
  readonly #timers = new Set<ReturnType<typeof setInterval>>();

  constructor(options: NetPayVendorOptions) {
    this.#o = options;
    this.vendorId = options.vendorId;
    this.#store = options.store;
    this.#clock = options.clock ?? systemClock;
    this.#maxStepsAhead = options.maxStepsAhead ?? DEFAULT_MAX_STEPS_AHEAD;
    if (!Number.isSafeInteger(this.#maxStepsAhead) || this.#maxStepsAhead < MIN_MAX_STEPS_AHEAD) {
      throw new RangeError(`maxStepsAhead must be an integer of at least ${MIN_MAX_STEPS_AHEAD}`);
    }
    this.#brokerUrl = options.brokerUrl.replace(/\/+$/, '');
    this.#renderHtml = options.paywallHtml ?? defaultPaywallHtml;
    this.#currency = options.currency;
    this.#broker = new BrokerClient({
      brokerUrl: this.#brokerUrl,
      apiKey: options.apiKey,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.brokerTimeoutMs ? { timeoutMs: options.brokerTimeoutMs } : {}),
      now: () => this.#clock.now().getTime(),
    });
    const publicUrl = options.publicUrl ?? options.releaseUrl.match(/^(https?:\/\/.+)\/netpay\/release$/)?.[1];
    this.#secret = connectSecret(options.signingKey.privateSeed);
    if (publicUrl) {
      const wallets = new ServerWallets(this.#store, walletTokenBox(options.signingKey.privateSeed));
      this.#wallets = wallets;
      this.#connections = new Connections({
        vendorId: this.vendorId,
        publicUrl,
        brokerUrl: this.#brokerUrl,
        releaseUrl: options.releaseUrl,
        secret: this.#secret,
        port: {
          exchangeGrant: (code) => this.#broker.exchangeConnectionGrant(code),
          requestAllowance: (request) => this.#broker.requestAllowance(request),
          adoptClaim: (chainId, claim) => this.#adoptBrokerClaim(chainId, claim),
          checkAllowance: (chainId, allowance) => this.#checkAllowance(chainId, allowance),
          wallets,
          store: this.#store,
          now: () => this.#now(),
          logWarn: (fields, m) => this.#o.logger?.warn(fields, m),
        },
      });
    }
  }

  get serverWallets(): boolean {
    return this.#connections !== undefined;
  }

  #now(): number {
    return this.#clock.now().getTime();
  }

  now(): number {
    return this.#now();
  }

  async #currencyOrFail(): Promise<string> {
    if (this.#currency) return this.#currency;
    try {
      this.#currency = (await this.#broker.discovery()).currency;
      return this.#currency;
    } catch (error) {
      throw new Failure(paymentProblem(undefined, 'broker_unavailable', `broker discovery failed: ${msg(error)}`));
    }
  }

  // ---- §4 paying a vendor -------------------------------------------------------------------------------------

  async charge(input: ChargeInput): Promise<PaymentDecision> {
    const price = input.priceMinor;
    if (!Number.isSafeInteger(price) || price < 0) throw new TypeError('priceMinor must be a non-negative integer');
    if (price === 0) return { kind: 'free' };
    try {
      const currency = await this.#currencyOrFail();
      const facts: ChallengeFacts = {
        vendorId: this.vendorId,
        priceMinor: price,
        currency,
        brokerUrl: this.#brokerUrl,
      };
      const auth = input.authorization;
      // Bounded before it is parsed (§4): an oversized NetPay header is malformed. Only the scheme is looked at, so
      // a long header of another scheme (a site's own bearer token) is still just "no NetPay payment".
      if (auth && auth.length > MAX_HEADER_LENGTH && isNetPayAuthorization(auth.slice(0, 64))) {
        return paymentProblem(facts, 'bad_request', `the Authorization header is over ${MAX_HEADER_LENGTH} characters`);
      }
      if (!auth || !isNetPayAuthorization(auth)) {
        const connect = this.#connections?.connectPath(input.path ?? '/');
        const session = walletSessionFrom(input.cookie);
        if (!auth && this.#wallets && connect && session) {
          const state = await this.#wallets.session(sessionHashOf(session));
          if (state.bought.has(input.resource)) return await this.#reread(state, input.resource);
          if (hasWallet(state)) return await this.#payFromWallet(facts, state, input, connect);
        }
        return paymentRequired(facts, input.resource, input.accept, this.#renderHtml, connect);
      }
      let params: { chain: string; index: number; payword: string };
      try {
        params = parseAuthorization(auth);
      } catch (error) {
        return paymentProblem(facts, 'bad_request', error instanceof ProtocolError ? error.detail : 'bad header');
      }
      return await this.#pay(facts, params, input.resource);
    } catch (error) {
      if (error instanceof Failure) return error.problem;
      this.#o.logger?.error({ err: error }, 'netpay charge failed');
      return paymentProblem(undefined, 'internal_error', 'an unexpected error occurred; it has been logged');
    }
  }

  async #pay(
    facts: ChallengeFacts,
    params: { chain: string; index: number; payword: string },
    resource: string,
  ): Promise<PaymentDecision> {
    const chainId = params.chain;
    const payword = b64uDecode(params.payword, 32);
    const presented = { index: params.index, payword, resource, priceMinor: facts.priceMinor };
    // The customer's payword is the claim's proof of payment (§5 v1.1). A chain never seen here has no local
    // bound: its last index is unknown, so it is not hashed here at all; the broker checks the proof against the
    // points it knows, and the claim's start bounds the next round of checkPayment.
    const proof: ClaimProof = { index: params.index, payword: params.payword };
    const ctx = { currency: facts.currency, maxStepsAhead: this.#maxStepsAhead, meter: this.#work };
    let chain = this.#chains.get(chainId) ?? (await this.#getChain(chainId));
    // A cached chain may be behind the store when other processes of this vendor take payments on it too. Before
    // a refusal (or a claim) that stale knowledge could explain, the chain is reloaded once and the SAME payment
    // checked again: it may be a retry of what another process accepted (free) or payable from the new last index.
    let fresh = false;
    for (let attempt = 0; attempt < MAX_PAY_ATTEMPTS; attempt++) {
      if (chain && !chain.broken) {
        const check = checkPayment(chain, presented, { ...ctx, nowMs: this.#now() });
        if (!fresh && (check.kind === 'claim' || (check.kind === 'reject' && STALE_EXPLAINS.has(check.code)))) {
          chain = await this.#reload(chain, chainId);
          fresh = true;
          continue;
        }
        switch (check.kind) {
          case 'retry':
          case 'entitled':
            // The payment that earned it may still be on its way to disk.
            await chain.writeTail;
            if (!chain.broken) return this.#paid(chain, chainId, false);
            chain = await this.#getChain(chainId);
            continue;
          case 'reject':
            return paymentProblem(facts, check.code, check.detail, check.extra);
          case 'pay': {
            const recorded = await this.#record(facts, chain, chainId, params, payword, resource, check.amountMinor);
            if (recorded !== 'conflict') return recorded;
            // Another process advanced (or released) the epoch: the store is the truth; check this payment again.
            chain = await this.#getChain(chainId);
            fresh = true;
            continue;
          }
          case 'claim':
            break;
        }
      } else if (chain?.broken) {
        chain = await this.#getChain(chainId);
        fresh = true;
        continue;
      }
      const acquired = await this.#acquire(chainId, facts, proof);
      if (!(acquired instanceof ChainState)) return acquired;
      chain = acquired;
    }
    return paymentProblem(facts, 'broker_unavailable', 'could not obtain a valid lease on the chain');
  }

  /**
   * A server-side wallet pays for the request (§7 v1.1). First the reader's say-so: only a navigation on this site
   * pays, and only up to the price the reader lets sites take without asking; otherwise (unless the reader's
   * go-ahead for this page came with the request, see pay-confirm.ts) the paywall offers a form that pays, and
   * nothing is charged. Then k = this vendor's last index + price / unit; when k is above the allowance (or it
   * expired) the wallet asks the broker for the next one first, reporting what it spent and sold; w_k is derived
   * from w_a and paid through the very same §4 checks, compare-and-set and receipt as a presented payment (`#pay`).
   * A revoked connection forgets the wallet (the paywall asks to connect again); a limit or an empty balance is
   * the paywall with the broker page to act on.
   */
  async #payFromWallet(
    facts: ChallengeFacts,
    session: SessionWallet,
    input: ChargeInput,
    connect: string,
  ): Promise<PaymentDecision> {
    const connections = this.#connections as Connections;
    const wallets = this.#wallets as ServerWallets;
    const price = facts.priceMinor;
    const refuse = (problem: ProblemDecision, wallet: WalletPaywall) =>
      withWalletPaywall(problem, facts, input.resource, input.accept, this.#renderHtml, connect, wallet);
    const offer = (reason: 'cross_site' | 'confirm') =>
      refuse(paymentRequired(facts, input.resource, undefined), {
        reason,
        payForm: {
          action: PAY_PATH,
          csrf: payFormToken(this.#secret, session.sessionHash),
          returnTo: safeReturnTo(input.path ?? '/'),
          priceMinor: price,
        },
      });
    const revoked = async () => {
      await wallets.forget(session.sessionHash);
      return refuse(paymentRequired(facts, input.resource, undefined), { reason: 'connection_revoked' });
    };

    const intent = openIntent(this.#secret, connections.intentValue(input.cookie), session.sessionHash, this.#now());
    const vouched = intent !== undefined && intent.path === safeReturnTo(input.path ?? '/');
    const askFirst = price > session.record.autoPayMaxMinor;
    if (!vouched && !sameSiteNavigation(input, connections.origin)) return offer(askFirst ? 'confirm' : 'cross_site');
    if (askFirst && (!vouched || (intent?.upToMinor ?? 0) < price)) return offer('confirm');

    let wallet = session;
    let refreshed = false;
    for (let attempt = 0; attempt < 5; attempt++) {
      const chainId = wallet.record.chainId;
      let chain = await this.#getChain(chainId);
      if (!chain) return revoked();
      if (chain.entitled(input.resource)) return this.#paid(chain, chainId, false);
      if (price % chain.unit !== 0) {
        return paymentProblem(facts, 'insufficient_amount', `price ${price} is not a whole number of units`);
      }
      const units = price / chain.unit;
      const allowance = wallet.record.allowance;
      const k = chain.lastIndex + units;
      if (k > allowance.index || this.#now() >= allowance.expiresAtMs) {
        if (refreshed) {
          // The broker granted less than this price: the reader's caps leave too little for it.
          return refuse(paymentProblem(facts, 'limit_reached', 'the allowance left does not cover this price'), {
            reason: 'limit_reached',
            brokerUrl: `${this.#brokerUrl}/`,
          });
        }
        await chain.writeTail;
        const spent = { index: chain.lastIndex, payword: chain.lastPaywordB64 };
        const outcome: RefreshOutcome = await connections.refresh(
          wallet,
          spent,
          chain.current?.record.epoch ?? wallet.record.epoch,
        );
        if (outcome.kind === 'revoked') return revoked();
        if (outcome.kind === 'refused') {
          return refuse(paymentProblem(facts, outcome.code, outcome.detail, { brokerUrl: outcome.brokerUrl }), {
            reason: outcome.code,
            brokerUrl: outcome.brokerUrl,
          });
        }
        if (outcome.kind === 'unavailable') {
          return paymentProblem(facts, 'broker_unavailable', `no allowance: ${outcome.detail}`);
        }
        wallet = outcome.wallet;
        refreshed = true;
        continue;
      }
      if (!chain.accepting) {
        // Claim the chain again (lease lost, say) with w_k as proof, derived at or below the allowance.
        const proofs = walletProofs(
          { allowanceIndex: allowance.index, payword: (i) => paywordBelow(chainId, allowance, i) },
          chain.lastIndex,
          units,
        );
        const acquired = await this.#acquire(chainId, facts, proofs);
        if (!(acquired instanceof ChainState)) {
          // The broker is ending the chain (the reader revoked this connection): nothing more to pay from.
          if (acquired.body.code === 'unknown_chain') return revoked();
          return refuse(acquired, { reason: 'unusable', detail: String(acquired.body.detail ?? '') });
        }
        chain = acquired;
        continue;
      }
      const payword = paywordBelow(chainId, allowance, k) as string;
      const decision = await this.#pay(facts, { chain: chainId, index: k, payword }, input.resource);
      if (decision.kind === 'paid') {
        if (decision.charged) await this.#notePurchase(wallet, input, decision.chainId, decision.index);
        return decision;
      }
      if (decision.kind !== 'problem') return decision;
      if (decision.body.code === 'already_spent') continue;
      if (decision.body.code === 'unknown_chain') return revoked();
      return refuse(decision, { reason: 'unusable', detail: String(decision.body.detail ?? decision.body.code) });
    }
    return paymentProblem(facts, 'broker_unavailable', 'could not pay from the wallet');
  }

  /** A session's sale on record: its entitlement here and the note the broker's history shows. */
  async #notePurchase(session: SessionState, input: ChargeInput, chainId: string, index: number): Promise<void> {
    const description = (input.description ?? input.resource).trim().slice(0, MAX_NOTE_LENGTH) || input.resource;
    try {
      await (this.#wallets as ServerWallets).addPurchase(session, {
        sessionHash: session.sessionHash,
        resource: input.resource,
        chainId,
        index,
        amountMinor: input.priceMinor,
        description: description.slice(0, MAX_NOTE_LENGTH),
        atMs: this.#now(),
      });
    } catch (error) {
      // The payment itself is recorded; only the re-read mark and the history note are missing.
      this.#o.logger?.error({ err: error, chainId }, 'netpay wallet purchase not noted');
    }
  }

  /** A resource the session bought before: served free, whatever the navigation, connected or not. */
  async #reread(session: SessionState, resource: string): Promise<PaymentDecision> {
    const at = session.bought.get(resource) as { chainId: string; index: number };
    const chain = await this.#getChain(at.chainId);
    const balance = chain ? balanceMinor(chain, chain.lastIndex) : 0;
    return {
      kind: 'paid',
      chainId: at.chainId,
      index: at.index,
      balanceMinor: balance,
      receipt: formatReceipt({ chain: at.chainId, index: at.index, balance }),
      charged: false,
    };
  }

  /** The synchronous heart of a payment: advance in memory, then wait for the durable compare-and-set. */
  async #record(
    facts: ChallengeFacts,
    chain: ChainState,
    chainId: string,
    params: { index: number; payword: string },
    payword: Uint8Array,
    resource: string,
    amountMinor: number,
  ): Promise<PaymentDecision | 'conflict'> {
    const epoch = chain.current as EpochState;
    const expectedLastIndex = chain.lastIndex;
    chain.advance(params.index, params.payword, payword, resource);
    const write = this.#store.recordPayment({
      chainId,
      epoch: epoch.record.epoch,
      expectedLastIndex,
      index: params.index,
      payword: params.payword,
      resource,
      amountMinor,
      atMs: this.#now(),
    });
    chain.writeTail = write.then(noop, noop);
    let result: 'ok' | 'conflict';
    try {
      result = await write;
    } catch (error) {
      this.#discard(chain, chainId);
      this.#o.logger?.error({ err: error, chainId }, 'netpay payment not recorded');
      return paymentProblem(facts, 'internal_error', 'the payment could not be recorded; nothing was charged');
    }
    if (result === 'conflict') {
      // Another process moved this chain's epoch (or a write before this one failed): nothing was charged here.
      // The caller reloads the durable state and checks the same payment again, never answering already_spent
      // for a payment that is still honest.
      this.#discard(chain, chainId);
      return 'conflict';
    }
    // The receipt is for this payment's index: later payments may already have advanced the chain in memory
    // while this one was being committed, and they are not durable yet.
    return this.#paid(chain, chainId, true, params.index);
  }

  #paid(chain: ChainState, chainId: string, charged: boolean, index = chain.lastIndex): PaymentDecision {
    const balance = balanceMinor(chain, index);
    return {
      kind: 'paid',
      chainId,
      index,
      balanceMinor: balance,
      receipt: formatReceipt({ chain: chainId, index, balance }),
      charged,
    };
  }

  #discard(chain: ChainState, chainId: string): void {
    chain.broken = true;
    if (this.#chains.get(chainId) === chain) this.#chains.delete(chainId);
  }

  /** The chain as the store has it now (after this process's writes in flight settle). */
  #reload(chain: ChainState, chainId: string): Promise<ChainState | undefined> {
    this.#discard(chain, chainId);
    return this.#getChain(chainId);
  }

  async #getChain(chainId: string): Promise<ChainState | undefined> {
    const cached = this.#chains.get(chainId);
    if (cached && !cached.broken) return cached;
    let loading = this.#loading.get(chainId);
    if (!loading) {
      loading = (async () => {
        // Let writes of a discarded copy settle before reading, so the store is the whole truth.
        if (cached) await cached.writeTail;
        const loaded = await this.#store.loadChain(chainId);
        if (!loaded) return undefined;
        const state = new ChainState(loaded.chain, loaded.epochs, loaded.entitlements, () => this.#now());
        this.#chains.set(chainId, state);
        return state;
      })().finally(() => this.#loading.delete(chainId));
      this.#loading.set(chainId, loading);
    }
    return loading;
  }

  // ---- §5 claim ---------------------------------------------------------------------------------------------

  /**
   * Makes this vendor a valid holder of the chain with a known start (claiming with the customer's payword as proof,
   * and obtaining the release), or the problem that prevents it.
   */
  #acquire(chainId: string, facts: ChallengeFacts, proof: ProofSource): Promise<ChainState | ProblemDecision> {
    return this.#claims.run(chainId, async () => {
      const chain = await this.#getChain(chainId);
      if (chain?.accepting) return chain;
      const outcome = await claimWithProof(this.#broker, chainId, proof, facts);
      if (outcome.kind === 'refused') {
        if (outcome.problem.status >= 500) this.#o.logger?.warn({ chainId, err: outcome.cause }, 'netpay claim failed');
        return outcome.problem;
      }
      try {
        return await this.#adoptClaim(chain, chainId, outcome.claim, facts);
      } catch (error) {
        if (error instanceof Failure) return error.problem;
        throw error;
      }
    });
  }

  /**
   * What a claim answer does here, whoever obtained it (`POST …/claim`, or a connect grant that claimed for us):
   * verify the touchstone and holder signatures, store the chain and the epoch, then take the forced start or
   * obtain the previous holder's release. Runs inside the chain's claim queue.
   */
  async #adoptClaim(
    known: ChainState | undefined,
    chainId: string,
    claim: ClaimResponse,
    facts: ChallengeFacts | undefined,
  ): Promise<ChainState> {
    let chain = known;
    await this.#checkClaim(chainId, claim, facts);
    if (!chain) {
      const t = claim.touchstone;
      const record: ChainRecord = {
        chainId,
        touchstone: t,
        unit: t.unit,
        length: t.length,
        currency: t.currency,
        expiresAtMs: Date.parse(t.expiresAt),
      };
      await this.#store.saveChain(record);
      chain = (await this.#getChain(chainId)) ?? new ChainState(record, [], [], () => this.#now());
      this.#chains.set(chainId, chain);
    }
    const holder = claim.holder;
    let epoch = chain.epochs.get(holder.epoch);
    if (epoch) {
      await this.#renewLocal(chain, epoch, holder);
      if (!epoch.record.start && claim.start) await this.#setStart(chain, epoch, claim.start, null, facts);
    } else {
      epoch = await this.#newEpoch(chain, claim, facts);
    }
    if (!epoch.record.start) {
      const problem = await this.#obtainStart(chain, epoch);
      if (problem) {
        throw new Failure(
          facts ? { ...problem, headers: { ...problem.headers, ...challengeHeaders(facts) } } : problem,
        );
      }
    }
    return chain;
  }

  async #brokerKey(keyId: string): Promise<Uint8Array | undefined> {
    try {
      let key = findKey((await this.#broker.discovery()).keys, keyId);
      if (!key) key = findKey((await this.#broker.discovery(true)).keys, keyId);
      return key;
    } catch {
      return undefined;
    }
  }

  async #checkClaim(chainId: string, claim: ClaimResponse, facts: ChallengeFacts | undefined): Promise<void> {
    const bad = (why: string) => {
      this.#o.logger?.error({ chainId, why }, 'netpay claim answer rejected');
      return new Failure(paymentProblem(facts, 'broker_unavailable', `the broker's answer does not verify: ${why}`));
    };
    const t = claim.touchstone;
    const h = claim.holder;
    if (t.chainId !== chainId || h.chainId !== chainId) throw bad('wrong chain');
    if (h.vendorId !== this.vendorId) throw bad('holder certificate names another vendor');
    const tKey = await this.#brokerKey(t.keyId);
    if (!tKey || !verifyTouchstone(t, tKey)) throw bad('touchstone signature');
    const hKey = h.keyId === t.keyId ? tKey : await this.#brokerKey(h.keyId);
    if (!hKey || !verifyHolderCertificate(h, hKey)) throw bad('holder signature');
  }

  async #newEpoch(chain: ChainState, claim: ClaimResponse, facts: ChallengeFacts | undefined): Promise<EpochState> {
    const holder = claim.holder;
    const chainId = chain.record.chainId;
    const previous = claim.previous;
    let start = claim.start;
    if (start) {
      const words = b64uDecode(start.payword, 32);
      if (!verifiesAtOrBelow(chain.chainId, chain.knownPoints, start.index, words) || start.index > chain.length) {
        throw new Failure(paymentProblem(facts, 'broker_unavailable', 'forced start does not verify'));
      }
    } else if (!previous) {
      start = { index: 0, payword: chain.record.touchstone.anchor };
    }
    const old = chain.current;
    const record: EpochRecord = {
      chainId,
      epoch: holder.epoch,
      holder,
      leaseExpiresAtMs: Date.parse(holder.expiresAt),
      previous: start ? null : (previous ?? null),
      start: start ?? null,
      startRelease: null,
      releaseReported: false,
      last: start ?? null,
      lastResource: null,
      release: null,
      superseded: false,
      redeemed: null,
      redeemedMinor: 0,
      rejectedMinor: 0,
    };
    const inserted = await this.#store.insertEpoch(record);
    let epoch: EpochState;
    if (inserted) {
      epoch = chain.putEpoch(record);
    } else {
      const stored = await this.#store.getEpoch(chainId, holder.epoch);
      epoch = chain.putEpoch(stored ?? record);
    }
    // An earlier epoch of ours that is not released to this one was taken from us by force.
    if (old && old !== epoch && !old.record.release && !old.record.superseded) {
      const selfRelease = previous?.vendorId === this.vendorId && previous.epoch === old.record.epoch && !start;
      if (!selfRelease) {
        old.stopping = true;
        old.record.superseded = true;
        await this.#store.markSuperseded(chainId, old.record.epoch);
      }
    }
    return epoch;
  }

  async #renewLocal(chain: ChainState, epoch: EpochState, holder: HolderCertificate): Promise<void> {
    const expires = Date.parse(holder.expiresAt);
    if (expires <= epoch.record.leaseExpiresAtMs) return;
    epoch.record.holder = holder;
    epoch.record.leaseExpiresAtMs = expires;
    await this.#store.updateLease(chain.record.chainId, epoch.record.epoch, holder, expires);
  }

  async #setStart(
    chain: ChainState,
    epoch: EpochState,
    start: { index: number; payword: string },
    release: ReleaseStatement | null,
    facts?: ChallengeFacts,
  ): Promise<void> {
    if (!release) {
      const words = b64uDecode(start.payword, 32);
      if (!verifiesAtOrBelow(chain.chainId, chain.knownPoints, start.index, words)) {
        throw new Failure(paymentProblem(facts, 'broker_unavailable', 'forced start does not verify'));
      }
    }
    const chainId = chain.record.chainId;
    await this.#store.setStart(chainId, epoch.record.epoch, start, release);
    const stored = await this.#store.getEpoch(chainId, epoch.record.epoch);
    if (stored) {
      epoch.record = stored;
      chain.putEpoch(stored);
    }
  }

  /** Obtains the predecessor's release for an epoch whose start is unknown; a problem when it cannot. */
  async #obtainStart(chain: ChainState, epoch: EpochState): Promise<ProblemDecision | undefined> {
    const prev = epoch.record.previous;
    const chainId = chain.record.chainId;
    if (!prev) {
      await this.#setStart(chain, epoch, { index: 0, payword: chain.record.touchstone.anchor }, null);
      return undefined;
    }
    let release: ReleaseStatement;
    if (prev.vendorId === this.vendorId) {
      const mine = chain.epochs.get(prev.epoch);
      if (!mine) {
        return paymentProblem(undefined, 'previous_holder_unavailable', `epoch ${prev.epoch} is unknown here`);
      }
      const result = await this.#releaseEpoch(chain, mine, epoch.record.holder);
      if (!('sig' in result)) {
        return paymentProblem(undefined, 'previous_holder_unavailable', String(result.body.detail ?? 'self-release'));
      }
      release = result;
    } else {
      try {
        release = (await this.#broker.requestRelease(prev.releaseUrl, epoch.record.holder)).release;
      } catch (error) {
        this.#o.logger?.warn({ chainId, prev: prev.vendorId, err: msg(error) }, 'netpay release not obtained');
        return paymentProblem(undefined, 'previous_holder_unavailable', `${prev.vendorId}: ${msg(error)}`);
      }
      const expected = {
        chainId,
        chainIdBytes: chain.chainId,
        prevVendorId: prev.vendorId,
        prevEpoch: prev.epoch,
        toVendorId: this.vendorId,
        toEpoch: epoch.record.epoch,
        knownPoints: chain.knownPoints,
      };
      let why: string | undefined;
      try {
        why = checkRelease(release, expected, (await this.#broker.vendor(prev.vendorId)).keys);
        if (why?.startsWith('unknown key')) {
          why = checkRelease(release, expected, (await this.#broker.vendor(prev.vendorId, true)).keys);
        }
      } catch (error) {
        return paymentProblem(undefined, 'broker_unavailable', `vendor directory: ${msg(error)}`);
      }
      if (why) {
        this.#o.logger?.error({ chainId, prev: prev.vendorId, why }, 'netpay release rejected');
        return paymentProblem(undefined, 'previous_holder_unavailable', `release rejected: ${why}`);
      }
    }
    await this.#setStart(chain, epoch, { index: release.index, payword: release.payword }, release);
    // §5 v1.1: the broker learns where the previous epoch ended before this one takes a payment. A failure costs
    // the customer nothing: the renewal job sends it again.
    if (epoch === chain.current && !epoch.stopping) await this.#checkpoint(chain, epoch);
    return undefined;
  }

  // ---- §7 server-side wallets ---------------------------------------------------------------------------------

  /**
   * A claim the broker made for this vendor (a connection's grant, or a new chain of the connection) goes through
   * the same processing as our own claim, in the chain's claim queue.
   */
  async #adoptBrokerClaim(chainId: string, claim: ClaimResponse): Promise<ProblemDecision | undefined> {
    try {
      await this.#claims.run(chainId, async () =>
        this.#adoptClaim(await this.#getChain(chainId), chainId, claim, undefined),
      );
      return undefined;
    } catch (error) {
      if (error instanceof Failure) return error.problem;
      throw error;
    }
  }

  /** Why an allowance cannot be used: w_a must lie on the chain, at or above the point this vendor spent to. */
  async #checkAllowance(chainId: string, allowance: Allowance): Promise<string | undefined> {
    const chain = await this.#getChain(chainId);
    if (!chain) return 'unknown chain';
    if (allowance.index > chain.length) return 'beyond the end of the chain';
    if (allowance.index < chain.lastIndex) return 'below the point already spent here';
    const word = b64uDecode(allowance.payword, 32);
    if (!verifiesAtOrBelow(chain.chainId, chain.knownPoints, allowance.index, word)) {
      return 'the payword is not on the chain';
    }
    return undefined;
  }

  connect(input: { returnTo?: unknown; cookie?: string | undefined; request?: RequestOrigin }): WebAnswer {
    if (!this.#connections) return notFound();
    return this.#connections.connect(input);
  }

  async connectCallback(input: { query: Record<string, unknown>; cookie?: string | undefined }): Promise<WebAnswer> {
    if (!this.#connections) return notFound();
    try {
      return await this.#connections.callback(input);
    } catch (error) {
      this.#o.logger?.error({ err: error }, 'netpay connect callback failed');
      return {
        status: 500,
        headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
        cookies: [],
        html: 'An unexpected error occurred; it has been logged. Nothing was connected.',
      };
    }
  }

  confirmPayment(input: { body: unknown; cookie?: string | undefined; request: RequestOrigin }): WebAnswer {
    const connections = this.#connections;
    if (!connections) return notFound();
    const form = readPayForm(input.body);
    const session = walletSessionFrom(input.cookie);
    const notHere = () =>
      page(
        403,
        'This payment was not started here',
        'The "Read" button you pressed is not one this site showed you, so nothing was paid. Go back to the story ' +
          'and press it there.',
        [],
      );
    if (!form || !session) return notHere();
    const sessionHash = sessionHashOf(session);
    if (!sameOriginPost(input.request, connections.origin)) return notHere();
    if (!payFormTokenMatches(this.#secret, sessionHash, form.csrf)) return notHere();
    const returnTo = safeReturnTo(form.returnTo);
    return redirect(returnTo, [connections.intentCookie(sessionHash, returnTo, form.priceMinor)]);
  }

  async sessionView(sessionId: string | undefined, sinceMs = Number.POSITIVE_INFINITY): Promise<SessionView> {
    if (!this.#wallets || !sessionId) return NO_SESSION;
    const sessionHash = sessionHashOf(sessionId);
    const state = await this.#wallets.session(sessionHash);
    const bought: ReadonlySet<string> = new Set(state.bought.keys());
    if (!hasWallet(state)) return { wallet: null, bought };
    const record = state.record;
    const chain = await this.#getChain(record.chainId);
    return {
      bought,
      wallet: {
        chainId: record.chainId,
        allowanceLeftMinor: chain ? allowanceLeftMinor(record.allowance, chain, this.#now()) : 0,
        balanceMinor: record.balanceMinor,
        balanceAtMs: record.balanceAtMs,
        balanceFresh: record.balanceAtMs >= sinceMs,
        autoPayMaxMinor: record.autoPayMaxMinor,
        bought,
        payFormToken: payFormToken(this.#secret, sessionHash),
      },
    };
  }

  sessionViewFor(cookieHeader: string | undefined, sinceMs?: number): Promise<SessionView> {
    return this.sessionView(walletSessionFrom(cookieHeader), sinceMs);
  }

  // ---- §6 release ---------------------------------------------------------------------------------------------

  async release(body: unknown): Promise<HttpAnswer> {
    try {
      let holder: HolderCertificate;
      try {
        holder = parseWire(ReleaseRequestSchema, body).holder;
      } catch (error) {
        return answer('bad_request', error instanceof ProtocolError ? error.detail : 'bad body');
      }
      const key = await this.#brokerKey(holder.keyId);
      if (!key) {
        const reachable = await this.#broker.discovery().then(
          () => true,
          () => false,
        );
        if (!reachable) return answer('broker_unavailable', 'cannot fetch the broker keys');
        return answer('forbidden', 'the holder certificate is not signed by the broker');
      }
      if (!verifyHolderCertificate(holder, key)) {
        return answer('forbidden', 'the holder certificate is not signed by the broker');
      }
      if (holder.prevVendorId !== this.vendorId) {
        return answer('forbidden', `the holder certificate does not name ${this.vendorId} as previous holder`);
      }
      let chain = await this.#getChain(holder.chainId);
      let epoch = chain?.epochs.get(holder.prevEpoch);
      if (chain && (!epoch || (epoch !== chain.current && !epoch.record.release))) {
        // Another process of this vendor may have claimed the epoch (or released it): ask the store, not the cache.
        chain = await this.#reload(chain, holder.chainId);
        epoch = chain?.epochs.get(holder.prevEpoch);
      }
      if (!chain || !epoch) return answer('conflict', `${this.vendorId} never held epoch ${holder.prevEpoch}`);
      if (epoch !== chain.current && !epoch.record.release) {
        return answer('conflict', `epoch ${holder.prevEpoch} is not the current epoch here`);
      }
      const result = await this.#releaseEpoch(chain, epoch, holder);
      if (!('sig' in result)) return result;
      return { status: 200, headers: { 'content-type': 'application/json' }, body: { release: result } };
    } catch (error) {
      this.#o.logger?.error({ err: error }, 'netpay release failed');
      return answer('internal_error', 'an unexpected error occurred; it has been logged');
    }
  }

  /**
   * Releases an epoch to the holder of the next one: stop taking payments, wait for those in flight, obtain this
   * epoch's own start if needed, sign at the durable last index and store it. The first statement is final.
   */
  async #releaseEpoch(
    chain: ChainState,
    epoch: EpochState,
    to: HolderCertificate,
  ): Promise<ReleaseStatement | HttpAnswer> {
    const matches = (r: ReleaseStatement) => r.toVendorId === to.vendorId && r.toEpoch === to.epoch;
    const chainId = chain.record.chainId;
    if (!epoch.record.release) {
      if (!epoch.releasing) {
        epoch.stopping = true;
        epoch.releasing = (async () => {
          await chain.writeTail;
          if (!epoch.record.start) {
            const problem = await this.#obtainStart(chain, epoch);
            if (problem) return problem;
          }
          // Signed at the durable last index and stored only while that is still the last index: another process
          // of this vendor may take a payment in between, and a unit neither redeemable nor honoured would follow.
          // When the index moved, sign again at the new one; once stored, every process's next write on the epoch
          // fails its compare-and-set (release IS NULL).
          let stored: ReleaseStatement | undefined;
          for (let attempt = 0; !stored; attempt++) {
            if (attempt >= MAX_RELEASE_ATTEMPTS) throw new Error(`epoch ${chainId}/${epoch.record.epoch} kept moving`);
            const durable = await this.#store.getEpoch(chainId, epoch.record.epoch);
            const durableLast = durable?.last;
            if (!durable || !durableLast) throw new Error(`epoch ${chainId}/${epoch.record.epoch} vanished`);
            if (durable.release) {
              stored = durable.release;
              break;
            }
            const statement = makeRelease({
              chainId,
              epoch: epoch.record.epoch,
              vendorId: this.vendorId,
              last: durableLast,
              to,
              keyId: this.#o.signingKey.keyId,
              privateSeed: this.#o.signingKey.privateSeed,
              now: this.#clock.now(),
            });
            stored = await this.#store.setRelease(chainId, epoch.record.epoch, statement);
          }
          const last = { index: stored.index, payword: stored.payword };
          epoch.record.release = stored;
          epoch.record.last = last;
          chain.refresh();
          this.#o.logger?.info(
            { chainId, epoch: epoch.record.epoch, index: last.index, to: to.vendorId },
            'netpay released',
          );
          return stored;
        })().finally(() => {
          epoch.releasing = undefined;
        });
      }
      const outcome = await epoch.releasing;
      if (outcome && typeof outcome === 'object' && 'kind' in outcome) {
        const p = outcome as ProblemDecision;
        return { status: p.status, headers: { 'content-type': PROBLEM_CONTENT_TYPE }, body: p.body };
      }
    }
    const release = epoch.record.release as ReleaseStatement | null;
    if (!release) return answer('internal_error', 'release not stored');
    if (!matches(release)) {
      return answer('conflict', `epoch ${epoch.record.epoch} was released to ${release.toVendorId} ${release.toEpoch}`);
    }
    return release;
  }

  // ---- leases -------------------------------------------------------------------------------------------------

  renewLeases(): Promise<RenewalReport> {
    if (!this.#renewing) {
      this.#renewing = this.#renew().finally(() => {
        this.#renewing = undefined;
      });
    }
    return this.#renewing;
  }

  async #renew(): Promise<RenewalReport> {
    const report: RenewalReport = { renewed: 0, superseded: 0, failed: 0 };
    const now = this.#now();
    for (const row of await this.#store.activeEpochs()) {
      // A start release the broker has not been told about goes now, whatever the lease (§5 v1.1).
      if (!needsRenewal(row.holder, now) && !releaseUnreported(row)) continue;
      const chain = await this.#getChain(row.chainId);
      const epoch = chain?.epochs.get(row.epoch);
      if (!chain || !epoch || epoch !== chain.current || epoch.stopping || epoch.record.release) continue;
      const outcome = await this.#checkpoint(chain, epoch);
      if (outcome?.kind === 'renewed') report.renewed += 1;
      else if (outcome?.kind === 'superseded') report.superseded += 1;
      else if (outcome) report.failed += 1;
    }
    return report;
  }

  /**
   * Checkpoints an epoch this vendor holds from its durable record (payments in flight settled first), carrying
   * its start release while unreported, and applies the answer here. Undefined when there is nothing to send.
   */
  async #checkpoint(chain: ChainState, epoch: EpochState): Promise<CheckpointOutcome | undefined> {
    const chainId = chain.record.chainId;
    await chain.writeTail;
    const durable = await this.#store.getEpoch(chainId, epoch.record.epoch);
    if (!durable?.last || durable.release || durable.superseded) return undefined;
    const outcome = await checkpointEpoch(
      { broker: this.#broker, store: this.#store, holderVerifies: (h, e) => this.#holderVerifies(h, e) },
      durable,
    );
    const fields = { chainId, epoch: durable.epoch };
    if (outcome.kind === 'renewed') {
      await this.#renewLocal(chain, epoch, outcome.holder);
      if (outcome.reported) epoch.record.releaseReported = true;
    } else if (outcome.kind === 'superseded') {
      epoch.stopping = true;
      epoch.record.superseded = true;
      this.#o.logger?.warn(fields, 'netpay lease superseded');
    } else {
      if (outcome.kind === 'refused' && durable.startRelease) epoch.record.releaseReported = true;
      this.#o.logger?.warn({ ...fields, err: outcome.detail }, `netpay checkpoint ${outcome.kind}`);
    }
    return outcome;
  }

  async #holderVerifies(holder: HolderCertificate, epoch: EpochRecord): Promise<boolean> {
    const key = await this.#brokerKey(holder.keyId);
    return (
      key !== undefined &&
      verifyHolderCertificate(holder, key) &&
      holder.chainId === epoch.chainId &&
      holder.epoch === epoch.epoch &&
      holder.vendorId === this.vendorId
    );
  }

  // ---- redemption and account ---------------------------------------------------------------------------------

  redeemNow(options: { onProgress?: (p: RedemptionProgress) => void } = {}): Promise<RedemptionReport> {
    if (!this.#redeeming) {
      this.#redeeming = runRedemption(
        {
          store: this.#store,
          broker: this.#broker,
          log: (m, fields) => this.#o.logger?.info(fields ?? {}, `netpay ${m}`),
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

  async account(): Promise<VendorAccountSummary> {
    const totals = await this.#store.totals();
    let remote: { paidOut: number; balance: number; currency: string } | undefined;
    try {
      remote = await this.#broker.account();
    } catch (error) {
      this.#o.logger?.warn({ err: msg(error) }, 'netpay account: broker unreachable');
    }
    return {
      currency: remote?.currency ?? this.#currency ?? null,
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
      this.redeemNow().catch((error) => this.#o.logger?.warn({ err: msg(error) }, 'netpay redemption failed'));
    }, redeemMs);
    const renew = setInterval(() => {
      this.renewLeases().catch((error) => this.#o.logger?.warn({ err: msg(error) }, 'netpay renewal failed'));
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
    await Promise.allSettled([this.#redeeming, this.#renewing]);
    await Promise.allSettled([...this.#chains.values()].map((c) => c.writeTail));
  }
}

function notFound(): WebAnswer {
  return {
    status: 404,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    cookies: [],
    html: 'Server-side wallets are not enabled on this site.',
  };
}

function answer(code: ErrorCode, detail?: string): HttpAnswer {
  const body = problemDetails(code, detail);
  return { status: body.status, headers: { 'content-type': PROBLEM_CONTENT_TYPE }, body };
}

function challengeHeaders(facts: ChallengeFacts): Record<string, string> {
  const p = paymentProblem(facts, 'previous_holder_unavailable');
  return { 'www-authenticate': p.headers['www-authenticate'] as string };
}

function msg(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
