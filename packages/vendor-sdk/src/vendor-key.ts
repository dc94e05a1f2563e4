import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { b64uDecode, b64uEncode, generateSigningKey, publicKeyFromSeed } from '@netpay/protocol';

/** The vendor's Ed25519 key for release statements, with the keyId it is published under. */
export interface VendorKey {
  privateSeed: Uint8Array;
  publicKey: Uint8Array;
  keyId: string;
}

/**
 * The keyId convention for a public key: 'v' + the first 10 characters of b64u(SHA-256(publicKey)), the same as
 * the broker's default when a vendor registers a key without naming it.
 *
 * @example
 * keyIdForPublicKey(publicKey); // 'vQ2x…'
 */
export function keyIdForPublicKey(publicKey: Uint8Array): string {
  return `v${b64uEncode(createHash('sha256').update(publicKey).digest()).slice(0, 10)}`;
}

/**
 * Loads the vendor's signing key from `<dir>/vendor-key.json`, making one on first start (file mode 0600).
 *
 * @example
 * const key = loadOrCreateVendorKey('./data/daily-planet');
 * const vendor = createNetPayVendor({ …, signingKey: key });
 */
export function loadOrCreateVendorKey(dir: string): VendorKey {
  const path = join(dir, 'vendor-key.json');
  if (existsSync(path)) {
    const stored = JSON.parse(readFileSync(path, 'utf8')) as { privateSeed: string; keyId?: string };
    const privateSeed = b64uDecode(stored.privateSeed, 32);
    const publicKey = publicKeyFromSeed(privateSeed);
    return { privateSeed, publicKey, keyId: stored.keyId ?? keyIdForPublicKey(publicKey) };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateSeed, publicKey } = generateSigningKey();
  const keyId = keyIdForPublicKey(publicKey);
  const text = `${JSON.stringify(
    { keyId, alg: 'Ed25519', publicKey: b64uEncode(publicKey), privateSeed: b64uEncode(privateSeed) },
    null,
    2,
  )}\n`;
  // Write aside and rename, so a crash never leaves half a key behind.
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return { privateSeed, publicKey, keyId };
}
