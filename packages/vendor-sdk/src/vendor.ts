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
  type ReleaseStatement,
  ReleaseRequestSchema,
  verifyHolderCertificate,
  verifyTouchstone,
  type WalletGrantResponse,
} from '@netpay/protocol';
import { type Clock, systemClock } from '@netpay/service-kit';
import { BrokerClient, type FetchLike } from './broker-client.ts';
import {
  type ChallengeFacts,
  type ProblemDecision,
  paymentProblem,
  paymentRequired,
  withWalletPaywall,
} from './challenge.ts';
import { ChainState, type EpochState } from './chain-state.ts';
import { type ClaimProof, claimWithProof, type ProofSource, walletProofs } from './claim-proof.ts';
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
import { defaultPaywallHtml, type PaywallRenderer } from './paywall-page.ts';
import { type RedemptionProgress, type RedemptionReport, runRedemption } from './redemption-job.ts';
import { checkRelease, makeRelease } from './release.ts';
import { type CheckpointOutcome, checkpointEpoch, releaseUnreported } from './release-report.ts';
import {
  connectSecret,
  type ServerWallet,
  ServerWallets,
  type WalletBalance,
  type WebAnswer,
  walletSessionFrom,
} from './server-wallet.ts';
import type { ChainRecord, EpochRecord, SpendStore } from './spend-store.ts';

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
  /** `GET /netpay/connect?return_to=/path`: starts connect at the broker (303 with cookies). */
  connect(input: { returnTo?: unknown; cookie?: string | undefined }): WebAnswer;
  /** `GET /netpay/callback?code&state`: attaches the coin to the browser's session, then 303 to `return_to`. */
  connectCallback(input: { query: Record<string, unknown>; cookie?: string | undefined }): Promise<WebAnswer>;
  /**
   * The balance of a session's server-side wallet (the `np_wallet_session` cookie's value), or null when it has
   * none. A memory cache in front of one indexed read.
   */
  walletBalance(sessionId: string | undefined): Promise<WalletBalance | null>;
  /** `walletBalance` for a request's `Cookie` header. */
  walletBalanceFor(cookieHeader: string | undefined): Promise<WalletBalance | null>;
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

class Failure {
  constructor(readonly problem: ProblemDecision) {}
}

