import { b64uDecode } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';
import { CHAIN_ID_LENGTH, MAX_CHAIN_LENGTH, PAYWORD_LENGTH } from './payword-chain.ts';

/** The HTTP authentication scheme of NetPay. */
export const AUTH_SCHEME = 'NetPay';
/** Name of the receipt header a vendor sends with paid content. */
export const RECEIPT_HEADER = 'NetPay-Receipt';
/** Longest NetPay header value any party parses; longer values are rejected before parsing. */
export const MAX_HEADER_LENGTH = 1024;

/** The parameters of `Authorization: NetPay …` (§4). */
export interface AuthorizationParams {
  chain: string;
  index: number;
  payword: string;
}

/** The parameters of `WWW-Authenticate: NetPay …` (§4). */
export interface WwwAuthenticateParams {
  realm: string;
  price: number;
  currency: string;
  broker: string;
}

/** The parameters of `NetPay-Receipt` (§4). */
export interface ReceiptParams {
  chain: string;
  index: number;
  balance: number;
}

const TCHAR = /^[!#$%&'*+.^_`|~0-9A-Za-z-]$/;
const CANONICAL_UINT = /^(0|[1-9][0-9]*)$/;
const VENDOR_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const CURRENCY = /^[A-Z]{3}$/;
const URL = /^https?:\/\/[\x21\x23-\x5b\x5d-\x7e]+$/;

function bad(detail: string): never {
  throw new ProtocolError('bad_request', detail);
}

function isTchar(ch: string): boolean {
  return TCHAR.test(ch);
}

function isOws(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t';
}

/**
 * Parses `name="value", name="value"` (RFC 9110 auth-params, quoted-string values only, names case-insensitive,
 * no quoted-pairs since no NetPay value needs one) starting at `pos`. Rejects duplicates and empty elements.
 */
function parseParams(value: string, start: number): Map<string, string> {
  const params = new Map<string, string>();
  let pos = start;
  const skipOws = () => {
    while (isOws(value[pos])) pos++;
  };
  skipOws();
  if (pos >= value.length) bad('no parameters');
  for (;;) {
    const nameStart = pos;
    while (pos < value.length && isTchar(value[pos] as string)) pos++;
    if (pos === nameStart) bad('expected a parameter name');
    const name = value.slice(nameStart, pos).toLowerCase();
    skipOws();
    if (value[pos] !== '=') bad(`expected '=' after ${name}`);
    pos++;
    skipOws();
    if (value[pos] !== '"') bad(`${name} must be a quoted string`);
    pos++;
    const valueStart = pos;
    for (;;) {
      const c = value.charCodeAt(pos);
      if (Number.isNaN(c)) bad(`unterminated quoted string in ${name}`);
      if (c === 0x22) break;
      // Printable ASCII and space only: no quoted-pair, no controls, no obs-text.
      if (c === 0x5c || c < 0x20 || c > 0x7e) bad(`invalid character in ${name}`);
      pos++;
    }
    const paramValue = value.slice(valueStart, pos);
    pos++;
    if (params.has(name)) bad(`duplicate parameter ${name}`);
    params.set(name, paramValue);
    skipOws();
    if (pos >= value.length) return params;
    if (value[pos] !== ',') bad('expected a comma between parameters');
    pos++;
    skipOws();
  }
}

/** Reads the scheme token and returns where its parameters begin. */
function parseScheme(value: string): number {
  let pos = 0;
  while (isOws(value[pos])) pos++;
  const start = pos;
  while (pos < value.length && isTchar(value[pos] as string)) pos++;
  if (value.slice(start, pos).toLowerCase() !== AUTH_SCHEME.toLowerCase()) bad('not the NetPay scheme');
  if (value[pos] !== ' ') bad('expected a space after the scheme');
  return pos;
}

function checkLength(value: unknown): string {
  if (typeof value !== 'string') bad('missing header');
  if (value.length > MAX_HEADER_LENGTH) bad('header too long');
  return value;
}

function only(params: Map<string, string>, allowed: readonly string[], strict: boolean): void {
  for (const name of allowed) if (!params.has(name)) bad(`missing parameter ${name}`);
  if (strict) for (const name of params.keys()) if (!allowed.includes(name)) bad(`unknown parameter ${name}`);
}

function canonicalInt(text: string, name: string, max: number): number {
  if (text.length > 16 || !CANONICAL_UINT.test(text)) bad(`${name} must be a canonical decimal integer`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n > max) bad(`${name} out of range`);
  return n;
}

function checkB64(text: unknown, bytes: number, name: string): string {
  try {
    b64uDecode(text as string, bytes);
  } catch {
    bad(`${name} must be ${bytes} bytes of base64url`);
  }
  return text as string;
}

function checkIndex(index: unknown, max: number, name: string): number {
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0 || index > max)
    bad(`${name} out of range`);
  return index;
}

/**
 * Whether a header value uses the NetPay scheme, so a vendor can leave other schemes (Bearer, Basic) alone.
 *
 * @example
 * if (isNetPayAuthorization(req.headers.authorization)) pay(parseAuthorization(req.headers.authorization));
 */
