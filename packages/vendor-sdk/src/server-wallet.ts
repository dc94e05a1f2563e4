/**
 * The vendor side of §7 "connect": a server-side wallet for plain browsers. The browser's anonymous session
 * (cookie `np_wallet_session`) goes to the broker's connect page, comes back with a one-time code, and the vendor
 * exchanges it for the coin (its seed, and a claim made for this vendor). From then on the vendor pays itself
 * from that coin per purchase, through the same §4 path as a client-side wallet (`charge()` in vendor.ts).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { b64uDecode, b64uEncode, PaywordChain, paywordAt, type WalletGrantResponse } from '@netpay/protocol';
import { constantTimeEqualText, hashToken } from '@netpay/service-kit';
import { RemoteError } from './broker-client.ts';
import type { ProblemDecision } from './challenge.ts';
import { parseCookies, serializeCookie } from './cookies.ts';
import { escapeHtml } from './paywall-page.ts';
import type { ServerWalletRecord, SpendStore } from './spend-store.ts';

/** The anonymous session cookie a server-side wallet hangs on. */
export const WALLET_SESSION_COOKIE = 'np_wallet_session';
/** Where the adapters serve connect and its callback. */
export const CONNECT_PATH = '/netpay/connect';
export const CALLBACK_PATH = '/netpay/callback';

/** How long a connect may take from the paywall click to the callback. */
export const CONNECT_TTL_MS = 10 * 60_000;
const SESSION_MAX_AGE_SECONDS = 180 * 24 * 3600;
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;
const MAX_RETURN_TO = 2048;
/** Chains up to this length are kept whole in memory (32 bytes a payword); longer ones derive w_k on demand. */
const WHOLE_CHAIN_MAX_LENGTH = 100_000;
const CACHE_MAX = 10_000;

/**
 * `return_to` made safe: a local path (starts with one '/', not '//' or '/\', no control characters, no
 * whitespace) that resolves on our own origin; anything else becomes '/'. No open redirect.
 *
 * @example
 * safeReturnTo('/articles/1?x=2'); // '/articles/1?x=2'
 * safeReturnTo('//evil.example');  // '/'
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
  return `${url.pathname}${url.search}`;
}

/** What the connect cookie carries between `/netpay/connect` and `/netpay/callback`, sealed with an HMAC. */
export interface ConnectState {
  state: string;
  returnTo: string;
  /** hashToken(session id): the callback must come back to the same browser session. */
  sessionHash: string;
  expiresAtMs: number;
}

/** Seals a connect state into a cookie value: base64url(JSON) '.' base64url(HMAC-SHA256). */
export function sealConnectState(secret: Uint8Array, data: ConnectState): string {
  const payload = b64uEncode(new TextEncoder().encode(JSON.stringify(data)));
  const mac = createHmac('sha256', secret).update(payload).digest();
  return `${payload}.${b64uEncode(mac)}`;
}

/** Opens a sealed connect state; undefined when forged, malformed or expired. */
export function openConnectState(
  secret: Uint8Array,
  value: string | undefined,
  nowMs: number,
): ConnectState | undefined {
  if (!value || value.length > 4096) return undefined;
  const dot = value.indexOf('.');
  if (dot <= 0) return undefined;
  const payload = value.slice(0, dot);
  let mac: Uint8Array;
  try {
    mac = b64uDecode(value.slice(dot + 1), 32);
  } catch {
    return undefined;
  }
  const expected = createHmac('sha256', secret).update(payload).digest();
  if (!timingSafeEqual(expected, mac)) return undefined;
  let data: ConnectState;
  try {
    data = JSON.parse(new TextDecoder().decode(b64uDecode(payload))) as ConnectState;
  } catch {
    return undefined;
  }
  if (
    typeof data?.state !== 'string' ||
    typeof data.returnTo !== 'string' ||
    typeof data.sessionHash !== 'string' ||
    typeof data.expiresAtMs !== 'number' ||
    nowMs >= data.expiresAtMs
  ) {
    return undefined;
  }
  return { ...data, returnTo: safeReturnTo(data.returnTo) };
}

/** True when the callback's `state` is the one we issued (constant time). */
export function stateMatches(issued: string, returned: unknown): boolean {
  return typeof returned === 'string' && returned.length > 0 && constantTimeEqualText(issued, returned);
}

/** The wallet session id in a `Cookie` header, if it is well formed. */
export function walletSessionFrom(cookieHeader: string | undefined): string | undefined {
  const id = parseCookies(cookieHeader).get(WALLET_SESSION_COOKIE);
  return id && SESSION_ID.test(id) ? id : undefined;
}

/** A browser-facing answer (redirect or small HTML page) with cookies to set. */
export interface WebAnswer {
  status: number;
  headers: Record<string, string>;
  /** `Set-Cookie` values. */
  cookies: string[];
  html?: string;
}