const noop = () => undefined;

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
    if (publicUrl) {
      this.#wallets = new ServerWallets({
        vendorId: this.vendorId,
        publicUrl,
        brokerUrl: this.#brokerUrl,
        secret: connectSecret(options.signingKey.privateSeed),
        port: {
          exchangeGrant: (code) => this.#broker.exchangeWalletGrant(code),
          adoptGrant: (grant) => this.#adoptGrant(grant),
          store: this.#store,
          now: () => this.#now(),
          logWarn: (fields, m) => this.#o.logger?.warn(fields, m),
        },
      });
    }
  }

  get serverWallets(): boolean {
    return this.#wallets !== undefined;
  }

  #now(): number {
    return this.#clock.now().getTime();
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
        const connect = this.#wallets?.connectPath(input.path ?? '/');
        if (!auth && this.#wallets && connect) {
          const wallet = await this.#wallets.lookup(input.cookie);
          if (wallet) return await this.#payFromWallet(facts, wallet, input, connect);
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
    for (let attempt = 0; attempt < 4; attempt++) {
      if (chain && !chain.broken) {
        const check = checkPayment(chain, presented, { ...ctx, nowMs: this.#now() });
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
          case 'pay':
            return this.#record(facts, chain, chainId, params, payword, resource, check.amountMinor);
          case 'claim':
            break;
        }
      } else if (chain?.broken) {
        chain = await this.#getChain(chainId);
        continue;
      }
      const acquired = await this.#acquire(chainId, facts, proof);
      if (!(acquired instanceof ChainState)) return acquired;
      chain = acquired;
    }
    return paymentProblem(facts, 'broker_unavailable', 'could not obtain a valid lease on the chain');
  }

  /**
   * A server-side wallet pays for the request: k = this vendor's last index for the chain + price / unit, w_k
   * derived from the seed (claimed first when it does not hold it, e.g. the reader comes back from another site,
   * with that w_k as the claim's proof), then the very same §4 checks, compare-and-set and receipt as a presented
   * payment (`#pay`). A re-read of a bought resource presents the last point, which `checkPayment` serves free. If
   * a concurrent payment of the same session took the index first, it tries again from the new last index.
   */
  async #payFromWallet(
    facts: ChallengeFacts,
    wallet: ServerWallet,
    input: ChargeInput,
    connect: string,
  ): Promise<PaymentDecision> {
    const chainId = wallet.chainId;
    let decision: PaymentDecision | undefined;
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        let chain = this.#chains.get(chainId) ?? (await this.#getChain(chainId));
        if (chain?.broken) chain = await this.#getChain(chainId);
        const units = chain ? Math.ceil(facts.priceMinor / chain.unit) : 0;
        const exhausted = chain !== undefined && chain.lastIndex + units > chain.length;
        if (!chain || (!chain.accepting && !chain.entitled(input.resource) && !exhausted)) {
          const proofs = walletProofs(wallet, chain?.lastIndex ?? 0, Math.max(1, units));
          const acquired = await this.#acquire(chainId, facts, proofs);
          if (!(acquired instanceof ChainState)) {
            decision = acquired;
            break;
          }
          chain = acquired;
        }
        let params: { chain: string; index: number; payword: string };
        if (chain.entitled(input.resource)) {
          params = { chain: chainId, index: chain.lastIndex, payword: chain.lastPaywordB64 };
        } else {
          const k = chain.lastIndex + Math.ceil(facts.priceMinor / chain.unit);
          // Past the end there is no w_k; checkPayment refuses it as chain_exhausted before looking at the payword.
          const payword = k <= wallet.length ? wallet.payword(k) : chain.lastPaywordB64;
          params = { chain: chainId, index: k, payword };
        }
        decision = await this.#pay(facts, params, input.resource);
        if (decision.kind !== 'problem' || decision.body.code !== 'already_spent') break;
      }
    } catch (error) {
      if (!(error instanceof Failure)) throw error;
      decision = error.problem;
    }
    if (!decision) return paymentProblem(facts, 'internal_error', 'no payment attempted');
    if (decision.kind !== 'problem') return decision;
    return withWalletPaywall(decision, facts, input.resource, input.accept, this.#renderHtml, connect);
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
  ): Promise<PaymentDecision> {
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
      // Another process moved this chain's epoch (or a write before this one failed): the store is the truth.
      this.#discard(chain, chainId);
      const fresh = await this.#getChain(chainId);
      const lastIndex = fresh?.lastIndex ?? expectedLastIndex;
      return paymentProblem(facts, 'already_spent', `index ${params.index} was taken concurrently`, { lastIndex });
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

  /** A connect grant's claim goes through the same processing as our own claim, in the chain's claim queue. */
  async #adoptGrant(grant: WalletGrantResponse): Promise<ProblemDecision | undefined> {
    const claim: ClaimResponse = {
      touchstone: grant.touchstone,
      holder: grant.holder,
      previous: grant.previous,
      start: grant.start,
    };
    try {
      await this.#claims.run(grant.chainId, async () =>
        this.#adoptClaim(await this.#getChain(grant.chainId), grant.chainId, claim, undefined),
      );
      return undefined;
    } catch (error) {
      if (error instanceof Failure) return error.problem;
      throw error;
    }
  }

  connect(input: { returnTo?: unknown; cookie?: string | undefined }): WebAnswer {
    if (!this.#wallets) return notFound();
    return this.#wallets.connect(input);
  }

  async connectCallback(input: { query: Record<string, unknown>; cookie?: string | undefined }): Promise<WebAnswer> {
    if (!this.#wallets) return notFound();
    try {
      return await this.#wallets.callback(input);
    } catch (error) {
      this.#o.logger?.error({ err: error }, 'netpay connect callback failed');
      return {
        status: 500,
        headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
        cookies: [],
        html: 'An unexpected error occurred; it has been logged. Nothing was attached.',
      };
    }
  }

  async walletBalance(sessionId: string | undefined): Promise<WalletBalance | null> {
    const wallet = await this.#wallets?.lookupSession(sessionId);
    if (!wallet) return null;
    const chain = this.#chains.get(wallet.chainId) ?? (await this.#getChain(wallet.chainId));
    if (!chain) return null;
    // What this vendor knows: after the coin moved on to another site it may have been spent further there.
    const left = chain.expiresAtMs <= this.#now() ? 0 : balanceMinor(chain, chain.lastIndex);
    return { chainId: wallet.chainId, balanceMinor: left };
  }

  walletBalanceFor(cookieHeader: string | undefined): Promise<WalletBalance | null> {
    return this.walletBalance(walletSessionFrom(cookieHeader));
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
      const chain = await this.#getChain(holder.chainId);
      const epoch = chain?.epochs.get(holder.prevEpoch);
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
          const durable = await this.#store.getEpoch(chainId, epoch.record.epoch);
          const last = durable?.last;
          if (!durable || !last) throw new Error(`epoch ${chainId}/${epoch.record.epoch} vanished`);
          if (durable.release) return durable.release;
          const statement = makeRelease({
            chainId,
            epoch: epoch.record.epoch,
            vendorId: this.vendorId,
            last,
            to,
            keyId: this.#o.signingKey.keyId,
            privateSeed: this.#o.signingKey.privateSeed,
            now: this.#clock.now(),
          });
          const stored = await this.#store.setRelease(chainId, epoch.record.epoch, statement);
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