export function isNetPayAuthorization(value: string | undefined | null): boolean {
  if (typeof value !== 'string' || value.length > MAX_HEADER_LENGTH) return false;
  const match = /^[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:[ \t]|$)/.exec(value);
  return match !== null && (match[1] as string).toLowerCase() === AUTH_SCHEME.toLowerCase();
}

/**
 * Strictly parses `Authorization: NetPay chain="…", index="…", payword="…"`.
 *
 * @throws ProtocolError('bad_request') for anything malformed, and nothing else
 * @example
 * const { chain, index, payword } = parseAuthorization(req.headers.authorization);
 */
export function parseAuthorization(value: string | undefined): AuthorizationParams {
  const text = checkLength(value);
  const params = parseParams(text, parseScheme(text));
  only(params, ['chain', 'index', 'payword'], true);
  return {
    chain: checkB64(params.get('chain') as string, CHAIN_ID_LENGTH, 'chain'),
    index: canonicalInt(params.get('index') as string, 'index', MAX_CHAIN_LENGTH),
    payword: checkB64(params.get('payword') as string, PAYWORD_LENGTH, 'payword'),
  };
}

/**
 * Formats an Authorization header value.
 *
 * @throws ProtocolError('bad_request') on invalid values
 * @example
 * formatAuthorization({ chain: c.chainIdB64, index: 3, payword: c.b64(3) });
 * // 'NetPay chain="…", index="3", payword="…"'
 */
export function formatAuthorization(params: AuthorizationParams): string {
  checkB64(params.chain, CHAIN_ID_LENGTH, 'chain');
  checkB64(params.payword, PAYWORD_LENGTH, 'payword');
  const index = checkIndex(params.index, MAX_CHAIN_LENGTH, 'index');
  return `${AUTH_SCHEME} chain="${params.chain}", index="${index}", payword="${params.payword}"`;
}

function checkChallenge(params: WwwAuthenticateParams): void {
  if (!VENDOR_ID.test(params.realm)) bad('realm must be a vendorId');
  checkIndex(params.price, Number.MAX_SAFE_INTEGER, 'price');
  if (!CURRENCY.test(params.currency)) bad('currency must be three upper-case letters');
  if (params.broker.length > 512 || !URL.test(params.broker)) bad('broker must be an http(s) URL');
}

/**
 * Formats the 402 challenge.
 *
 * @example
 * formatWwwAuthenticate({ realm: 'daily-planet', price: 5, currency: 'NZD', broker: 'https://broker.example' });
 * // 'NetPay realm="daily-planet", price="5", currency="NZD", broker="https://broker.example"'
 */
export function formatWwwAuthenticate(params: WwwAuthenticateParams): string {
  checkChallenge(params);
  return `${AUTH_SCHEME} realm="${params.realm}", price="${params.price}", currency="${params.currency}", broker="${params.broker}"`;
}

/**
 * Parses a NetPay challenge. Unknown parameters are ignored (a wallet should survive a vendor that adds one);
 * missing or duplicate ones are errors.
 *
 * @throws ProtocolError('bad_request')
 * @example
 * const { price, currency, broker } = parseWwwAuthenticate(res.headers.get('www-authenticate') ?? undefined);
 */
export function parseWwwAuthenticate(value: string | undefined): WwwAuthenticateParams {
  const text = checkLength(value);
  const params = parseParams(text, parseScheme(text));
  only(params, ['realm', 'price', 'currency', 'broker'], false);
  const result: WwwAuthenticateParams = {
    realm: params.get('realm') as string,
    price: canonicalInt(params.get('price') as string, 'price', Number.MAX_SAFE_INTEGER),
    currency: params.get('currency') as string,
    broker: params.get('broker') as string,
  };
  checkChallenge(result);
  return result;
}

/**
 * Formats the receipt a vendor sends with paid content.
 *
 * @example
 * formatReceipt({ chain, index: 3, balance: 13 }); // 'chain="…", index="3", balance="13"'
 */
export function formatReceipt(params: ReceiptParams): string {
  checkB64(params.chain, CHAIN_ID_LENGTH, 'chain');
  const index = checkIndex(params.index, MAX_CHAIN_LENGTH, 'index');
  const balance = checkIndex(params.balance, Number.MAX_SAFE_INTEGER, 'balance');
  return `chain="${params.chain}", index="${index}", balance="${balance}"`;
}

/**
 * Parses a `NetPay-Receipt` value (parameters only, no scheme). Unknown parameters are ignored.
 *
 * @throws ProtocolError('bad_request')
 * @example
 * const { index, balance } = parseReceipt(res.headers.get('netpay-receipt') ?? undefined);
 */
export function parseReceipt(value: string | undefined): ReceiptParams {
  const text = checkLength(value);
  const params = parseParams(text, 0);
  only(params, ['chain', 'index', 'balance'], false);
  return {
    chain: checkB64(params.get('chain') as string, CHAIN_ID_LENGTH, 'chain'),
    index: canonicalInt(params.get('index') as string, 'index', MAX_CHAIN_LENGTH),
    balance: canonicalInt(params.get('balance') as string, 'balance', Number.MAX_SAFE_INTEGER),
  };
}