/** A session's attached coin, with the paywords it can derive. */
export interface ServerWallet {
  chainId: string;
  length: number;
  /** w_k in base64url, derived from the seed. */
  payword(index: number): string;
}

/** A wallet's balance as pages show it. */
export interface WalletBalance {
  chainId: string;
  balanceMinor: number;
}

/** What the connect flow needs from the vendor core: the broker call, and the shared claim processing. */
export interface ServerWalletPort {
  exchangeGrant(code: string): Promise<WalletGrantResponse>;
  /** Processes the grant's claim exactly like the vendor's own claim; a problem when it fails. */
  adoptGrant(grant: WalletGrantResponse): Promise<ProblemDecision | undefined>;
  store: SpendStore;
  now(): number;
  logWarn(fields: object, msg: string): void;
}

export interface ServerWalletOptions {
  vendorId: string;
  /** The vendor's public base URL (callback URL, Secure cookies when https). */
  publicUrl: string;
  brokerUrl: string;
  /** HMAC key for the connect cookie. */
  secret: Uint8Array;
  port: ServerWalletPort;
}

/** A bounded map: the oldest entry goes first when full. */
class BoundedCache<V> {
  readonly #map = new Map<string, V>();
  constructor(readonly max: number) {}
  get(key: string): V | undefined {
    return this.#map.get(key);
  }
  has(key: string): boolean {
    return this.#map.has(key);
  }
  set(key: string, value: V): void {
    this.#map.delete(key);
    if (this.#map.size >= this.max) {
      const oldest = this.#map.keys().next().value;
      if (oldest !== undefined) this.#map.delete(oldest);
    }
    this.#map.set(key, value);
  }
}

function walletOf(record: ServerWalletRecord, chains: BoundedCache<PaywordChain>): ServerWallet {
  return {
    chainId: record.chainId,
    length: record.length,
    payword: (index: number) => {
      if (record.length > WHOLE_CHAIN_MAX_LENGTH) {
        const id = b64uDecode(record.chainId, 16);
        return b64uEncode(paywordAt(id, b64uDecode(record.seed, 32), record.length, index));
      }
      let chain = chains.get(record.chainId);
      if (!chain) {
        chain = PaywordChain.fromB64(record.chainId, record.seed, record.length);
        chains.set(record.chainId, chain);
      }
      return chain.b64(index);
    },
  };
}

/**
 * Connect and callback for one vendor, and the session → wallet lookup (memory cache over one indexed read).
 */
export class ServerWallets {
  readonly #o: ServerWalletOptions;
  readonly #secure: boolean;
  readonly #connectCookie: string;
  /** sessionHash → wallet, or null for a session known to have none. */
  readonly #wallets = new BoundedCache<ServerWallet | null>(CACHE_MAX);
  readonly #chains = new BoundedCache<PaywordChain>(1000);

