/**
 * The session wallet of §7 v1.1: what a plain browser's anonymous session (cookie `np_wallet_session`) holds at
 * this vendor once it connected. It is an allowance, never a seed: the payword w_a of the connection's chain, from
 * which the vendor derives w_k for every k ≤ a by hashing down, so the most this vendor could ever take is what is
 * left of the allowance. The refresh token that asks the broker for the next allowance is sealed at rest. The
 * figures pages show (allowance left here, NetPay balance and when the broker said so) come from here.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { b64uDecode, b64uEncode, paywordAt } from '@netpay/protocol';
import { hashToken, SecretBox } from '@netpay/service-kit';
import { cookieValues } from './cookies.ts';
import type { ServerWalletRecord, SpendStore, WalletPurchase } from './spend-store.ts';

/** The anonymous session cookie a server-side wallet hangs on, on a plain-http site (development). */
export const WALLET_SESSION_COOKIE = 'np_wallet_session';
/**
 * The session cookie on an https site. Browsers take a `__Host-` cookie only with Secure, Path=/ and no Domain,
 * from the site itself over https: a sibling subdomain or a plain-http answer cannot plant one.
 */
export const SECURE_WALLET_SESSION_COOKIE = '__Host-np_wallet_session';
/** How long the session cookie lives. */
export const SESSION_MAX_AGE_SECONDS = 180 * 24 * 3600;
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;
// Ids for the __Host- cookie are longer, so one copied into the plantable plain cookie is never taken.
const SECURE_SESSION_ID = /^[A-Za-z0-9_-]{64}$/;
const CACHE_MAX = 10_000;

/** The session cookie's name on a site (https or not). */
export function walletSessionCookieName(secure: boolean): string {
  return secure ? SECURE_WALLET_SESSION_COOKIE : WALLET_SESSION_COOKIE;
}

/** A new random session id for the cookie of a site (https or not). */
export function newWalletSessionId(secure: boolean): string {
  return b64uEncode(randomBytes(secure ? 48 : 32));
}

/** The session cookie of a request: its id if well formed, and whether the browser sent the name twice. */
export interface WalletSessionCookie {
  id: string | undefined;
  /** Two cookies of the name (one planted with another Path or Domain): refused rather than guessed. */
  duplicated: boolean;
}

/**
 * The session cookie in a `Cookie` header. An https site (`secure: true`) reads only the `__Host-` cookie, a
 * plain-http one only the plain cookie; a caller that does not know the site's scheme takes the `__Host-` cookie
 * when there is one and else the plain one with a plain-length id.
 */
export function readWalletSession(cookieHeader: string | undefined, secure?: boolean): WalletSessionCookie {
  const hosts = secure === false ? [] : cookieValues(cookieHeader, SECURE_WALLET_SESSION_COOKIE);
  if (hosts.length > 0 || secure === true) {
    const id = hosts.length === 1 && SECURE_SESSION_ID.test(hosts[0] ?? '') ? hosts[0] : undefined;
    return { id, duplicated: hosts.length > 1 };
  }
  const plains = cookieValues(cookieHeader, WALLET_SESSION_COOKIE);
  const id = plains.length === 1 && SESSION_ID.test(plains[0] ?? '') ? plains[0] : undefined;
  return { id, duplicated: plains.length > 1 };
}

/** The wallet session id in a `Cookie` header, if it is well formed and not duplicated (see readWalletSession). */
export function walletSessionFrom(cookieHeader: string | undefined, secure?: boolean): string | undefined {
  return readWalletSession(cookieHeader, secure).id;
}

/** The session's key in the store: a hash, so the store never holds a cookie that would open the wallet. */
export function sessionHashOf(sessionId: string): string {
  return hashToken(sessionId);
}

/**
 * The HMAC key of the vendor's own browser values (connect cookie, pay form token, intents), derived from its
 * signing key so no extra secret is configured.
 *
 * @example
 * const secret = connectSecret(signingKey.privateSeed);
 */
export function connectSecret(privateSeed: Uint8Array): Uint8Array {
  return createHmac('sha256', privateSeed).update('netpay/connect-cookie/v1').digest();
}

/** The box that seals refresh tokens at rest, under a key derived from the vendor's signing key. */
export function walletTokenBox(privateSeed: Uint8Array): SecretBox {
  return SecretBox.fromKey(createHmac('sha256', privateSeed).update('netpay/wallet-tokens/v1').digest());
}

/**
 * w_k for k ≤ a, hashing down from the allowance's w_a (w_a is to the prefix w_0 … w_a what a seed is to a chain);
 * undefined above the allowance, where this vendor has no payword and must ask the broker.
 *
 * @example
 * paywordBelow(chainId, { index: 60, payword: w60 }, 57); // w57
 */
export function paywordBelow(
  chainId: string,
  allowance: { index: number; payword: string },
  index: number,
): string | undefined {
  if (!Number.isSafeInteger(index) || index < 0 || index > allowance.index) return undefined;
  if (index === allowance.index) return allowance.payword;
  const words = paywordAt(b64uDecode(chainId, 16), b64uDecode(allowance.payword, 32), allowance.index, index);
  return b64uEncode(words);
}

