/**
 * §7 connect as the browser sees it: the connect and callback redirects, the paywall's pay form, and what a
 * browser session has here (its wallet's figures and what it bought) for pages to show.
 */
import { type ErrorCode, PROBLEM_CONTENT_TYPE, problemDetails } from '@netpay/protocol';
import { type Connections, safeReturnTo } from './connection.ts';
import type { HttpReply } from './http-reply.ts';
import { type RequestOrigin, sameOriginPost } from './navigation.ts';
import { payFormToken, payFormTokenMatches, readPayForm } from './pay-confirm.ts';
import {
  allowanceLeftMinor,
  hasWallet,
  type ServerWallets,
  sessionHashOf,
  type WalletView,
  walletSessionFrom,
} from './server-wallet.ts';
import type { VendorContext } from './vendor-context.ts';
import { page, redirect, type WebAnswer } from './web-answer.ts';

/** A browser session as pages show it. */
export interface SessionView {
  wallet: WalletView | null;
  /** Resources the session bought here (a front page marks them). */
  bought: ReadonlySet<string>;
}

const NO_SESSION: SessionView = Object.freeze({ wallet: null, bought: new Set<string>() });

/** The connect endpoints and session views; each answers "not here" while server-side wallets are off. */
export class ConnectPages {
  readonly #ctx: VendorContext;
  readonly #connections: Connections | undefined;
  readonly #wallets: ServerWallets | undefined;
  readonly #secret: Uint8Array;

  constructor(
    ctx: VendorContext,
    parts: { connections: Connections | undefined; wallets: ServerWallets | undefined; secret: Uint8Array },
  ) {
    this.#ctx = ctx;
    this.#connections = parts.connections;
    this.#wallets = parts.wallets;
    this.#secret = parts.secret;
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
      this.#ctx.logger?.error({ err: error }, 'netpay connect callback failed');
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
    const session = walletSessionFrom(input.cookie, connections.secure);
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
    const chain = await this.#ctx.chains.get(record.chainId);
    return {
      bought,
      wallet: {
        chainId: record.chainId,
        allowanceLeftMinor: chain ? allowanceLeftMinor(record.allowance, chain, this.#ctx.now()) : 0,
        balanceMinor: record.balanceMinor,
        balanceAtMs: record.balanceAtMs,
        balanceFresh: record.balanceAtMs >= sinceMs,
        autoPayMaxMinor: record.autoPayMaxMinor,
        bought,
        payFormToken: payFormToken(this.#secret, sessionHash),
      },
    };
  }
}

const BODY_PROBLEMS: Record<number, { code: ErrorCode; detail: string }> = {
  400: { code: 'bad_request', detail: 'the body could not be read' },
  413: { code: 'payload_too_large', detail: 'the body is larger than a pay form' },
  415: { code: 'unsupported_media_type', detail: 'the pay form is sent as a form' },
};

/** A pay form whose body could not be read (the HTTP status of why), as an RFC 9457 problem; else a 500 one. */
export function payFormProblem(status: number): HttpReply {
  const known = BODY_PROBLEMS[status];
  const body = known
    ? problemDetails(known.code, known.detail)
    : problemDetails('internal_error', 'an unexpected error occurred; it has been logged');
  return { status: body.status, headers: { 'content-type': PROBLEM_CONTENT_TYPE }, body: JSON.stringify(body) };
}

function notFound(): WebAnswer {
  return {
    status: 404,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    cookies: [],
    html: 'Server-side wallets are not enabled on this site.',
  };
}
