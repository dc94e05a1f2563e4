import {
  type AuthChallenge,
  type AuthParam,
  MAX_CHALLENGES_LENGTH,
  parseAuthParams,
  parseChallenges,
  parseCredentials,
} from './auth-challenges.ts';
import { b64uDecode } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';
import { CHAIN_ID_LENGTH, MAX_CHAIN_LENGTH, PAYWORD_LENGTH } from './payword-chain.ts';

/** The HTTP authentication scheme of NetPay. */
export const AUTH_SCHEME = 'NetPay';
/** Name of the receipt header a vendor sends with paid content. */
export const RECEIPT_HEADER = 'NetPay-Receipt';
/**
 * Longest `Authorization: NetPay` or `NetPay-Receipt` value any party parses; longer values are rejected before
 * parsing. A `WWW-Authenticate` value, which may carry other schemes' challenges beside NetPay's, is bounded by
 * MAX_CHALLENGES_LENGTH instead.
 */
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

const CANONICAL_UINT = /^(0|[1-9][0-9]*)$/;
const VENDOR_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const CURRENCY = /^[A-Z]{3}$/;
const URL = /^https?:\/\/[\x21\x23-\x5b\x5d-\x7e]+$/;

function bad(detail: string): never {
  throw new ProtocolError('bad_request', detail);
}

function isNetPay(challenge: AuthChallenge): boolean {
  return challenge.scheme.toLowerCase() === AUTH_SCHEME.toLowerCase();
}

/** A NetPay challenge's or credentials' parameters by name: NetPay takes parameters, each once (RFC 9110 §11.2). */
function netPayParams(challenge: AuthChallenge): Map<string, string> {
  if (challenge.token68 !== undefined) bad('NetPay takes parameters, not a token68');
  if (challenge.params.length === 0) bad('no parameters');
  return byName(challenge.params);
}

function byName(list: readonly AuthParam[]): Map<string, string> {
  const params = new Map<string, string>();
  for (const { name, value } of list) {
    if (params.has(name)) bad(`duplicate parameter ${name}`);
    params.set(name, value);
  }
  return params;
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
 * Strictly parses `Authorization: NetPay chain="…", index="…", payword="…"`. The syntax is RFC 9110's: the scheme
 * and parameter names in any case, values as tokens or quoted-strings (with quoted-pairs); the values themselves
 * must then be exactly NetPay's.
 *
 * @throws ProtocolError('bad_request') for anything malformed, and nothing else
 * @example
 * const { chain, index, payword } = parseAuthorization(req.headers.authorization);
 */
export function parseAuthorization(value: string | undefined): AuthorizationParams {
  const credentials = parseCredentials(checkLength(value), MAX_HEADER_LENGTH);
  if (!isNetPay(credentials)) bad('not the NetPay scheme');
  const params = netPayParams(credentials);
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
 * Picks the NetPay challenge out of a `WWW-Authenticate` value that may carry several (`Bearer realm="x", NetPay
 * realm="…", …`), read with RFC 9110's grammar so that other challenges' token68s, commas inside quoted-strings and
 * escaped quotes cannot be mistaken for NetPay's parameters. The first NetPay challenge counts. Unknown parameters
 * are ignored (a wallet should survive a vendor that adds one); missing or duplicate ones are errors.
 *
 * @returns undefined when the value is well formed and offers no NetPay challenge
 * @throws ProtocolError('bad_request') when the value is malformed, or its NetPay challenge is; and nothing else
 * @example
 * const challenge = pickNetPayChallenge(res.headers.get('www-authenticate') ?? undefined);
 * if (challenge === undefined) return res; // another scheme's 402: not ours to pay
 */
export function pickNetPayChallenge(value: string | undefined): WwwAuthenticateParams | undefined {
  const netpay = parseChallenges(value, MAX_CHALLENGES_LENGTH).find(isNetPay);
  return netpay === undefined ? undefined : challengeOf(netpay);
}

/**
 * Parses the NetPay challenge of a `WWW-Authenticate` value, which may carry other challenges too
 * (see pickNetPayChallenge).
 *
 * @throws ProtocolError('bad_request') also when there is no NetPay challenge
 * @example
 * const { price, currency, broker } = parseWwwAuthenticate(res.headers.get('www-authenticate') ?? undefined);
 */
export function parseWwwAuthenticate(value: string | undefined): WwwAuthenticateParams {
  const challenge = pickNetPayChallenge(value);
  if (challenge === undefined) bad('no NetPay challenge');
  return challenge;
}

function challengeOf(netpay: AuthChallenge): WwwAuthenticateParams {
  const params = netPayParams(netpay);
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
  const params = byName(parseAuthParams(checkLength(value), MAX_HEADER_LENGTH));
  only(params, ['chain', 'index', 'balance'], false);
  return {
    chain: checkB64(params.get('chain') as string, CHAIN_ID_LENGTH, 'chain'),
    index: canonicalInt(params.get('index') as string, 'index', MAX_CHAIN_LENGTH),
    balance: canonicalInt(params.get('balance') as string, 'balance', Number.MAX_SAFE_INTEGER),
  };
}
