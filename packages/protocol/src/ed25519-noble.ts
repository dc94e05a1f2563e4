import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, equalBytes } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { type Ed25519Backend, verifiableShape } from './ed25519-backend.ts';

const Point = ed25519.Point;
const ORDER = Point.Fn.ORDER;

type EdPoint = InstanceType<typeof Point>;

/**
 * The decoded point of a public key that the verification rule accepts (canonical encoding, not of small order), or
 * undefined. The native backend asks this once per key: OpenSSL itself takes the identity point, with which any
 * message "verifies".
 */
export function acceptedPublicKeyPoint(publicKey: Uint8Array): EdPoint | undefined {
  try {
    const point = Point.fromBytes(publicKey, false);
    return point.isSmallOrder() ? undefined : point;
  } catch {
    return undefined;
  }
}

function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (!verifiableShape(signature, message, publicKey)) return false;
  try {
    const a = acceptedPublicKeyPoint(publicKey);
    if (a === undefined) return false;
    const r = signature.subarray(0, 32);
    const s = bytesToNumberLE(signature.subarray(32));
    if (s >= ORDER) return false;
    const digest = new Uint8Array(64 + message.length);
    digest.set(r, 0);
    digest.set(publicKey, 32);
    digest.set(message, 64);
    const k = bytesToNumberLE(sha512(digest)) % ORDER;
    // Cofactorless, compared as bytes, exactly as OpenSSL does: noble's own verify multiplies by the cofactor and
    // would accept signatures (R with a small-order part, keys with one) that the native backend refuses.
    const expectedR = Point.BASE.multiplyUnsafe(s).subtract(a.multiplyUnsafe(k));
    return equalBytes(expectedR.toBytes(), r);
  } catch {
    return false;
  }
}

/**
 * Ed25519 in JavaScript (@noble/curves): the backend wherever no native one exists (browsers). About twenty times
 * slower than OpenSSL.
 */
export const nobleEd25519: Ed25519Backend = {
  name: 'noble',
  publicKey: (privateSeed) => ed25519.getPublicKey(privateSeed),
  sign: (message, privateSeed) => ed25519.sign(message, privateSeed),
  verify,
};
