/**
 * §4 paying a vendor: the decision for each priced request. A presented payment is checked against the chain in
 * memory and advanced in the same synchronous step, then recorded with a compare-and-set on its epoch; a chain
 * this vendor does not hold is claimed first (acquire-chain.ts); a refusal a stale cache could explain, and a
 * conflict in the durable write, reload the chain and check the same payment again.
 */
import {
  b64uDecode,
  type ErrorCode,
  formatReceipt,
  isNetPayAuthorization,
  MAX_HEADER_LENGTH,
  ProtocolError,
  parseAuthorization,
} from '@netpay/protocol';
import { isProblem } from './acquire-chain.ts';
import { type ChallengeFacts, type ProblemDecision, paymentProblem, paymentRequired } from './challenge.ts';
import type { ChainState, ChargeStep, PresentedWire } from './chain-state.ts';
import type { ClaimProof, ProofSource } from './claim-proof.ts';
import { balanceMinor, type PaymentContext, type WorkMeter } from './payment.ts';
import { type PaymentHeader, readCanonicalAuthorization } from './payment-header.ts';
import type { PaywallRenderer } from './paywall-page.ts';
import type { PaymentWrite, PurchaseNote } from './spend-store.ts';
import { errorMessage, type VendorContext } from './vendor-context.ts';

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
  /** `Sec-Fetch-Mode`, `Sec-Fetch-Dest` and `Sec-Purpose`: a subresource or a prefetch never pays (navigation.ts). */
  secFetchMode?: string | undefined;
  secFetchDest?: string | undefined;
  secPurpose?: string | undefined;
  referer?: string | undefined;
  /** `Origin`: a same-site check reads it before `Referer` where a browser sends it. */
  origin?: string | undefined;
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

/** A payment as presented: the Authorization header's parameters (or a server-side wallet's derived payword). */
export interface PresentedParams {
  chain: string;
  index: number;
  payword: string;
}

/**
 * The presented payment with its payword decoded. Built field by field: on the paid path an object spread plus
 * one more property cost V8 about 0.7 µs here (measured), a hundredth of the whole paid answer.
 */
function paymentHeaderOf(params: PresentedParams): PaymentHeader {
  return {
    chain: params.chain,
    index: params.index,
    payword: params.payword,
    paywordBytes: b64uDecode(params.payword, 32),
  };
}

/**
 * Rounds of check-and-record one payment may take: claims, reloads after another process of this vendor advanced
 * the chain, and conflicts in the durable write each take one.
 */
const MAX_PAY_ATTEMPTS = 8;

/** The longest resource name a payment is recorded under (each journal row and entitlement holds it). */
export const MAX_RESOURCE_LENGTH = 2048;
const RESOURCE_REFUSED = `the resource is empty, over ${MAX_RESOURCE_LENGTH} characters or holds a NUL`;

/**
 * Whether a payment can be recorded under this resource name. A site may build it from the request (the default is
 * the method and path, which the HTTP parser already bounds): a NUL, which PostgreSQL's text refuses, would fail the
 * whole batch of payments it is written with, every reader's.
 */
export function usableResource(resource: string): boolean {
  return resource.length > 0 && resource.length <= MAX_RESOURCE_LENGTH && !resource.includes('\u0000');
}

/** How many of a chain's writes in flight a refusal waits for to settle before it is checked again. */
const MAX_SETTLE_WAITS = 4;

/** Refusals a stale view of the chain could explain (another process advanced it): reload and check again first. */
const STALE_EXPLAINS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'already_spent',
  'too_far_ahead',
  'insufficient_amount',
]);

/** What paying needs from the other parts: claims (acquire-chain) and, when on, server-side wallets (§7). */
export interface ChargePorts {
  acquire(chainId: string, facts: ChallengeFacts, proof: ProofSource): Promise<ChainState | ProblemDecision>;
  /** Server-side wallets, when this vendor has them. */
  wallets?: SessionPayer;
}

/** Server-side wallets as the charge path sees them: the connect link and a session's payment. */
export interface SessionPayer {
  /** The connect path a paywall's button goes to, returning the browser to `path`. */
  connectPath(path: string): string;
  /** The decision when the request carries a wallet session's cookie; undefined for the paywall. */
  payFromSession(facts: ChallengeFacts, input: ChargeInput, connect: string): Promise<PaymentDecision | undefined>;
}

