import { constantTimeEqualText, newSecret } from '@netpay/service-kit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { customerBySession } from '../customers.ts';
import type { BrokerDeps } from '../deps.ts';
import { mac } from './web-keys.ts';

/**
 * The customer's session cookie (HttpOnly, SameSite=Lax, Secure on https). Its value is a `sessions` token of kind
 * `web`, which the JSON API refuses.
 */
export const WEB_SESSION_COOKIE = 'np_session';
/** The random half of the double-submit CSRF token of logged-out forms (login, register, operator login). */
export const ANON_CSRF_COOKIE = 'np_csrf';
/** The operator view's cookie: an expiry and an HMAC over it and the operator token's hash. */
export const OPERATOR_COOKIE = 'np_operator';

const MAX_COOKIE_LENGTH = 512;

export interface WebCustomer {
  id: string;
  email: string;
  /** The session token from the cookie (never shown in a page). */
  token: string;
}

type Cookies = Record<string, string | undefined>;

function cookiesOf(request: FastifyRequest): Cookies {
  return (request as FastifyRequest & { cookies?: Cookies }).cookies ?? {};
}

/** What every page handler shares: the ports, the HMAC key, and the cookie and CSRF rules. */
export class WebContext {
  readonly secure: boolean;
  constructor(
    readonly deps: BrokerDeps,
    private readonly key: Buffer,
  ) {
    this.secure = deps.config.publicUrl.startsWith('https:');
  }

  cookie(request: FastifyRequest, name: string): string | undefined {
    const value = cookiesOf(request)[name];
    return typeof value === 'string' && value.length > 0 && value.length <= MAX_COOKIE_LENGTH ? value : undefined;
  }

  setCookie(reply: FastifyReply, name: string, value: string, maxAgeSeconds: number): void {
    reply.setCookie(name, value, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: this.secure,
      maxAge: maxAgeSeconds,
    });
  }

  clearCookie(reply: FastifyReply, name: string): void {
    reply.clearCookie(name, { path: '/', httpOnly: true, sameSite: 'lax', secure: this.secure });
  }

  /** The logged-in customer, if the session cookie names a live session. */
  async customer(request: FastifyRequest): Promise<WebCustomer | undefined> {
    const token = this.cookie(request, WEB_SESSION_COOKIE);
    if (!token) return undefined;
    const found = await customerBySession(this.deps.db, token, this.deps.clock.now(), 'web');
    return found ? { ...found, token } : undefined;
  }

  /** Synchronizer token of a session: an HMAC of the session token, so it dies with the session. */
  sessionCsrf(customer: WebCustomer): string {
    return mac(this.key, 'csrf-session', customer.token);
  }

  checkSessionCsrf(customer: WebCustomer, submitted: unknown): boolean {
    return typeof submitted === 'string' && constantTimeEqualText(submitted, this.sessionCsrf(customer));
  }

  /**
   * The CSRF token for a logged-out form: a signed double submit. The cookie holds a random nonce; the form
   * holds HMAC(nonce), which another site can neither read nor forge (even if it could plant a cookie).
   */
  anonCsrf(request: FastifyRequest, reply: FastifyReply): string {
    let nonce = this.cookie(request, ANON_CSRF_COOKIE);
    if (!nonce || !/^[A-Za-z0-9_-]{43}$/.test(nonce)) {
      nonce = newSecret();
      this.setCookie(reply, ANON_CSRF_COOKIE, nonce, 24 * 3600);
      // A form re-rendered in the same response must use the new nonce, not the request's.
      cookiesOf(request)[ANON_CSRF_COOKIE] = nonce;
    }
    return mac(this.key, 'csrf-anon', nonce);
  }

  checkAnonCsrf(request: FastifyRequest, submitted: unknown): boolean {
    const nonce = this.cookie(request, ANON_CSRF_COOKIE);
    if (!nonce || typeof submitted !== 'string') return false;
    return constantTimeEqualText(submitted, mac(this.key, 'csrf-anon', nonce));
  }

  /** The operator cookie value: `<expiry ms>.<HMAC(expiry, hash of the operator token)>`. */
  operatorCookieValue(tokenHash: string, expiresAtMs: number): string {
    return `${expiresAtMs}.${mac(this.key, 'operator', String(expiresAtMs), tokenHash)}`;
  }

  checkOperatorCookie(request: FastifyRequest, tokenHash: string): boolean {
    const value = this.cookie(request, OPERATOR_COOKIE);
    const match = value ? /^([0-9]{1,16})\.([A-Za-z0-9_-]{43})$/.exec(value) : null;
    if (!match) return false;
    const expiresAtMs = Number(match[1]);
    if (this.deps.clock.now().getTime() >= expiresAtMs) return false;
    return constantTimeEqualText(value as string, this.operatorCookieValue(tokenHash, expiresAtMs));
  }

  operatorCsrf(request: FastifyRequest): string {
    return mac(this.key, 'csrf-operator', this.cookie(request, OPERATOR_COOKIE) ?? '');
  }

  checkOperatorCsrf(request: FastifyRequest, submitted: unknown): boolean {
    return typeof submitted === 'string' && constantTimeEqualText(submitted, this.operatorCsrf(request));
  }
}

/** One string field of a urlencoded form (the first if repeated), bounded; '' when absent. */
export function formField(body: unknown, name: string, maxLength = 500): string {
  if (typeof body !== 'object' || body === null) return '';
  const value = (body as Record<string, unknown>)[name];
  const first = Array.isArray(value) ? value[0] : value;
  if (typeof first !== 'string') return '';
  return first.length > maxLength ? first.slice(0, maxLength) : first;
}
