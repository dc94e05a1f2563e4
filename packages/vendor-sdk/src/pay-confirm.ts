/**
 * §7 v1.1 "Read for 12c": a price above what the reader lets sites take without asking, or a reader who arrived
 * from another site, gets a form instead of a charge. The form is a same-origin POST carrying a token bound to the
 * wallet session; its answer is a short-lived *intent* (a sealed cookie naming the page and the price the reader
 * agreed to) and a redirect to the page, whose GET then pays once. Connect leaves the same intent for the page the
 * reader was reading when it started on this site, so coming back from the broker pays for it without asking again.
 */
import { createHmac } from 'node:crypto';
import { b64uEncode } from '@netpay/protocol';
import { constantTimeEqualText } from '@netpay/service-kit';
import { openValue, sealValue } from './sealed-value.ts';

/** Where the pay form posts. */
export const PAY_PATH = '/netpay/pay';
/** How long an intent lets its page be paid for. */
export const INTENT_TTL_MS = 2 * 60_000;
const MAX_FORM_BYTES = 4096;

/** What the paywall's form posts: the token, the page and the price shown on the button. */
export interface PayForm {
  action: string;
  csrf: string;
  returnTo: string;
  priceMinor: number;
}

/** A reader's go-ahead for one page: paid on its next GET (from any site) up to `upToMinor`. */
export interface PayIntent {
  sessionHash: string;
  path: string;
  /** The price the reader agreed to on the button; 0 when only the navigation was vouched for (connect). */
  upToMinor: number;
  expiresAtMs: number;
}

/**
 * The pay form's token for a wallet session: an HMAC of its hash, so only a page this site rendered for this
 * session can carry it.
 */
export function payFormToken(secret: Uint8Array, sessionHash: string): string {
  return b64uEncode(createHmac('sha256', secret).update(`netpay/pay-form\n${sessionHash}`).digest());
}

/** True when `token` is the pay form token of the session (constant time). */
export function payFormTokenMatches(secret: Uint8Array, sessionHash: string, token: unknown): boolean {
  return (
    typeof token === 'string' && token.length > 0 && constantTimeEqualText(payFormToken(secret, sessionHash), token)
  );
}

/** The intent cookie's value. */
export function sealIntent(secret: Uint8Array, intent: PayIntent): string {
  return sealValue(secret, 'netpay/pay-intent', intent);
}

/** The intent in a cookie value, when it is genuine, unexpired and this session's; undefined otherwise. */
export function openIntent(
  secret: Uint8Array,
  value: string | undefined,
  sessionHash: string,
  nowMs: number,
): PayIntent | undefined {
  const data = openValue(secret, 'netpay/pay-intent', value) as Partial<PayIntent> | undefined;
  if (
    !data ||
    typeof data.sessionHash !== 'string' ||
    typeof data.path !== 'string' ||
    typeof data.upToMinor !== 'number' ||
    !Number.isSafeInteger(data.upToMinor) ||
    typeof data.expiresAtMs !== 'number' ||
    nowMs >= data.expiresAtMs ||
    !constantTimeEqualText(data.sessionHash, sessionHash)
  ) {
    return undefined;
  }
  return data as PayIntent;
}

/** The fields of the pay form as posted (`application/x-www-form-urlencoded` text, or an already parsed object). */
export interface PostedPayForm {
  csrf: string;
  returnTo: string;
  priceMinor: number;
}

/**
 * Reads the posted pay form; undefined when a field is missing or malformed.
 *
 * @example
 * readPayForm('csrf=t&return_to=%2Farticles%2F1&price=12'); // { csrf: 't', returnTo: '/articles/1', priceMinor: 12 }
 */
export function readPayForm(body: unknown): PostedPayForm | undefined {
  let fields: Record<string, unknown>;
  if (typeof body === 'string') {
    if (body.length > MAX_FORM_BYTES) return undefined;
    fields = Object.fromEntries(new URLSearchParams(body));
  } else if (body && typeof body === 'object') {
    fields = body as Record<string, unknown>;
  } else {
    return undefined;
  }
  const { csrf, return_to: returnTo, price } = fields;
  if (typeof csrf !== 'string' || typeof returnTo !== 'string' || typeof price !== 'string') return undefined;
  if (!/^[0-9]{1,9}$/.test(price)) return undefined;
  return { csrf, returnTo, priceMinor: Number(price) };
}
