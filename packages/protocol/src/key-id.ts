import { sha256 } from '@noble/hashes/sha2.js';
import { b64uEncode } from './encoding.ts';

/**
 * The default `keyId` of a vendor key: derived from the key itself, so a vendor that makes its key
 * on first start and the operator who registers it name it alike without coordinating.
 *
 * @example
 * keyIdForPublicKey(publicKey) // 'vQnbg0AMRg9'
 */
export function keyIdForPublicKey(publicKey: Uint8Array): string {
  return `v${b64uEncode(sha256(publicKey)).slice(0, 10)}`;
}
