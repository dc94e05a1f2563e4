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
import type { ChainState } from './chain-state.ts';
import type { ClaimProof, ProofSource } from './claim-proof.ts';
import { balanceMinor, type WorkMeter } from './payment.ts';
import type { PaywallRenderer } from './paywall-page.ts';
import type { PaymentWrite } from './spend-store.ts';
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

/** A payment as presented: the Authorization header's parameters (or a server-side wallet's derived payword). */
export interface PresentedParams {
  chain: string;
  index: number;
  payword: string;
}

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

/** The §4 decision for each priced request. */
export class Charges {
  readonly #ctx: VendorContext;
  readonly #ports: ChargePorts;
  readonly #renderHtml: PaywallRenderer;
  readonly #maxStepsAhead: number;
  readonly #work: WorkMeter;
  #currency: string | undefined;

  constructor(
    ctx: VendorContext,
    ports: ChargePorts,
    options: { renderHtml: PaywallRenderer; maxStepsAhead: number; work: WorkMeter; currency: string | undefined },
  ) {
    this.#ctx = ctx;
    this.#ports = ports;
    this.#renderHtml = options.renderHtml;
    this.#maxStepsAhead = options.maxStepsAhead;
    this.#work = options.work;
    this.#currency = options.currency;
  }

  /** The currency prices are in, once known (configured, or the broker's). */
  get currency(): string | undefined {
    return this.#currency;
  }

  /** The currency prices are in, asking the broker (discovery) the first time; a problem when it cannot. */
  async #currencyOrProblem(): Promise<string | ProblemDecision> {
    if (this.#currency) return this.#currency;
    try {
      this.#currency = (await this.#ctx.broker.discovery()).currency;
      return this.#currency;
    } catch (error) {
      return paymentProblem(undefined, 'broker_unavailable', `broker discovery failed: ${errorMessage(error)}`);
    }
  }

