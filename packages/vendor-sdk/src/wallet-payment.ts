/**
 * §7 v1.1 paying from a server-side wallet: a browser session's connected wallet pays for a page through the very
 * same §4 checks, compare-and-set and receipt as a presented payment (charge.ts), with w_k derived from the
 * allowance w_a the broker granted; the reader's say-so comes first.
 */
import { type Allowance, b64uDecode, formatReceipt } from '@netpay/protocol';
import { isProblem } from './acquire-chain.ts';
import {
  type ChallengeFacts,
  type ProblemDecision,
  paymentProblem,
  paymentRequired,
  type WalletPaywall,
  withWalletPaywall,
} from './challenge.ts';
import type { ChainState } from './chain-state.ts';
import {
  type ChargeInput,
  type PaymentDecision,
  type PresentedParams,
  paidDecision,
  type SessionPayer,
} from './charge.ts';
import { type ProofSource, walletProofs } from './claim-proof.ts';
import { type Connections, type RefreshOutcome, safeReturnTo } from './connection.ts';
import { sameSiteNavigation } from './navigation.ts';
import { openIntent, PAY_PATH, payFormToken } from './pay-confirm.ts';
import { balanceMinor, verifiesAtOrBelow } from './payment.ts';
import type { PaywallRenderer } from './paywall-page.ts';
import type { PurchaseNote } from './spend-store.ts';
import {
  hasWallet,
  paywordBelow,
  type ServerWallets,
  type SessionState,
  type SessionWallet,
  sessionHashOf,
  walletSessionFrom,
} from './server-wallet.ts';
import type { VendorContext } from './vendor-context.ts';

/** How many times a refresh waits for the chain's writes in flight before giving up on this request. */
const MAX_SETTLE_WAITS = 8;

/** The longest description a spend note carries. */
const MAX_NOTE_LENGTH = 120;

/** Control characters, which a history line has no use for (and PostgreSQL's text refuses NUL). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point: they are taken out.
const CONTROL = /[\u0000-\u001f\u007f]/g;

/**
 * What a spend note says was sold: the page's description, else the resource, without control characters and
 * trimmed to `MAX_NOTE_LENGTH`. A site may build the description from the request: the note is committed in the
 * payment's batch, where a value the database refuses would fail every reader's payment in it.
 */
export function describe(input: { description?: string | undefined; resource: string }): string {
  const said = (input.description ?? '').replace(CONTROL, ' ').trim();
  return (said || input.resource.replace(CONTROL, ' ').trim() || '-').slice(0, MAX_NOTE_LENGTH);
}

/** What a wallet payment needs from the other parts: claims, and the §4 payment itself. */
export interface WalletPaymentPorts {
  acquire(chainId: string, facts: ChallengeFacts, proof: ProofSource): Promise<ChainState | ProblemDecision>;
  pay(facts: ChallengeFacts, params: PresentedParams, resource: string, note: PurchaseNote): Promise<PaymentDecision>;
}

/** Server-side wallets paying for the pages of their sessions. */
export class WalletPayments implements SessionPayer {
  readonly #ctx: VendorContext;
  readonly #connections: Connections;
  readonly #wallets: ServerWallets;
  readonly #secret: Uint8Array;
  readonly #renderHtml: PaywallRenderer;
  readonly #ports: WalletPaymentPorts;

  constructor(
    ctx: VendorContext,
    parts: {
      connections: Connections;
      wallets: ServerWallets;
      secret: Uint8Array;
      renderHtml: PaywallRenderer;
      ports: WalletPaymentPorts;
    },
  ) {
    this.#ctx = ctx;
    this.#connections = parts.connections;
    this.#wallets = parts.wallets;
    this.#secret = parts.secret;
    this.#renderHtml = parts.renderHtml;
    this.#ports = parts.ports;
  }

  connectPath(path: string): string {
    return this.#connections.connectPath(path);
  }

