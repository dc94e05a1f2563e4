import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

/**
 * SHA-256 of one input, through OpenSSL in Node (`crypto.hash`, no object per call) and @noble elsewhere
 * (browsers). A payment costs one of these per unit, so the native path matters; both give the same bytes, which
 * the first call checks against a known answer before trusting the native one.
 */
type Digest = (input: Uint8Array) => Uint8Array;

interface NodeCryptoHash {
  hash(algorithm: string, data: Uint8Array, outputEncoding: 'buffer'): Uint8Array;
}

function nativeDigest(): Digest | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const crypto = proc?.getBuiltinModule?.('node:crypto') as NodeCryptoHash | undefined;
  if (typeof crypto?.hash !== 'function') return undefined;
  const digest: Digest = (input) => crypto.hash('sha256', input, 'buffer');
  // Known answer: SHA-256("abc").
  const abc = digest(new Uint8Array([0x61, 0x62, 0x63]));
  const expected = nobleSha256(new Uint8Array([0x61, 0x62, 0x63]));
  if (abc.length !== 32 || !abc.every((b, i) => b === expected[i])) return undefined;
  return digest;
}

const native = nativeDigest();

/** SHA-256 of `input` (32 bytes). */
export const sha256: Digest = native ?? nobleSha256;

/** Which implementation `sha256` uses here. */
export function sha256BackendName(): 'node' | 'noble' {
  return native ? 'node' : 'noble';
}
