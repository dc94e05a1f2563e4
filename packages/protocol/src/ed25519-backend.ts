/** Byte length of an Ed25519 private seed and of a public key. */
export const ED25519_KEY_LENGTH = 32;
/** Byte length of an Ed25519 signature. */
export const ED25519_SIGNATURE_LENGTH = 64;

/**
 * One implementation of Ed25519 (RFC 8032, pure, no context). Every backend gives byte-identical keys and signatures
 * (Ed25519 signing is deterministic) and the same verdict for every input, under one verification rule:
 * - the public key is a canonical encoding (y < p, no "negative zero" x) of a point that is not of small order;
 * - S is below the group order L;
 * - the signature's R is byte-equal to the encoding of [S]B - [k]A, k = SHA-512(R || A || M) mod L (the cofactorless
 *   equation, as OpenSSL checks it; no second encoding of R or S verifies).
 * `verify` never throws; `publicKey` and `sign` expect a 32-byte seed (callers check it).
 */
export interface Ed25519Backend {
  readonly name: 'node' | 'noble';
  publicKey(privateSeed: Uint8Array): Uint8Array;
  sign(message: Uint8Array, privateSeed: Uint8Array): Uint8Array;
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/** Whether the arguments of a verification have the right types and lengths (anything else verifies as false). */
export function verifiableShape(signature: unknown, message: unknown, publicKey: unknown): boolean {
  return (
    signature instanceof Uint8Array &&
    signature.length === ED25519_SIGNATURE_LENGTH &&
    publicKey instanceof Uint8Array &&
    publicKey.length === ED25519_KEY_LENGTH &&
    message instanceof Uint8Array
  );
}