  async payFromSession(
    facts: ChallengeFacts,
    input: ChargeInput,
    connect: string,
  ): Promise<PaymentDecision | undefined> {
    const session = walletSessionFrom(input.cookie, this.#connections.secure);
    if (!session) return undefined;
    const state = await this.#wallets.session(sessionHashOf(session));
    if (state.bought.has(input.resource)) return this.#reread(state, input.resource);
    if (hasWallet(state)) return this.#payFromWallet(facts, state, input, connect);
    return undefined;
  }

  /**
   * A server-side wallet pays for the request (§7 v1.1). First the reader's say-so: only a navigation on this site
   * pays, and only up to the price the reader lets sites take without asking; otherwise (unless the reader's
   * go-ahead for this page came with the request, see pay-confirm.ts) the paywall offers a form that pays, and
   * nothing is charged. Then k = this vendor's last index + price / unit; when k is above the allowance (or it
   * expired) the wallet asks the broker for the next one first, reporting what it spent and sold; w_k is derived
   * from w_a and paid through the very same §4 checks, compare-and-set and receipt as a presented payment.
   * A revoked connection forgets the wallet (the paywall asks to connect again); a limit or an empty balance is
   * the paywall with the broker page to act on.
   */
  async #payFromWallet(
    facts: ChallengeFacts,
    session: SessionWallet,
    input: ChargeInput,
    connect: string,
  ): Promise<PaymentDecision> {
    const ctx = this.#ctx;
    const connections = this.#connections;
    const wallets = this.#wallets;
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

    const intent = openIntent(this.#secret, connections.intentValue(input.cookie), session.sessionHash, ctx.now());
    const vouched = intent !== undefined && intent.path === safeReturnTo(input.path ?? '/');
    const askFirst = price > session.record.autoPayMaxMinor;
    if (!vouched && !sameSiteNavigation(input, connections.origin)) return offer(askFirst ? 'confirm' : 'cross_site');
    if (askFirst && (!vouched || (intent?.upToMinor ?? 0) < price)) return offer('confirm');

    let wallet = session;
    let refreshed = false;
    for (let attempt = 0; attempt < 5; attempt++) {
      const chainId = wallet.record.chainId;
      let chain = await ctx.chains.get(chainId);
      if (!chain) return revoked();
      // Memory first, then the store; asked of memory again after the store answered: another request of this
      // session (a second tab) may have bought the resource meanwhile, and from here to the payment nothing waits.
      if ((await ctx.chains.entitled(chain, input.resource)) || chain.entitled(input.resource)) {
        // The entitlement is noted in memory as its payment is checked, before that payment is on disk: served only
        // once the chain's writes are durable, never from a copy whose write failed (then the chain is read again).
        if (!chain.writesSettled) {
          await chain.writeTail;
          if (chain.broken) continue;
        }
        await this.#noteIfMissing(wallet, input, chainId);
        return paidDecision(chain, chainId, false);
      }
      if (price % chain.unit !== 0) {
        return paymentProblem(facts, 'insufficient_amount', `price ${price} is not a whole number of units`);
      }
      const units = price / chain.unit;
      const allowance = wallet.record.allowance;
      const k = chain.lastIndex + units;
      if (k > allowance.index || ctx.now() >= allowance.expiresAtMs) {
        if (refreshed) {
          // The broker granted less than this price: the reader's caps leave too little for it.
          return refuse(paymentProblem(facts, 'limit_reached', 'the allowance left does not cover this price'), {
            reason: 'limit_reached',
            brokerUrl: `${ctx.brokerUrl}/`,
          });
        }
        // The broker takes the spent point as a checkpoint of the chain: only a durable one, so no write in flight
        // (a later payment may have been advanced in memory while the one before it was made durable).
        if (!(await chain.settle(MAX_SETTLE_WAITS))) {
          if (chain.broken) continue;
          return paymentProblem(facts, 'broker_unavailable', 'payments still being written');
        }
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
        const acquired = await this.#ports.acquire(chainId, facts, proofs);
        if (isProblem(acquired)) {
          // The broker is ending the chain (the reader revoked this connection): nothing more to pay from.
          if (acquired.body.code === 'unknown_chain') return revoked();
          return refuse(acquired, { reason: 'unusable', detail: String(acquired.body.detail ?? '') });
        }
        chain = acquired;
        continue;
      }
      const payword = paywordBelow(chainId, allowance, k) as string;
      const note = { sessionHash: wallet.sessionHash, description: describe(input) };
      const decision = await this.#ports.pay(facts, { chain: chainId, index: k, payword }, input.resource, note);
      if (decision.kind === 'paid') {
        // A charged payment committed its note in its own transaction: the session's memory learns of it.
        if (decision.charged) this.#wallets.noted(wallet, input.resource, decision);
        else await this.#noteIfMissing(wallet, input, decision.chainId);
        return decision;
      }
      if (decision.kind !== 'problem') return decision;
      if (decision.body.code === 'already_spent') continue;
      if (decision.body.code === 'unknown_chain') return revoked();
      return refuse(decision, { reason: 'unusable', detail: String(decision.body.detail ?? decision.body.code) });
    }
    return paymentProblem(facts, 'broker_unavailable', 'could not pay from the wallet');
  }

  /** A session's sale on record, written apart from its payment: its entitlement here and its history note. */
  async #notePurchase(session: SessionState, input: ChargeInput, chainId: string, index: number): Promise<void> {
    try {
      await this.#wallets.addPurchase(session, {
        sessionHash: session.sessionHash,
        resource: input.resource,
        chainId,
        index,
        amountMinor: input.priceMinor,
        description: describe(input),
        atMs: this.#ctx.now(),
      });
    } catch (error) {
      // The payment itself is recorded; only the re-read mark and the history note are missing.
      this.#ctx.logger?.error({ err: error, chainId }, 'netpay wallet purchase not noted');
    }
  }

  /**
   * Notes a purchase the session's record lacks although the chain bought the resource: a retry whose first answer
   * was lost, or a purchase made before notes were committed with their payments. Without it the session would pay
   * again for the resource once its wallet moves to another chain.
   */
  async #noteIfMissing(session: SessionState, input: ChargeInput, chainId: string): Promise<void> {
    if (session.bought.has(input.resource)) return;
    const point = await this.#ctx.store.entitlement(chainId, input.resource).catch(() => undefined);
    if (point) await this.#notePurchase(session, input, chainId, point.index);
  }

  /** A resource the session bought before: served free, whatever the navigation, connected or not. */
  async #reread(session: SessionState, resource: string): Promise<PaymentDecision> {
    const at = session.bought.get(resource) as { chainId: string; index: number };
    const chain = await this.#ctx.chains.get(at.chainId);
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

  /** Why an allowance cannot be used: w_a must lie on the chain, at or above the point this vendor spent to. */
  async checkAllowance(chainId: string, allowance: Allowance): Promise<string | undefined> {
    const chain = await this.#ctx.chains.get(chainId);
    if (!chain) return 'unknown chain';
    if (allowance.index > chain.length) return 'beyond the end of the chain';
    if (allowance.index < chain.lastIndex) return 'below the point already spent here';
    const word = b64uDecode(allowance.payword, 32);
    if (!verifiesAtOrBelow(chain.chainId, chain.knownPoints, allowance.index, word)) {
      return 'the payword is not on the chain';
    }
    return undefined;
  }
}