  /** Decides a request (§4): free, paid or a problem to send. */
  async charge(input: ChargeInput): Promise<PaymentDecision> {
    const price = input.priceMinor;
    if (!Number.isSafeInteger(price) || price < 0) throw new TypeError('priceMinor must be a non-negative integer');
    if (price === 0) return { kind: 'free' };
    try {
      const currency = await this.#currencyOrProblem();
      if (typeof currency !== 'string') return currency;
      const facts: ChallengeFacts = {
        vendorId: this.#ctx.vendorId,
        priceMinor: price,
        currency,
        brokerUrl: this.#ctx.brokerUrl,
      };
      const auth = input.authorization;
      // Bounded before it is parsed (§4): an oversized NetPay header is malformed. Only the scheme is looked at, so
      // a long header of another scheme (a site's own bearer token) is still just "no NetPay payment".
      if (auth && auth.length > MAX_HEADER_LENGTH && isNetPayAuthorization(auth.slice(0, 64))) {
        return paymentProblem(facts, 'bad_request', `the Authorization header is over ${MAX_HEADER_LENGTH} characters`);
      }
      if (!auth || !isNetPayAuthorization(auth)) {
        const wallets = this.#ports.wallets;
        const connect = wallets?.connectPath(input.path ?? '/');
        if (!auth && wallets && connect) {
          const decision = await wallets.payFromSession(facts, input, connect);
          if (decision) return decision;
        }
        return paymentRequired(facts, input.resource, input.accept, this.#renderHtml, connect);
      }
      let params: PresentedParams;
      try {
        params = parseAuthorization(auth);
      } catch (error) {
        return paymentProblem(facts, 'bad_request', error instanceof ProtocolError ? error.detail : 'bad header');
      }
      return await this.pay(facts, params, input.resource);
    } catch (error) {
      this.#ctx.logger?.error({ err: error }, 'netpay charge failed');
      return paymentProblem(undefined, 'internal_error', 'an unexpected error occurred; it has been logged');
    }
  }

  /**
   * Checks and records one presented payment (the customer's header, or a server-side wallet's derived payword),
   * claiming the chain first when this vendor does not hold it.
   */
  async pay(facts: ChallengeFacts, params: PresentedParams, resource: string): Promise<PaymentDecision> {
    const ctx = this.#ctx;
    const chainId = params.chain;
    const payword = b64uDecode(params.payword, 32);
    const presented = {
      index: params.index,
      payword,
      paywordB64: params.payword,
      resource,
      priceMinor: facts.priceMinor,
    };
    // The customer's payword is the claim's proof of payment (§5 v1.1). A chain never seen here has no local
    // bound: its last index is unknown, so it is not hashed here at all; the broker checks the proof against the
    // points it knows, and the claim's start bounds the next round of checkPayment.
    const proof: ClaimProof = { index: params.index, payword: params.payword };
    const checks = { currency: facts.currency, maxStepsAhead: this.#maxStepsAhead, meter: this.#work };
    let chain = ctx.chains.peek(chainId) ?? (await ctx.chains.get(chainId));
    // A cached chain may be behind the store when other processes of this vendor take payments on it too. Before
    // a refusal (or a claim) that stale knowledge could explain, the chain is reloaded once and the SAME payment
    // checked again: it may be a retry of what another process accepted (free) or payable from the new last index.
    let fresh = false;
    for (let attempt = 0; attempt < MAX_PAY_ATTEMPTS; attempt++) {
      if (chain && !chain.broken) {
        // Checked and, when payable, advanced in one synchronous step (chain-state.ts).
        const check = chain.checkAndAdvance(presented, { ...checks, nowMs: ctx.now() });
        // A re-read of a resource bought long ago: memory holds only the chain's recent entitlements; ask the store
        // before refusing, then check again (now entitled, it is free).
        if (
          check.kind === 'reject' &&
          presented.index <= chain.lastIndex &&
          !chain.entitlementsComplete &&
          !chain.entitled(resource) &&
          (await ctx.chains.entitled(chain, resource))
        ) {
          continue;
        }
        if (!fresh && (check.kind === 'claim' || (check.kind === 'reject' && STALE_EXPLAINS.has(check.code)))) {
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
            return paymentProblem(facts, check.code, check.detail, check.extra);
          case 'pay': {
            const recorded = await this.#record(facts, chain, check.write);
            if (recorded !== 'conflict') return recorded;
            // Another process advanced (or released) the epoch: the store is the truth; check this payment again.
            chain = await ctx.chains.get(chainId);
            fresh = true;
            continue;
          }
          case 'claim':
            break;
        }
      } else if (chain?.broken) {
        chain = await ctx.chains.get(chainId);
        fresh = true;
        continue;
      }
      const acquired = await this.#ports.acquire(chainId, facts, proof);
      if (isProblem(acquired)) return acquired;
      chain = acquired;
    }
    return paymentProblem(facts, 'broker_unavailable', 'could not obtain a valid lease on the chain');
  }

  /** Waits for the durable compare-and-set of a payment already checked and advanced in memory. */
  async #record(
    facts: ChallengeFacts,
    chain: ChainState,
    payment: PaymentWrite,
  ): Promise<PaymentDecision | 'conflict'> {
    const ctx = this.#ctx;
    const chainId = payment.chainId;
    let result: 'ok' | 'conflict';
    try {
      const write = ctx.store.recordPayment(payment);
      chain.writeIssued(write);
      try {
        result = await write;
      } finally {
        chain.writeSettled();
      }
    } catch (error) {
      ctx.chains.discard(chain, chainId);
      ctx.logger?.error({ err: error, chainId }, 'netpay payment not recorded');
      return paymentProblem(facts, 'internal_error', 'the payment could not be recorded; nothing was charged');
    }
    if (result === 'conflict') {
      // Another process moved this chain's epoch (or a write before this one failed): nothing was charged here.
      // The caller reloads the durable state and checks the same payment again, never answering already_spent
      // for a payment that is still honest.
      ctx.chains.discard(chain, chainId);
      return 'conflict';
    }
    // The receipt is for this payment's index: later payments may already have advanced the chain in memory
    // while this one was being committed, and they are not durable yet.
    return paidDecision(chain, chainId, true, payment.index);
  }
}
