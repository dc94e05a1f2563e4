import { type Ed25519Backend, ED25519_KEY_LENGTH } from './ed25519-backend.ts';
import { nativeEd25519 } from './ed25519-native.ts';
import { nobleEd25519 } from './ed25519-noble.ts';
import { b64uDecode, randomBytes } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';

export { ED25519_KEY_LENGTH, ED25519_SIGNATURE_LENGTH } from './ed25519-backend.ts';

// Chosen once, at load: OpenSSL where the runtime has it (Node), JavaScript elsewhere (browsers). Both give the
// same bytes and the same verdicts, so nothing signed or checked depends on where it ran.
const backend: Ed25519Backend = nativeEd25519() ?? nobleEd25519;

/**
 * Which Ed25519 implementation signs and verifies here: 'node' (OpenSSL through node:crypto) or 'noble' (JavaScript).
 *
 * @example
 * log.info({ ed25519: ed25519BackendName() }, 'ready');
 */
export function ed25519BackendName(): 'node' | 'noble' {
  return backend.name;
}

/** An Ed25519 key pair; `privateSeed` is the 32-byte RFC 8032 secret. */
export interface SigningKey {
  privateSeed: Uint8Array;
  publicKey: Uint8Array;
}

/** A public key as published in discovery and the vendor directory. */
export interface PublicKeyEntry {
  keyId: string;
  alg: string;
  publicKey: string;
}

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== ED25519_KEY_LENGTH) {
    throw new ProtocolError('bad_request', 'Ed25519 private seed must be 32 bytes');
  }
}

/**
 * A fresh random Ed25519 key pair.
 *
 * @example
 * const { privateSeed, publicKey } = generateSigningKey();
 */
export function generateSigningKey(): SigningKey {
  const privateSeed = randomBytes(ED25519_KEY_LENGTH);
  return { privateSeed, publicKey: backend.publicKey(privateSeed) };
}

/**
 * The public key for a private seed.
 *
 * @example
 * b64uEncode(publicKeyFromSeed(b64uDecode(config.signingSeed, 32)));
 */
export function publicKeyFromSeed(privateSeed: Uint8Array): Uint8Array {
  checkSeed(privateSeed);
  return backend.publicKey(privateSeed);
}

/**
 * Signs bytes with Ed25519 (deterministic: the same seed and message always give the same signature).
 *
 * @example
 * const sig = signBytes(utf8('hello'), privateSeed);
 */
export function signBytes(message: Uint8Array, privateSeed: Uint8Array): Uint8Array {
  checkSeed(privateSeed);
  return backend.sign(message, privateSeed);
}

/**
 * Verifies an Ed25519 signature (argument order as in noble: signature, message, public key). Strict RFC 8032: a
 * canonical public key not of small order, S below the group order, and the cofactorless equation checked on R's
 * bytes, so no second encoding of a signature verifies. Never throws; false for anything malformed.
 *
 * @example
 * verifyBytes(sig, utf8('hello'), publicKey); // true
 */
export function verifyBytes(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  return backend.verify(signature, message, publicKey);
}

/**
 * The decoded Ed25519 public key with this keyId from a published key set, or undefined when there is none
 * (or it is not Ed25519, or its encoding is bad).
 *
 * @example
 * const key = findKey(discovery.keys, touchstone.keyId);
 * if (key && verifyTouchstone(touchstone, key)) …
 */
export function findKey(keys: readonly PublicKeyEntry[], keyId: string): Uint8Array | undefined {
  if (!Array.isArray(keys)) return undefined;
  for (const entry of keys) {
    if (entry?.keyId !== keyId || entry.alg !== 'Ed25519') continue;
    try {
      return b64uDecode(entry.publicKey, ED25519_KEY_LENGTH);
    } catch {
      return undefined;
    }
  }
  return undefined;
}
