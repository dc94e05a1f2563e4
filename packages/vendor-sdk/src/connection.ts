/**
 * The vendor side of §7 v1.1 connect: the paywall's button sends the browser's anonymous session to the broker's
 * connect page, the broker sends it back with a one-time code, and the vendor exchanges the code for a connection
 * (a chain of the connection claimed for this vendor, an allowance on it and a refresh token). When the allowance
 * runs low the vendor asks the broker for the next one over the back channel, reporting how far it spent and what
 * it sold. Every outcome the reader must act on (revoked, a limit, an empty balance) is a value, with the broker
 * page to act on.
 */
import { randomBytes } from 'node:crypto';
import {
  type Allowance,
  type AllowanceRequest,
  type AllowanceResponse,
  b64uEncode,
  type ClaimResponse,
  type ConnectionGrantResponse,
} from '@netpay/protocol';
import { constantTimeEqualText } from '@netpay/service-kit';
import { RemoteError } from './broker-client.ts';
import type { ProblemDecision } from './challenge.ts';
import { cookieValues, parseCookies, serializeCookie } from './cookies.ts';
import { type RequestOrigin, sameSiteNavigation } from './navigation.ts';
import { INTENT_TTL_MS, sealIntent } from './pay-confirm.ts';
import { openValue, sealValue } from './sealed-value.ts';
import {
  newWalletSessionId,
  readWalletSession,
  SESSION_MAX_AGE_SECONDS,
  type ServerWallets,
  type SessionWallet,
  sessionHashOf,
  WALLET_SESSION_COOKIE,
  walletSessionCookieName,
} from './server-wallet.ts';
import type { ServerWalletRecord, SpendStore } from './spend-store.ts';
import { page, redirect, type WebAnswer } from './web-answer.ts';

/** Where the adapters serve connect and its callback. */
export const CONNECT_PATH = '/netpay/connect';
export const CALLBACK_PATH = '/netpay/callback';
/** How long a connect may take from the paywall click to the callback. */
export const CONNECT_TTL_MS = 10 * 60_000;
const MAX_RETURN_TO = 2048;

/**
 * `return_to` made safe: a local path (starts with one '/', not '//' or '/\', no control characters, no
 * whitespace) that resolves on our own origin; anything else becomes '/'. No open redirect.
 *
 * @example
 * safeReturnTo('/articles/1?x=2'); // '/articles/1?x=2'
 * safeReturnTo('//evil.example');  // '/'
 * safeReturnTo('/..//evil.example'); // '/' (dot segments resolved to '//evil.example')
 */
export function safeReturnTo(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_RETURN_TO) return '/';
  if (!raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) return '/';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f\s\\]/.test(raw)) return '/';
  const base = 'http://vendor.invalid';
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    return '/';
  }
  if (url.origin !== base) return '/';
  const local = `${url.pathname}${url.search}`;
  // Resolving dot segments can make '//host' ('/..//evil.example'), which a browser reads as another site.
  return local.startsWith('//') || local.startsWith('/\\') ? '/' : local;
}

/** What the connect cookie carries between `/netpay/connect` and `/netpay/callback`, sealed with an HMAC. */
export interface ConnectState {
  state: string;
  returnTo: string;
  /** hashToken(session id): the callback must come back to the same browser session. */
  sessionHash: string;
  expiresAtMs: number;
  /**
   * The reader pressed the button on this site (same-site navigation), so the page it returns to may be paid for
   * on arrival even though that arrival is a redirect from the broker.
   */
  payOnReturn?: boolean;
}

/** Seals a connect state into a cookie value. */
export function sealConnectState(secret: Uint8Array, data: ConnectState): string {
  return sealValue(secret, 'netpay/connect', data);
}

/** Opens a sealed connect state; undefined when forged, malformed or expired. */
export function openConnectState(
  secret: Uint8Array,
  value: string | undefined,
  nowMs: number,
): ConnectState | undefined {
  const data = openValue(secret, 'netpay/connect', value) as Partial<ConnectState> | undefined;
  if (
    typeof data?.state !== 'string' ||
    typeof data.returnTo !== 'string' ||
    typeof data.sessionHash !== 'string' ||
    typeof data.expiresAtMs !== 'number' ||
    nowMs >= data.expiresAtMs
  ) {
    return undefined;
  }
  return { ...(data as ConnectState), returnTo: safeReturnTo(data.returnTo) };
}

