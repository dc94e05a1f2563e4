/**
 * Spend-store records for store tests that write chains and epochs directly (no broker): one chain's touchstone
 * facts and an epoch held by `daily-planet` from a given start. The signatures are placeholders: the store keeps
 * what it is given and never verifies.
 */
import type { PaywordChain } from '@netpay/protocol';
import type { ChainRecord, EpochRecord } from '../src/spend-store.ts';

export const STORE_TEST_EXPIRES_AT = '2027-11-24T00:00:00Z';
const PLACEHOLDER_SIG = 'A'.repeat(86);

/** The chain's record as a claim would store it; `unit` in minor units. */
export function chainRecordOf(chain: PaywordChain, unit: number): ChainRecord {
  const chainId = chain.chainIdB64;
  return {
    chainId,
    touchstone: {
      chainId,
      anchor: chain.anchorB64,
      length: chain.length,
      unit,
      currency: 'NZD',
      broker: 'http://broker.test',
      keyId: 'bk1',
      issuedAt: '2026-11-24T00:00:00Z',
      expiresAt: STORE_TEST_EXPIRES_AT,
      sig: PLACEHOLDER_SIG,
    },
    unit,
    length: chain.length,
    currency: 'NZD',
    expiresAtMs: Date.parse(STORE_TEST_EXPIRES_AT),
  };
}

/** An epoch held by `daily-planet`, started at `startIndex` (null: start not known yet), nothing paid beyond it. */
export function epochRecordOf(chain: PaywordChain, epoch: number, startIndex: number | null): EpochRecord {
  const chainId = chain.chainIdB64;
  const start = startIndex === null ? null : { index: startIndex, payword: chain.b64(startIndex) };
  return {
    chainId,
    epoch,
    holder: {
      chainId,
      epoch,
      vendorId: 'daily-planet',
      prevVendorId: '',
      prevEpoch: 0,
      broker: 'http://broker.test',
      keyId: 'bk1',
      issuedAt: '2026-11-24T00:00:00Z',
      expiresAt: STORE_TEST_EXPIRES_AT,
      sig: PLACEHOLDER_SIG,
    },
    leaseExpiresAtMs: Date.parse(STORE_TEST_EXPIRES_AT),
    previous: null,
    start,
    startRelease: null,
    releaseReported: false,
    last: start,
    lastResource: null,
    release: null,
    superseded: false,
    redeemed: null,
    redeemedMinor: 0,
    rejectedMinor: 0,
  };
}