/** The receipt-carrying decision for a chain's payment at `index` (default its last index). */
export function paidDecision(
  chain: ChainState,
  chainId: string,
  charged: boolean,
  index = chain.lastIndex,
): PaymentDecision {
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

/** A presented payment as the checks and the durable write take it, with a server-side wallet's purchase note. */
type Presented = PresentedWire & { note?: PurchaseNote | undefined };

/** Where a payment stands when it leaves the synchronous path: the chain in hand and what it was checked to. */
interface Resume {
  chain: ChainState | undefined;
  step: ChargeStep | undefined;
  fresh: boolean;
  attempt: number;
  /** A request's payment (unexpected failures answered here) rather than a wallet's (they reach its request). */
  guarded: boolean;
}

/** The §4 decision for each priced request. */
export class Charges {
  readonly #ctx: VendorContext;
  readonly #ports: ChargePorts;
  readonly #renderHtml: PaywallRenderer;
  readonly #maxStepsAhead: number;
  readonly #work: WorkMeter;
  /** False when the store is this process's alone: the cache is then the truth and refusals need no reload. */
  readonly #shared: boolean;
  #currency: string | undefined;

  constructor(
    ctx: VendorContext,
    ports: ChargePorts,
    options: {
      renderHtml: PaywallRenderer;
      maxStepsAhead: number;
      work: WorkMeter;
      currency: string | undefined;
      storeShared: boolean;
    },
  ) {
    this.#ctx = ctx;
    this.#ports = ports;
    this.#renderHtml = options.renderHtml;
    this.#maxStepsAhead = options.maxStepsAhead;
    this.#work = options.work;
    this.#currency = options.currency;
    this.#shared = options.storeShared;
  }

  /** The currency prices are in, once known (configured, or the broker's). */
  get currency(): string | undefined {
    return this.#currency;
  }

  /**
   * Decides a request (§4): free, paid or a problem to send. Synchronous up to the durable write: a payment on a
   * chain in memory costs its checks, one hash and the one promise of its write; the rest (no currency yet, a chain
   * to load or claim, a reload) continues asynchronously. The promise never rejects but for a bad price.
   */
  charge(input: ChargeInput): Promise<PaymentDecision> {
    const price = input.priceMinor;
    if (!Number.isSafeInteger(price) || price < 0) {
      return Promise.reject(new TypeError('priceMinor must be a non-negative integer'));
    }
    if (price === 0) return Promise.resolve({ kind: 'free' });
    if (!usableResource(input.resource)) {
      return Promise.resolve(paymentProblem(undefined, 'bad_request', RESOURCE_REFUSED));
    }
    const currency = this.#currency;
    if (!currency) return this.#chargeOnceDiscovered(input);
    let decided: PaymentDecision | Promise<PaymentDecision>;
    try {
      decided = this.#decide(input, currency);
    } catch (error) {
      decided = this.#unexpected(error);
    }
    return decided instanceof Promise ? decided : Promise.resolve(decided);
  }

  /** The first requests, before the broker said which currency prices are in (discovery). */
  async #chargeOnceDiscovered(input: ChargeInput): Promise<PaymentDecision> {
    if (!this.#currency) {
      try {
        this.#currency = (await this.#ctx.broker.discovery()).currency;
      } catch (error) {
        return paymentProblem(undefined, 'broker_unavailable', `broker discovery failed: ${errorMessage(error)}`);
      }
    }
    try {
      return await this.#decide(input, this.#currency);
    } catch (error) {
      return this.#unexpected(error);
    }
  }

  #unexpected(error: unknown): PaymentDecision {
    this.#ctx.logger?.error({ err: error }, 'netpay charge failed');
    return paymentProblem(undefined, 'internal_error', 'an unexpected error occurred; it has been logged');
  }

  /**
   * An asynchronous continuation. For a request (`guarded`), its unexpected failures are answered as
   * `internal_error` and it never rejects; a wallet's payment lets them reach the request that made it.
   */
  #later(work: Promise<PaymentDecision>, guarded: boolean): Promise<PaymentDecision> {
    return guarded ? work.catch((error: unknown) => this.#unexpected(error)) : work;
  }

  #decide(input: ChargeInput, currency: string): PaymentDecision | Promise<PaymentDecision> {
    const facts: ChallengeFacts = {
      vendorId: this.#ctx.vendorId,
      priceMinor: input.priceMinor,
      currency,
      brokerUrl: this.#ctx.brokerUrl,
    };
    const auth = input.authorization;
    if (auth !== undefined) {
      // The header as wallets write it, read by position; any other form goes the strict way below.
      const header = readCanonicalAuthorization(auth);
      if (header !== undefined) return this.#pay(facts, header, input.resource, true);
    }
    // Bounded before it is parsed (§4): an oversized NetPay header is malformed. Only the scheme is looked at, so
    // a long header of another scheme (a site's own bearer token) is still just "no NetPay payment".
    if (auth && auth.length > MAX_HEADER_LENGTH && isNetPayAuthorization(auth.slice(0, 64))) {
      return paymentProblem(facts, 'bad_request', `the Authorization header is over ${MAX_HEADER_LENGTH} characters`);
    }
    if (!auth || !isNetPayAuthorization(auth)) {
      const wallets = this.#ports.wallets;
      const connect = wallets?.connectPath(input.path ?? '/');
      if (!auth && wallets && connect) {
        const paywall = () => paymentRequired(facts, input.resource, input.accept, this.#renderHtml, connect);
        return this.#later(
          wallets.payFromSession(facts, input, connect).then((d) => d ?? paywall()),
          true,
        );
      }
      return paymentRequired(facts, input.resource, input.accept, this.#renderHtml, connect);
    }
    let params: PresentedParams;
    try {
      params = parseAuthorization(auth);
    } catch (error) {
      return paymentProblem(facts, 'bad_request', error instanceof ProtocolError ? error.detail : 'bad header');
    }
    return this.#pay(facts, paymentHeaderOf(params), input.resource, true);
  }

  /**
   * Checks and records one payment a server-side wallet derived, exactly as a presented one, claiming the chain
   * first when this vendor does not hold it. The session's purchase note, when given, is committed with the payment
   * (only if it is recorded). An unexpected failure rejects, for the request to answer.
   */
  pay(facts: ChallengeFacts, params: PresentedParams, resource: string, note?: PurchaseNote): Promise<PaymentDecision> {
    try {
      const header = paymentHeaderOf(params);
      const decided = this.#pay(facts, header, resource, false, note);
      return decided instanceof Promise ? decided : Promise.resolve(decided);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The synchronous path: a chain in memory is checked and advanced at once, and a payable payment's write is
   * issued in the same step. Only what needs I/O first (a chain to load or claim, a refusal to confirm against the
   * store, a retry whose payment is still being written) continues in `#payAsync`, from the step already taken.
   */
  #pay(
    facts: ChallengeFacts,
    header: PaymentHeader,
    resource: string,
    guarded: boolean,
    note?: PurchaseNote,
  ): PaymentDecision | Promise<PaymentDecision> {
    const presented: Presented = {
      index: header.index,
      payword: header.paywordBytes,
      paywordB64: header.payword,
      resource,
      priceMinor: facts.priceMinor,
      note,
    };
    const chainId = header.chain;
    const chain = this.#ctx.chains.peek(chainId);
    if (chain === undefined) {
      const resume: Resume = { chain, step: undefined, fresh: false, attempt: 0, guarded };
      return this.#later(this.#payAsync(facts, presented, chainId, resume), guarded);
    }
    const step = chain.checkAndAdvance(presented, this.#checks(facts));
    switch (step.kind) {
      case 'pay':
        return this.#record(facts, chain, step.write, presented, { attempt: 0, guarded });
      case 'retry':
      case 'entitled':
        // Free, once the payment that earned it is on disk.
        if (chain.writesSettled) return paidDecision(chain, chainId, false);
        break;
      case 'reject':
        // A refusal cites the chain's last index (already_spent, too_far_ahead) or rests on it: it is answered from a
        // chain with no write in flight, so that what it says is durable (a wallet resyncs from it).
        if (chain.writesSettled && !this.#storeMayExplain(chain, presented, step, false)) {
          return paymentProblem(facts, step.code, step.detail, step.extra);
        }
        break;
      case 'claim':
        break;
    }
    const resume: Resume = { chain, step, fresh: false, attempt: 0, guarded };
    return this.#later(this.#payAsync(facts, presented, chainId, resume), guarded);
  }

  #checks(facts: ChallengeFacts): PaymentContext {
    return { nowMs: this.#ctx.now(), currency: facts.currency, maxStepsAhead: this.#maxStepsAhead, meter: this.#work };
  }

  /**
   * Whether the store could turn this refusal around: a resource bought too long ago for memory to hold its
   * entitlement, or (when other processes share the store and this copy was not just read) a chain another
   * process advanced.
   */
  #storeMayExplain(
    chain: ChainState,
    presented: Presented,
    step: ChargeStep & { kind: 'reject' },
    fresh: boolean,
  ): boolean {
    if (presented.index <= chain.lastIndex && !chain.entitlementsComplete && !chain.entitled(presented.resource)) {
      return true;
    }
    return this.#shared && !fresh && STALE_EXPLAINS.has(step.code);
  }

  /**
   * The rest of a payment, from where the synchronous path left it. A cached chain may be behind the store when
   * other processes of this vendor take payments on it too: before a refusal (or a claim) that stale knowledge could
   * explain, the chain is reloaded once and the SAME payment checked again; it may be a retry of what another
   * process accepted (free) or payable from the new last index.
   */
  async #payAsync(
    facts: ChallengeFacts,
    presented: Presented,
    chainId: string,
    from: Resume,
  ): Promise<PaymentDecision> {
    const ctx = this.#ctx;
    let { chain, step, fresh } = from;
    let waitedToSettle = false;
    if (chain === undefined) chain = await ctx.chains.get(chainId);
    for (let attempt = from.attempt; attempt < MAX_PAY_ATTEMPTS; attempt++) {
      if (chain && !chain.broken) {
        const check = step ?? chain.checkAndAdvance(presented, this.#checks(facts));
        step = undefined;
        if (check.kind === 'reject' && this.#storeMayExplain(chain, presented, check, fresh)) {
          // A re-read of a resource bought long ago: ask the store, and check again (now entitled, it is free).
          if (!chain.entitled(presented.resource) && (await ctx.chains.entitled(chain, presented.resource))) continue;
          if (this.#shared && !fresh && STALE_EXPLAINS.has(check.code)) {
            chain = await ctx.chains.reload(chain, chainId);
            fresh = true;
            continue;
          }
        }
        if (check.kind === 'claim' && this.#shared && !fresh) {
          chain = await ctx.chains.reload(chain, chainId);
          fresh = true;
          continue;
        }
        switch (check.kind) {
          case 'retry':
          case 'entitled':
            // The payment that earned it may still be on its way to disk.
            await chain.writeTail;
            if (!chain.broken) return paidDecision(chain, chainId, false);
            chain = await ctx.chains.get(chainId);
            continue;
          case 'reject':
            // Once: a chain paid on without a pause may never settle, and the refusal is then answered as it stands.
            if (!chain.writesSettled && !waitedToSettle) {
              waitedToSettle = true;
              await chain.settle(MAX_SETTLE_WAITS);
              if (chain.broken) {
                chain = await ctx.chains.get(chainId);
                fresh = true;
              }
              continue;
            }
            return paymentProblem(facts, check.code, check.detail, check.extra);
          case 'pay':
            return this.#record(facts, chain, check.write, presented, { attempt, guarded: from.guarded });
          case 'claim':
            break;
        }
      } else if (chain?.broken) {
        chain = await ctx.chains.get(chainId);
        fresh = true;
        continue;
      }
      // The customer's payword is the claim's proof of payment (§5 v1.1). A chain never seen here has no local
      // bound: its last index is unknown, so it is not hashed here at all; the broker checks the proof against the
      // points it knows, and the claim's start bounds the next round of checks.
      const proof: ClaimProof = { index: presented.index, payword: presented.paywordB64 };
      const acquired = await this.#ports.acquire(chainId, facts, proof);
      if (isProblem(acquired)) return acquired;
      chain = acquired;
    }
    return paymentProblem(facts, 'broker_unavailable', 'could not obtain a valid lease on the chain');
  }

  /**
   * Issues the durable compare-and-set of a payment already checked and advanced in memory, and answers when it
   * is on disk: one promise. A conflict (another process moved the epoch, or a write before this one failed)
   * charged nothing here: the chain is read again and the same payment checked again, never answered already_spent
   * while it is still honest.
   */
  #record(
    facts: ChallengeFacts,
    chain: ChainState,
    payment: PaymentWrite,
    presented: Presented,
    at: { attempt: number; guarded: boolean },
  ): Promise<PaymentDecision> {
    const ctx = this.#ctx;
    const chainId = payment.chainId;
    if (presented.note) payment.note = presented.note;
    let write: Promise<'ok' | 'conflict'>;
    try {
      write = ctx.store.recordPayment(payment);
    } catch (error) {
      return Promise.resolve(this.#notRecorded(facts, chain, chainId, error));
    }
    chain.writeIssued(write);
    return write.then(
      (result) => {
        chain.writeSettled();
        // The receipt is for this payment's index: later payments may already have advanced the chain in memory
        // while this one was being committed, and they are not durable yet.
        if (result === 'ok') return paidDecision(chain, chainId, true, payment.index);
        if (chain.writeFailed) return this.#notRecorded(facts, chain, chainId, 'a payment before it failed');
        ctx.chains.discard(chain, chainId);
        const resume: Resume = {
          chain: undefined,
          step: undefined,
          fresh: true,
          attempt: at.attempt + 1,
          guarded: at.guarded,
        };
        return this.#later(this.#payAsync(facts, presented, chainId, resume), at.guarded);
      },
      (error: unknown) => {
        chain.writeSettled();
        return this.#notRecorded(facts, chain, chainId, error);
      },
    );
  }

  #notRecorded(facts: ChallengeFacts, chain: ChainState, chainId: string, error: unknown): PaymentDecision {
    chain.writeFailed = true;
    this.#ctx.chains.discard(chain, chainId);
    this.#ctx.logger?.error({ err: error, chainId }, 'netpay payment not recorded');
    // The commit may have landed before its fsync failed, so "nothing was charged" could be false. What is true either
    // way: the same payment sent again is paid at most once (a retry of a recorded payment is free).
    return paymentProblem(
      facts,
      'internal_error',
      'the payment could not be confirmed as recorded; send the same payment again, it is never charged twice',
    );
  }
}