/** True when the callback's `state` is the one we issued (constant time). */
export function stateMatches(issued: string, returned: unknown): boolean {
  return typeof returned === 'string' && returned.length > 0 && constantTimeEqualText(issued, returned);
}

/** The reader must act at the broker before this site can be paid: a limit is reached, or the balance is empty. */
export interface BrokerAction {
  code: 'limit_reached' | 'balance_exhausted';
  /** The broker page where the reader acts (raise the limit, add money). */
  brokerUrl: string;
  detail: string;
}

/** What asking for the next allowance came to. */
export type RefreshOutcome =
  | { kind: 'granted'; wallet: SessionWallet }
  | { kind: 'revoked' }
  | ({ kind: 'refused' } & BrokerAction)
  | { kind: 'unavailable'; detail: string };

/** What the connect flow needs from the vendor core. */
export interface ConnectionPort {
  exchangeGrant(code: string): Promise<ConnectionGrantResponse>;
  requestAllowance(request: AllowanceRequest): Promise<AllowanceResponse>;
  /** Processes a claim the broker made for this vendor exactly like its own; a problem when it fails. */
  adoptClaim(chainId: string, claim: ClaimResponse): Promise<ProblemDecision | undefined>;
  /** Why an allowance cannot be used on a chain this vendor holds (w_a not on the chain above its point). */
  checkAllowance(chainId: string, allowance: Allowance): Promise<string | undefined>;
  wallets: ServerWallets;
  store: SpendStore;
  now(): number;
  logWarn(fields: object, msg: string): void;
}

export interface ConnectionOptions {
  vendorId: string;
  /** The vendor's public base URL (callback URL, Secure cookies when https). */
  publicUrl: string;
  brokerUrl: string;
  /** Where this vendor answers release requests (§6), for a chain it held before in an earlier epoch. */
  releaseUrl: string;
  /** HMAC key for the connect cookie and intents. */
  secret: Uint8Array;
  port: ConnectionPort;
}

/** The intent cookie's name for a vendor (one per vendor, so sites on one host never mix them up). */
export function intentCookieName(vendorId: string): string {
  return `np_pay_${vendorId.replace(/-/g, '_')}`;
}

const ACTION_WORDS: Record<BrokerAction['code'], { title: string; link: string }> = {
  limit_reached: { title: 'You have reached a spending limit you set', link: 'Change your limits at NetPay' },
  balance_exhausted: { title: 'Your NetPay balance is used up', link: 'Add money at NetPay' },
};

/** Connect, callback and allowance refresh for one vendor. */
export class Connections {
  readonly #o: ConnectionOptions;
  readonly #secure: boolean;
  readonly #connectCookie: string;
  readonly #intentCookie: string;
  /** Refreshes in flight per session, so concurrent pages ask the broker once. */
  readonly #refreshing = new Map<string, Promise<RefreshOutcome>>();

