import {
  b64uDecode,
  findKey,
  type HolderCertificate,
  type PublicKeyEntry,
  type ReleaseStatement,
  signRelease,
  verifyRelease,
} from '@netpay/protocol';
import { rfc3339 } from '@netpay/service-kit';
import { type KnownPoint, verifiesAtOrBelow } from './payment.ts';

/** What a release statement must say for the new holder to accept it (§6). */
export interface ExpectedRelease {
  chainId: string;
  chainIdBytes: Uint8Array;
  prevVendorId: string;
  prevEpoch: number;
  toVendorId: string;
  toEpoch: number;
  /** Points of the chain already verified (at least the anchor). */
  knownPoints: readonly KnownPoint[];
}

/**
 * Checks a release statement from a previous holder: the fields name this move, the signature verifies with a
 * key of the releasing vendor (from the vendor directory), and the payword verifies against the chain.
 * Returns a reason when it does not.
 *
 * @example
 * const why = checkRelease(res.release, expected, directoryEntry.keys); // undefined when good
 */
export function checkRelease(
  release: ReleaseStatement,
  expected: ExpectedRelease,
  keys: readonly PublicKeyEntry[],
): string | undefined {
  if (release.chainId !== expected.chainId) return 'release names another chain';
  if (release.vendorId !== expected.prevVendorId || release.epoch !== expected.prevEpoch) {
    return 'release is not from the previous holder and epoch';
  }
  if (release.toVendorId !== expected.toVendorId || release.toEpoch !== expected.toEpoch) {
    return 'release is not addressed to this holder and epoch';
  }
  const key = findKey(keys, release.keyId);
  if (!key) return `unknown key ${release.keyId} of ${release.vendorId}`;
  if (!verifyRelease(release, key)) return 'release signature does not verify';
  let payword: Uint8Array;
  try {
    payword = b64uDecode(release.payword, 32);
  } catch {
    return 'release payword is malformed';
  }
  if (!verifiesAtOrBelow(expected.chainIdBytes, expected.knownPoints, release.index, payword)) {
    return 'release payword does not verify against the chain';
  }
  return undefined;
}

/**
 * Signs this vendor's release statement for an epoch at its last index (§6).
 *
 * @example
 * makeRelease({ chainId, epoch: 1, vendorId: 'daily-planet', last, to: holder, keyId, privateSeed, now: new Date() });
 */
export function makeRelease(input: {
  chainId: string;
  epoch: number;
  vendorId: string;
  last: { index: number; payword: string };
  to: Pick<HolderCertificate, 'vendorId' | 'epoch'>;
  keyId: string;
  privateSeed: Uint8Array;
  now: Date;
}): ReleaseStatement {
  return signRelease(
    {
      chainId: input.chainId,
      epoch: input.epoch,
      vendorId: input.vendorId,
      index: input.last.index,
      payword: input.last.payword,
      toVendorId: input.to.vendorId,
      toEpoch: input.to.epoch,
      keyId: input.keyId,
      releasedAt: rfc3339(input.now),
    },
    input.privateSeed,
  );
}
