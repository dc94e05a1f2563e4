import { ed25519 } from '@noble/curves/ed25519.js';
import { b64uDecode, randomBytes } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';

/** Byte length of an Ed25519 private seed and of a public key. */
export const ED25519_KEY_LENGTH = 32;
/** Byte length of an Ed25519 signature. */
export const ED25519_SIGNATURE_LENGTH = 64;

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
  return { privateSeed, publicKey: ed25519.getPublicKey(privateSeed) };
}

/**
 * The public key for a private seed.
 *
 * @example
 * b64uEncode(publicKeyFromSeed(b64uDecode(config.signingSeed, 32)));
 */
export function publicKeyFromSeed(privateSeed: Uint8Array): Uint8Array {
  checkSeed(privateSeed);
  return ed25519.getPublicKey(privateSeed);
}

/**
 * Signs bytes with Ed25519 (deterministic: the same seed and message always give the same signature).
 *
 * @example
 * const sig = signBytes(utf8('hello'), privateSeed);
 */
export function signBytes(message: Uint8Array, privateSeed: Uint8Array): Uint8Array {
  checkSeed(privateSeed);
  return ed25519.sign(message, privateSeed);
}

/**
 * Verifies an Ed25519 signature (argument order as in noble: signature, message, public key). Uses strict
 * RFC 8032 decoding (not ZIP-215) so that no second encoding of a signature verifies. Never throws.
 *
 * @example
 * verifyBytes(sig, utf8('hello'), publicKey); // true
 */
export function verifyBytes(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    if (!(signature instanceof Uint8Array) || signature.length !== ED25519_SIGNATURE_LENGTH) return false;
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_KEY_LENGTH) return false;
    if (!(message instanceof Uint8Array)) return false;
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
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