  constructor(options: ConnectionOptions) {
    this.#o = {
      ...options,
      publicUrl: options.publicUrl.replace(/\/+$/, ''),
      brokerUrl: options.brokerUrl.replace(/\/+$/, ''),
    };
    this.#secure = this.#o.publicUrl.startsWith('https:');
    this.#connectCookie = `np_connect_${options.vendorId.replace(/-/g, '_')}`;
    this.#intentCookie = intentCookieName(options.vendorId);
  }

  /** The local URL the paywall's "Pay with NetPay" button points to. */
  connectPath(returnTo: string): string {
    return `${CONNECT_PATH}?return_to=${encodeURIComponent(safeReturnTo(returnTo))}`;
  }

  /** True on an https site: Secure cookies, and the session in the `__Host-` cookie only. */
  get secure(): boolean {
    return this.#secure;
  }

  /** The site's origin, for the same-site rules. */
  get origin(): string {
    return new URL(this.#o.publicUrl).origin;
  }

  /** A `Set-Cookie` for an intent to pay for `path` up to `upToMinor`. */
  intentCookie(sessionHash: string, path: string, upToMinor: number): string {
    const value = sealIntent(this.#o.secret, {
      sessionHash,
      path: safeReturnTo(path),
      upToMinor,
      expiresAtMs: this.#o.port.now() + INTENT_TTL_MS,
    });
    return serializeCookie(this.#intentCookie, value, {
      path: '/',
      maxAgeSeconds: INTENT_TTL_MS / 1000,
      secure: this.#secure,
    });
  }

  /** The intent cookie's value in a `Cookie` header. */
  intentValue(cookieHeader: string | undefined): string | undefined {
    return parseCookies(cookieHeader).get(this.#intentCookie);
  }

  /**
   * `GET /netpay/connect?return_to=/path`: a state nonce sealed in a cookie bound to the browser's session (made
   * here if it has none), then 303 to the broker's connect page. Whether the click came from this site is sealed
   * with it.
   */
  connect(input: { returnTo?: unknown; cookie?: string | undefined; request?: RequestOrigin }): WebAnswer {
    const cookies: string[] = [];
    const found = readWalletSession(input.cookie, this.#secure);
    if (found.duplicated) return duplicatedSession();
    let session = found.id;
    if (!session) {
      session = newWalletSessionId(this.#secure);
      cookies.push(this.#sessionCookie(session));
    }
    const state = b64uEncode(randomBytes(32));
    const sealed = sealConnectState(this.#o.secret, {
      state,
      returnTo: safeReturnTo(input.returnTo),
      sessionHash: sessionHashOf(session),
      expiresAtMs: this.#o.port.now() + CONNECT_TTL_MS,
      payOnReturn: sameSiteNavigation(input.request ?? {}, this.origin),
    });
    cookies.push(
      serializeCookie(this.#connectCookie, sealed, {
        path: '/netpay',
        maxAgeSeconds: CONNECT_TTL_MS / 1000,
        secure: this.#secure,
      }),
    );
    const q = new URLSearchParams({
      vendor: this.#o.vendorId,
      return: `${this.#o.publicUrl}${CALLBACK_PATH}`,
      state,
    });
    return redirect(`${this.#o.brokerUrl}/connect?${q.toString()}`, cookies);
  }

  /**
   * `GET /netpay/callback?code&state`: checks the state against the sealed cookie (same session, not expired,
   * constant-time), exchanges the code, adopts the claim, checks the allowance, stores the wallet under a new session
   * id (a new cookie), then 303 to the local `return_to`. Anything wrong stores nothing and says what the reader can do.
   */
  async callback(input: { query: Record<string, unknown>; cookie?: string | undefined }): Promise<WebAnswer> {
    const port = this.#o.port;
    const clear = serializeCookie(this.#connectCookie, '', { path: '/netpay', maxAgeSeconds: 0, secure: this.#secure });
    const sealed = openConnectState(this.#o.secret, parseCookies(input.cookie).get(this.#connectCookie), port.now());
    const found = readWalletSession(input.cookie, this.#secure);
    if (found.duplicated) return duplicatedSession([clear]);
    const session = found.id;
    if (
      !sealed ||
      !session ||
      !constantTimeEqualText(sealed.sessionHash, sessionHashOf(session)) ||
      !stateMatches(sealed.state, input.query.state)
    ) {
      return page(
        400,
        'This NetPay connection was not started here',
        'The link back from NetPay does not match a connection this browser started on this site, or it took too ' +
          'long. Nothing was connected. Go back to the article and press "Pay with NetPay" again.',
        [clear],
      );
    }
    if (input.query.error !== undefined) return redirect(sealed.returnTo, [clear]);
    const code = input.query.code;
    if (typeof code !== 'string' || code.length === 0 || code.length > 256) {
      return page(400, 'This site was not connected', 'NetPay sent no code back.', [clear]);
    }
    let grant: ConnectionGrantResponse;
    try {
      grant = await port.exchangeGrant(code);
    } catch (error) {
      port.logWarn({ err: messageOf(error) }, 'netpay grant exchange failed');
      const action = brokerActionOf(error, this.#o.brokerUrl);
      if (action) {
        const words = ACTION_WORDS[action.code];
        return page(402, words.title, `This site was not connected: ${action.detail}.`, [clear], {
          href: action.brokerUrl,
          text: words.link,
        });
      }
      if (error instanceof RemoteError && error.kind === 'refused') {
        return page(
          400,
          'This site was not connected',
          'NetPay did not accept the code (it is valid once, for a minute). Please connect again.',
          [clear],
        );
      }
      return page(503, 'NetPay cannot be reached', 'Nothing was connected. Please try again in a moment.', [clear]);
    }
    if (grant.touchstone.chainId !== grant.chainId || grant.holder.chainId !== grant.chainId) {
      port.logWarn({ chainId: grant.chainId }, 'netpay grant rejected: wrong chain');
      return page(502, 'This site was not connected', 'NetPay sent a connection that does not check out.', [clear]);
    }
    const claim: ClaimResponse = {
      touchstone: grant.touchstone,
      holder: grant.holder,
      previous: grant.previous,
      start: grant.start,
    };
    const problem = await port.adoptClaim(grant.chainId, claim);
    if (problem) {
      const detail = typeof problem.body.detail === 'string' ? problem.body.detail : String(problem.body.code);
      return page(problem.status, 'This site could not be connected yet', `${detail}. Please try again.`, [clear]);
    }
    const why = await port.checkAllowance(grant.chainId, grant.allowance);
    if (why) {
      port.logWarn({ chainId: grant.chainId, why }, 'netpay grant rejected');
      return page(502, 'This site was not connected', 'NetPay sent an allowance that does not check out.', [clear]);
    }
    // The wallet goes to a new session id: the one the browser came with may have been planted (session fixation),
    // and its planter would spend this wallet. What that id bought goes with the browser too (its re-reads stay
    // free; the state check proved this browser held the id, and a planted id's purchases only give free reads);
    // its wallet, if any, is forgotten, since whoever else holds the id must not keep spending.
    const fresh = newWalletSessionId(this.#secure);
    const sessionHash = sessionHashOf(fresh);
    await port.store.copyWalletPurchases(sessionHashOf(session), sessionHash);
    await port.wallets.forget(sessionHashOf(session));
    const now = port.now();
    const record: ServerWalletRecord = {
      sessionHash,
      chainId: grant.chainId,
      epoch: grant.holder.epoch,
      allowance: allowanceRecord(grant.allowance),
      refreshTokenSealed: port.wallets.sealToken(sessionHash, grant.refreshToken),
      balanceMinor: grant.balance,
      balanceAtMs: now,
      autoPayMaxMinor: grant.limits.autoPayMaxMinor,
      updatedAtMs: now,
    };
    await port.wallets.put(record);
    const cookies = [clear, this.#sessionCookie(fresh)];
    if (this.#secure && cookieValues(input.cookie, WALLET_SESSION_COOKIE).length > 0) {
      // A plain cookie from before the site used `__Host-`: dropped (one planted with a Domain stays, unread).
      cookies.push(serializeCookie(WALLET_SESSION_COOKIE, '', { path: '/', maxAgeSeconds: 0, secure: true }));
    }
    if (sealed.payOnReturn) cookies.push(this.intentCookie(sessionHash, sealed.returnTo, 0));
    return redirect(sealed.returnTo, cookies);
  }

  #sessionCookie(session: string): string {
    return serializeCookie(walletSessionCookieName(this.#secure), session, {
      path: '/',
      maxAgeSeconds: SESSION_MAX_AGE_SECONDS,
      secure: this.#secure,
    });
  }

  /**
   * Asks the broker for the next allowance (`POST {api}/allowances`), reporting the point spent to and the notes of
   * what was sold since the last report; stores the answer (on a new chain of the connection when the broker moved
   * it, claimed for this vendor). Concurrent requests of one session share one call.
   */
  refresh(wallet: SessionWallet, spent: { index: number; payword: string }, epoch: number): Promise<RefreshOutcome> {
    const key = wallet.sessionHash;
    let running = this.#refreshing.get(key);
    if (!running) {
      running = this.#refresh(wallet, spent, epoch).finally(() => this.#refreshing.delete(key));
      this.#refreshing.set(key, running);
    }
    return running;
  }

  async #refresh(
    wallet: SessionWallet,
    spent: { index: number; payword: string },
    epoch: number,
  ): Promise<RefreshOutcome> {
    const port = this.#o.port;
    const chainId = wallet.record.chainId;
    const notes = await port.store.unreportedNotes(chainId, spent.index);
    let answer: AllowanceResponse;
    try {
      answer = await port.requestAllowance({
        refreshToken: port.wallets.openToken(wallet),
        chainId,
        epoch,
        spent,
        ...(notes.length > 0 ? { notes } : {}),
      });
    } catch (error) {
      if (error instanceof RemoteError && error.code === 'connection_revoked') return { kind: 'revoked' };
      const action = brokerActionOf(error, this.#o.brokerUrl);
      if (action) return { kind: 'refused', ...action };
      port.logWarn({ chainId, err: messageOf(error) }, 'netpay allowance not obtained');
      return { kind: 'unavailable', detail: messageOf(error) };
    }
    if (answer.touchstone.chainId !== answer.chainId)
      return { kind: 'unavailable', detail: 'answer for another chain' };
    let nextEpoch = epoch;
    if (answer.holder) {
      // A new chain of the connection (or the current one again), claimed for this vendor by the broker.
      const holder = answer.holder;
      const previous =
        holder.prevVendorId === ''
          ? null
          : holder.prevVendorId === this.#o.vendorId
            ? { vendorId: holder.prevVendorId, epoch: holder.prevEpoch, releaseUrl: this.#o.releaseUrl }
            : undefined;
      if (previous === undefined) {
        port.logWarn({ chainId: answer.chainId }, 'netpay allowance on a chain another site held');
        return { kind: 'unavailable', detail: 'the new chain was held by another site' };
      }
      const problem = await port.adoptClaim(answer.chainId, {
        touchstone: answer.touchstone,
        holder,
        previous,
        start: null,
      });
      if (problem) return { kind: 'unavailable', detail: String(problem.body.detail ?? problem.body.code) };
      nextEpoch = holder.epoch;
    } else if (answer.chainId !== chainId) {
      return { kind: 'unavailable', detail: 'a new chain without a holder certificate' };
    }
    const why = await port.checkAllowance(answer.chainId, answer.allowance);
    if (why) {
      port.logWarn({ chainId: answer.chainId, why }, 'netpay allowance rejected');
      return { kind: 'unavailable', detail: `the allowance does not check out: ${why}` };
    }
    // Only what was reported: the broker takes at most 100 notes a refresh, and the rest go with the next one.
    const reported = notes.at(-1);
    if (reported) await port.store.dropNotes(chainId, reported.index);
    const now = port.now();
    const next = await port.wallets.put({
      ...wallet.record,
      chainId: answer.chainId,
      epoch: nextEpoch,
      allowance: allowanceRecord(answer.allowance),
      balanceMinor: answer.balance,
      balanceAtMs: now,
      autoPayMaxMinor: answer.limits.autoPayMaxMinor,
      updatedAtMs: now,
    });
    return { kind: 'granted', wallet: next };
  }
}

/** Two session cookies of one name (one planted with another Path or Domain): refused rather than guessed. */
function duplicatedSession(cookies: string[] = []): WebAnswer {
  return page(
    400,
    'Your browser sent this site two NetPay sessions',
    'One of them was not set by this site, so nothing was connected. Clear this site’s cookies in your browser, ' +
      'then go back to the article and press "Pay with NetPay" again.',
    cookies,
  );
}

function allowanceRecord(allowance: Allowance): ServerWalletRecord['allowance'] {
  return { index: allowance.index, payword: allowance.payword, expiresAtMs: Date.parse(allowance.expiresAt) };
}

/** A 402 the reader must act on at the broker, with the page to act on; undefined for any other failure. */
function brokerActionOf(error: unknown, brokerUrl: string): BrokerAction | undefined {
  if (!(error instanceof RemoteError) || (error.code !== 'limit_reached' && error.code !== 'balance_exhausted')) {
    return undefined;
  }
  const body = (error.body ?? {}) as { brokerUrl?: unknown; detail?: unknown };
  return {
    code: error.code,
    brokerUrl: httpUrl(body.brokerUrl) ?? `${brokerUrl}/`,
    detail: typeof body.detail === 'string' && body.detail.length > 0 ? body.detail : error.code.replace('_', ' '),
  };
}

/** An http(s) URL to link to, or undefined (a link is never `javascript:`). */
function httpUrl(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2048) return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.toString() : undefined;
  } catch {
    return undefined;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