  constructor(options: ServerWalletOptions) {
    this.#o = {
      ...options,
      publicUrl: options.publicUrl.replace(/\/+$/, ''),
      brokerUrl: options.brokerUrl.replace(/\/+$/, ''),
    };
    this.#secure = this.#o.publicUrl.startsWith('https:');
    this.#connectCookie = `np_connect_${options.vendorId.replace(/-/g, '_')}`;
  }

  /** The local URL the paywall's "Pay with NetPay" button points to. */
  connectPath(returnTo: string): string {
    return `${CONNECT_PATH}?return_to=${encodeURIComponent(safeReturnTo(returnTo))}`;
  }

  /** The wallet of the session in a `Cookie` header, if it attached one. */
  lookup(cookieHeader: string | undefined): Promise<ServerWallet | undefined> {
    return this.lookupSession(walletSessionFrom(cookieHeader));
  }

  /** The wallet of a session id (the `np_wallet_session` cookie's value), if it attached one. */
  async lookupSession(session: string | undefined): Promise<ServerWallet | undefined> {
    if (!session || !SESSION_ID.test(session)) return undefined;
    const hash = hashToken(session);
    const cached = this.#wallets.get(hash);
    if (cached !== undefined) return cached ?? undefined;
    const record = await this.#o.port.store.getServerWallet(hash);
    const wallet = record ? walletOf(record, this.#chains) : null;
    this.#wallets.set(hash, wallet);
    return wallet ?? undefined;
  }

  /**
   * `GET /netpay/connect?return_to=/path`: a state nonce sealed in a cookie bound to the browser's session
   * (made here if it has none), then 303 to the broker's connect page.
   */
  connect(input: { returnTo?: unknown; cookie?: string | undefined }): WebAnswer {
    const cookies: string[] = [];
    let session = walletSessionFrom(input.cookie);
    if (!session) {
      session = b64uEncode(randomBytes(32));
      cookies.push(
        serializeCookie(WALLET_SESSION_COOKIE, session, {
          path: '/',
          maxAgeSeconds: SESSION_MAX_AGE_SECONDS,
          secure: this.#secure,
        }),
      );
    }
    const state = b64uEncode(randomBytes(32));
    const sealed = sealConnectState(this.#o.secret, {
      state,
      returnTo: safeReturnTo(input.returnTo),
      sessionHash: hashToken(session),
      expiresAtMs: this.#o.port.now() + CONNECT_TTL_MS,
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
   * constant-time), exchanges the code, adopts the claim, stores the wallet, then 303 to the local `return_to`.
   * Anything wrong stores nothing.
   */
  async callback(input: { query: Record<string, unknown>; cookie?: string | undefined }): Promise<WebAnswer> {
    const clear = serializeCookie(this.#connectCookie, '', { path: '/netpay', maxAgeSeconds: 0, secure: this.#secure });
    const sealed = openConnectState(
      this.#o.secret,
      parseCookies(input.cookie).get(this.#connectCookie),
      this.#o.port.now(),
    );
    const session = walletSessionFrom(input.cookie);
    if (
      !sealed ||
      !session ||
      !constantTimeEqualText(sealed.sessionHash, hashToken(session)) ||
      !stateMatches(sealed.state, input.query.state)
    ) {
      return page(
        400,
        'This NetPay connection was not started here',
        'The link back from the NetPay broker does not match a connection this browser started on this site, or it ' +
          'took too long. Nothing was attached. Go back to the article and press "Pay with NetPay" again.',
        [clear],
      );
    }
    if (input.query.error !== undefined) return redirect(sealed.returnTo, [clear]);
    const code = input.query.code;
    if (typeof code !== 'string' || code.length === 0 || code.length > 256) {
      return page(400, 'No coin was attached', 'The NetPay broker sent no code back.', [clear]);
    }
    let grant: WalletGrantResponse;
    try {
      grant = await this.#o.port.exchangeGrant(code);
    } catch (error) {
      this.#o.port.logWarn(
        { err: error instanceof Error ? error.message : String(error) },
        'netpay grant exchange failed',
      );
      if (error instanceof RemoteError && error.kind === 'refused') {
        return page(
          400,
          'No coin was attached',
          'The NetPay broker did not accept the code (it is valid once, for a minute). Please connect again.',
          [clear],
        );
      }
      return page(503, 'The NetPay broker cannot be reached', 'Nothing was attached. Please try again in a moment.', [
        clear,
      ]);
    }
    const why = checkGrant(grant);
    if (why) {
      this.#o.port.logWarn({ chainId: grant.chainId, why }, 'netpay grant rejected');
      return page(502, 'No coin was attached', 'The NetPay broker sent a coin that does not check out.', [clear]);
    }
    const problem = await this.#o.port.adoptGrant(grant);
    if (problem) {
      const detail = typeof problem.body.detail === 'string' ? problem.body.detail : String(problem.body.code);
      return page(problem.status, 'The coin could not be attached yet', `${detail}. Please try again.`, [clear]);
    }
    const record: ServerWalletRecord = {
      sessionHash: hashToken(session),
      chainId: grant.chainId,
      seed: grant.seed,
      length: grant.touchstone.length,
      updatedAtMs: this.#o.port.now(),
    };
    await this.#o.port.store.putServerWallet(record);
    this.#wallets.set(record.sessionHash, walletOf(record, this.#chains));
    return redirect(sealed.returnTo, [clear]);
  }
}

/** Why a grant cannot be used (its seed must be the chain of its touchstone); undefined when it is fine. */
export function checkGrant(grant: WalletGrantResponse): string | undefined {
  const t = grant.touchstone;
  if (t.chainId !== grant.chainId || grant.holder.chainId !== grant.chainId) return 'wrong chain';
  const id = b64uDecode(grant.chainId, 16);
  const anchor = paywordAt(id, b64uDecode(grant.seed, 32), t.length, 0);
  if (!constantTimeEqualText(b64uEncode(anchor), t.anchor)) return 'the seed does not hash to the anchor';
  return undefined;
}

/**
 * The HMAC key of the connect cookie, derived from the vendor's signing key so no extra secret is configured.
 *
 * @example
 * const secret = connectSecret(signingKey.privateSeed);
 */
export function connectSecret(privateSeed: Uint8Array): Uint8Array {
  return createHmac('sha256', privateSeed).update('netpay/connect-cookie/v1').digest();
}

function redirect(location: string, cookies: string[]): WebAnswer {
  return { status: 303, headers: { location, 'cache-control': 'no-store' }, cookies };
}

function page(status: number, title: string, detail: string, cookies: string[]): WebAnswer {
  const html = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}</style>
</head>
<body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p><p><a href="/">Back to the front page</a></p></main></body>
</html>
`;
  return {
    status,
    headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
    cookies,
    html,
  };
}
