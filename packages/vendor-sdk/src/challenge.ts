import { type ErrorCode, formatWwwAuthenticate, PROBLEM_CONTENT_TYPE, problemDetails } from '@netpay/protocol';
import type { PayForm } from './pay-confirm.ts';
import { defaultPaywallHtml, type PaywallRenderer } from './paywall-page.ts';

/**
 * Why a server-side wallet did not pay for a page, and what the reader can do about it:
 * - `cross_site`: the reader arrived from another site; the form pays (a link elsewhere never spends);
 * - `confirm`: the price is above what the reader lets sites take without asking; the form pays;
 * - `limit_reached` / `balance_exhausted`: the broker said no; `brokerUrl` is where the reader raises the limit or
 *   adds money;
 * - `connection_revoked`: the reader ended the connection; the connect button asks again;
 * - `unusable`: the wallet could not pay for another reason (`detail`).
 */
export interface WalletPaywall {
  reason: 'cross_site' | 'confirm' | 'limit_reached' | 'balance_exhausted' | 'connection_revoked' | 'unusable';
  payForm?: PayForm;
  brokerUrl?: string;
  detail?: string;
}

/** An answer that is not the content: status, headers and a problem body (and HTML for a browser's paywall). */
export interface ProblemDecision {
  kind: 'problem';
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  html?: string;
  /** Set when the session's server-side wallet did not pay: why, and what the reader can do. */
  wallet?: WalletPaywall;
}

/** The facts every 402 repeats (§4). */
export interface ChallengeFacts {
  vendorId: string;
  priceMinor: number;
  currency: string;
  brokerUrl: string;
}

/** The `connect` member: the broker page a browser uses to attach a server-side wallet (§7). */
export function connectUrl(brokerUrl: string): string {
  return `${brokerUrl.replace(/\/+$/, '')}/connect`;
}

/**
 * The `WWW-Authenticate` value of a 402.
 *
 * @example
 * challengeHeader({ vendorId: 'daily-planet', priceMinor: 5, currency: 'NZD', brokerUrl: 'https://broker.example' });
 * // 'NetPay realm="daily-planet", price="5", currency="NZD", broker="https://broker.example"'
 */
export function challengeHeader(facts: ChallengeFacts): string {
  return formatWwwAuthenticate({
    realm: facts.vendorId,
    price: facts.priceMinor,
    currency: facts.currency,
    broker: facts.brokerUrl,
  });
}

/**
 * True when the client ranks text/html above JSON (a browser navigating), by the q-values of `Accept`.
 * A bare `*\/*` (curl, fetch) gets JSON.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  let html = -1;
  let json = -1;
  for (const part of accept.slice(0, 1024).split(',')) {
    const [rawType, ...params] = part.trim().toLowerCase().split(';');
    const type = (rawType ?? '').trim();
    let q = 1;
    for (const p of params) {
      const [k, v] = p.trim().split('=');
      if (k === 'q' && v !== undefined) {
        const n = Number(v);
        q = Number.isFinite(n) ? n : 0;
      }
    }
    if (type === 'text/html' || type === 'application/xhtml+xml') html = Math.max(html, q);
    else if (type === 'application/json' || type === 'application/problem+json') json = Math.max(json, q);
  }
  return html > 0 && html >= json;
}

/**
 * The 402 `payment_required` answer for an unpaid request: the challenge header, the problem body with
 * price, currency, vendor, broker and connect, and an HTML paywall when the client is a browser.
 *
 * @example
 * const d = paymentRequired({ vendorId, priceMinor: 5, currency: 'NZD', brokerUrl }, 'GET /a/1', req.headers.accept);
 */
export function paymentRequired(
  facts: ChallengeFacts,
  resource: string,
  accept: string | undefined,
  renderHtml: PaywallRenderer = defaultPaywallHtml,
  /** The vendor's own connect link for the paywall button (server-side wallets); default: the broker's. */
  paywallConnectUrl?: string,
): ProblemDecision {
  const connect = connectUrl(facts.brokerUrl);
  const body = problemDetails(
    'payment_required',
    `${resource} costs ${facts.priceMinor} ${facts.currency} minor units`,
    {
      price: facts.priceMinor,
      currency: facts.currency,
      vendor: facts.vendorId,
      broker: facts.brokerUrl,
      connect,
    },
  );
  const decision: ProblemDecision = {
    kind: 'problem',
    status: 402,
    headers: { 'www-authenticate': challengeHeader(facts), 'content-type': PROBLEM_CONTENT_TYPE },
    body,
  };
  if (prefersHtml(accept)) {
    decision.html = renderHtml({
      vendorId: facts.vendorId,
      resource,
      priceMinor: facts.priceMinor,
      currency: facts.currency,
      brokerUrl: facts.brokerUrl,
      connectUrl: paywallConnectUrl ?? `${connect}?vendor=${encodeURIComponent(facts.vendorId)}`,
    });
    decision.headers['content-type'] = 'text/html; charset=utf-8';
  }
  return decision;
}

/** The broker page where a customer buys more coins. */
export function buyCoinsUrl(brokerUrl: string): string {
  return `${brokerUrl.replace(/\/+$/, '')}/coins`;
}

/**
 * A server-side wallet's refusal for a browser: the problem keeps its status and code, and carries why and what the
 * reader can do (`wallet`), with the paywall rendered from it when the client is a browser.
 */
export function withWalletPaywall(
  problem: ProblemDecision,
  facts: ChallengeFacts,
  resource: string,
  accept: string | undefined,
  renderHtml: PaywallRenderer,
  paywallConnectUrl: string,
  wallet: WalletPaywall,
): ProblemDecision {
  const decided: ProblemDecision = { ...problem, wallet };
  if (!prefersHtml(accept)) return decided;
  const html = renderHtml({
    vendorId: facts.vendorId,
    resource,
    priceMinor: facts.priceMinor,
    currency: facts.currency,
    brokerUrl: facts.brokerUrl,
    connectUrl: paywallConnectUrl,
    code: String(problem.body.code ?? 'payment_required'),
    buyMoreUrl: buyCoinsUrl(facts.brokerUrl),
    wallet,
  });
  return { ...decided, headers: { ...problem.headers, 'content-type': 'text/html; charset=utf-8' }, html };
}

/**
 * A failed payment: its status from the error registry, the challenge header (so the wallet can pay again) and
 * a problem body.
 *
 * @example
 * paymentProblem(facts, 'already_spent', 'index 3 <= last 5', { lastIndex: 5 });
 */
export function paymentProblem(
  facts: ChallengeFacts | undefined,
  code: ErrorCode,
  detail?: string,
  extra?: Record<string, unknown>,
): ProblemDecision {
  const body = problemDetails(code, detail, extra);
  const headers: Record<string, string> = { 'content-type': PROBLEM_CONTENT_TYPE };
  if (facts) headers['www-authenticate'] = challengeHeader(facts);
  if (body.status === 503) headers['retry-after'] = '1';
  return { kind: 'problem', status: body.status, headers, body };
}
