import { ProtocolError } from './error-codes.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/**
 * Encodes bytes as base64url without padding, the form every binary value takes on the wire.
 *
 * @example
 * b64uEncode(new Uint8Array([251, 255])); // '-_8'
 */
export function b64uEncode(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out +=
      ALPHABET.charAt(n >>> 18) +
      ALPHABET.charAt((n >>> 12) & 63) +
      ALPHABET.charAt((n >>> 6) & 63) +
      ALPHABET.charAt(n & 63);
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = (bytes[i] as number) << 16;
    out += ALPHABET.charAt(n >>> 18) + ALPHABET.charAt((n >>> 12) & 63);
  } else if (rest === 2) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8);
    out += ALPHABET.charAt(n >>> 18) + ALPHABET.charAt((n >>> 12) & 63) + ALPHABET.charAt((n >>> 6) & 63);
  }
  return out;
}

/**
 * Decodes strict base64url without padding. Rejects padding, characters outside the url-safe alphabet,
 * non-canonical encodings (non-zero trailing bits, so each value has exactly one text form) and, when given,
 * a decoded length other than `expectedLength`.
 *
 * @throws ProtocolError('bad_request')
 * @example
 * const chainId = b64uDecode(header.chain, 16);
 */
export function b64uDecode(text: string, expectedLength?: number): Uint8Array {
  if (typeof text !== 'string') throw new ProtocolError('bad_request', 'base64url value must be a string');
  const len = text.length;
  if (len % 4 === 1) throw new ProtocolError('bad_request', 'invalid base64url length');
  const outLength = Math.floor((len * 3) / 4);
  // Check the length before decoding so an oversized value costs nothing.
  if (expectedLength !== undefined && outLength !== expectedLength) {
    throw new ProtocolError('bad_request', `expected ${expectedLength} bytes of base64url, got ${outLength}`);
  }
  const out = new Uint8Array(outLength);
  let buffer = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? (DECODE[c] as number) : -1;
    if (v < 0) throw new ProtocolError('bad_request', 'invalid base64url character');
    buffer = ((buffer << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (buffer >>> bits) & 0xff;
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) throw new ProtocolError('bad_request', 'non-canonical base64url');
  return out;
}

const encoder = new TextEncoder();

/**
 * UTF-8 bytes of a string.
 *
 * @example
 * utf8('NP1'); // Uint8Array [78, 80, 49]
 */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Cryptographically secure random bytes from the platform (`globalThis.crypto`, in Node and browsers).
 *
 * @example
 * const chainId = randomBytes(16);
 */
export function randomBytes(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('randomBytes: n must be a non-negative integer');
  const out = new Uint8Array(n);
  // getRandomValues refuses more than 65536 bytes per call.
  for (let i = 0; i < n; i += 65536) globalThis.crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

/**
 * Lower-case hex of bytes, for logs and test vectors.
 *
 * @example
 * hexEncode(new Uint8Array([1, 255])); // '01ff'
 */
export function hexEncode(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}