/** Where a session's purchase of a resource is on record: the chain and index that paid it. */
export interface BoughtAt {
  chainId: string;
  index: number;
}

/** What this vendor knows of a browser session: its wallet, if connected, and what it bought here. */
export interface SessionState {
  sessionHash: string;
  record: ServerWalletRecord | null;
  /** resource → the payment that bought it (kept after the connection ends: the reader paid for it). */
  bought: Map<string, BoughtAt>;
}

/** A session with a wallet. */
export interface SessionWallet extends SessionState {
  record: ServerWalletRecord;
}

/** True when the session is connected (holds an allowance). */
export function hasWallet(session: SessionState): session is SessionWallet {
  return session.record !== null;
}

/** A session's wallet as a page shows it: every figure labelled with what it is. */
export interface WalletView {
  chainId: string;
  /** What this site may still take before it asks the broker: (allowance − spent here) × unit; 0 once expired. */
  allowanceLeftMinor: number;
  /** The customer's NetPay balance in the broker's last answer. */
  balanceMinor: number;
  /** When the broker gave that balance. */
  balanceAtMs: number;
  /** True when the broker gave it while serving this very request; otherwise pages say "as of" its time. */
  balanceFresh: boolean;
  /** Prices up to this are paid without asking. */
  autoPayMaxMinor: number;
  /** Resources this session bought here (a front page marks them). */
  bought: ReadonlySet<string>;
  /** The token of the pay form ("Read for 12c") for this session. */
  payFormToken: string;
}

/** The allowance left at this vendor in minor units, from the spent point here; 0 when it expired. */
export function allowanceLeftMinor(
  allowance: { index: number; expiresAtMs: number },
  chain: { lastIndex: number; unit: number },
  nowMs: number,
): number {
  if (nowMs >= allowance.expiresAtMs) return 0;
  return Math.max(0, allowance.index - chain.lastIndex) * chain.unit;
}

/** A bounded map: the oldest entry goes first when full. */
class BoundedCache<V> {
  readonly #map = new Map<string, V>();
  constructor(readonly max: number) {}
  get(key: string): V | undefined {
    return this.#map.get(key);
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

/**
 * The session → wallet lookup (a memory cache over two indexed reads) and its writes. Tokens are sealed here and
 * opened only to be sent to the broker.
 */
export class ServerWallets {
  readonly #store: SpendStore;
  readonly #box: SecretBox;
  readonly #cache = new BoundedCache<SessionState>(CACHE_MAX);

  constructor(store: SpendStore, box: SecretBox) {
    this.#store = store;
    this.#box = box;
  }

  /** What is known of a session (by the hash of its id): its wallet, if any, and its purchases. */
  async session(sessionHash: string): Promise<SessionState> {
    const cached = this.#cache.get(sessionHash);
    if (cached) return cached;
    const [record, purchases] = await Promise.all([
      this.#store.getServerWallet(sessionHash),
      this.#store.walletPurchases(sessionHash),
    ]);
    const state: SessionState = {
      sessionHash,
      record: record ?? null,
      bought: new Map(purchases.map((p) => [p.resource, { chainId: p.chainId, index: p.index }])),
    };
    this.#cache.set(sessionHash, state);
    return state;
  }

  /** Stores a session's wallet (a new connection, or a new allowance) and returns it. */
  async put(record: ServerWalletRecord): Promise<SessionWallet> {
    await this.#store.putServerWallet(record);
    const state = await this.session(record.sessionHash);
    state.record = record;
    return state as SessionWallet;
  }

  /** Forgets a session's wallet: its connection ended, so the paywall asks to connect again. */
  async forget(sessionHash: string): Promise<void> {
    await this.#store.deleteServerWallet(sessionHash);
    const state = await this.session(sessionHash);
    state.record = null;
  }

  /** Learns of a sale whose note its payment committed (a server-side wallet's payment carries it). */
  noted(session: SessionState, resource: string, at: BoughtAt): void {
    session.bought.set(resource, { chainId: at.chainId, index: at.index });
  }

  /** Records a sale from the wallet (entitlement and spend note) apart from its payment. */
  async addPurchase(session: SessionState, purchase: WalletPurchase): Promise<void> {
    await this.#store.recordWalletPurchase(purchase);
    session.bought.set(purchase.resource, { chainId: purchase.chainId, index: purchase.index });
  }

  /** Seals a refresh token for one session's row. */
  sealToken(sessionHash: string, refreshToken: string): string {
    return this.#box.seal(refreshToken, `netpay_session_wallets.refresh_token:${sessionHash}`);
  }

  /** Opens the refresh token of a wallet, to send it to the broker (and nowhere else). */
  openToken(wallet: SessionWallet): string {
    return this.#box.open(
      wallet.record.refreshTokenSealed,
      `netpay_session_wallets.refresh_token:${wallet.sessionHash}`,
    );
  }
}
