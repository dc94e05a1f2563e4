/**
 * §4 the payment's `Authorization: NetPay …` header, read on the charge path. Wallets send it in one form,
 * `NetPay chain="…", index="…", payword="…"` (formatAuthorization); that form is read here by position, without
 * the general RFC 9110 parser, and anything else (other spacing, case, order, quoting) goes to the strict parser,
 * which reads it or refuses it with its reason. Whatever the fast reading accepts, the strict parser reads the same
 * (a property test holds it to that).
 */
import { type AuthorizationParams, b64uDecode, MAX_CHAIN_LENGTH } from '@netpay/protocol';

/** A payment header's parameters, with the payword's bytes (decoded once, here). */
export interface PaymentHeader extends AuthorizationParams {
  paywordBytes: Uint8Array;
}

const PREFIX = 'NetPay chain="';
const INDEX = '", index="';
const PAYWORD = '", payword="';
/** base64url characters of a 16-byte chain id and a 32-byte payword, without padding. */
const CHAIN_CHARS = 22;
const PAYWORD_CHARS = 43;
/** Longest canonical index: MAX_CHAIN_LENGTH in decimal. */
const MAX_INDEX_DIGITS = String(MAX_CHAIN_LENGTH).length;
const FIXED = PREFIX.length + CHAIN_CHARS + INDEX.length + PAYWORD.length + PAYWORD_CHARS + 1;

const B64U = new Int8Array(128).fill(-1);
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'].entries()) {
  B64U[c.charCodeAt(0)] = i;
}

/**
 * True when `count` characters from `at` are base64url whose last character leaves `padBits` zero bits (the one
 * canonical text of the bytes, as b64uDecode demands).
 */
function canonicalB64u(text: string, at: number, count: number, padBits: number): boolean {
  let v = 0;
  for (let i = at; i < at + count; i++) {
    const c = text.charCodeAt(i);
    v = c < 128 ? (B64U[c] as number) : -1;
    if (v < 0) return false;
  }
  return (v & ((1 << padBits) - 1)) === 0;
}

/**
 * The header as wallets format it, read by position; undefined for any other text (the strict parser decides).
 *
 * @example
 * readCanonicalAuthorization('NetPay chain="AAAAAAAAAAAAAAAAAAAAAA", index="3", payword="…"'); // { chain, index: 3, … }
 */
export function readCanonicalAuthorization(value: string): PaymentHeader | undefined {
  const digits = value.length - FIXED;
  if (digits < 1 || digits > MAX_INDEX_DIGITS || !value.startsWith(PREFIX)) return undefined;
  let at = PREFIX.length;
  if (!canonicalB64u(value, at, CHAIN_CHARS, 4)) return undefined;
  at += CHAIN_CHARS;
  if (!value.startsWith(INDEX, at)) return undefined;
  at += INDEX.length;
  // A canonical decimal: no sign, no leading zero (but "0" itself).
  if (digits > 1 && value.charCodeAt(at) === 0x30) return undefined;
  let index = 0;
  for (let i = at; i < at + digits; i++) {
    const d = value.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return undefined;
    index = index * 10 + d;
  }
  if (index > MAX_CHAIN_LENGTH) return undefined;
  at += digits;
  if (!value.startsWith(PAYWORD, at)) return undefined;
  at += PAYWORD.length;
  if (!canonicalB64u(value, at, PAYWORD_CHARS, 2) || value.charCodeAt(at + PAYWORD_CHARS) !== 0x22) return undefined;
  const payword = value.slice(at, at + PAYWORD_CHARS);
  return {
    chain: value.slice(PREFIX.length, PREFIX.length + CHAIN_CHARS),
    index,
    payword,
    paywordBytes: b64uDecode(payword, 32),
  };
}
