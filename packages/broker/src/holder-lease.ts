import { type HolderCertificate, signHolderCertificate } from '@netpay/protocol';
import { rfc3339 } from '@netpay/service-kit';
import type { EpochRow } from './chain-state.ts';
import type { BrokerSigningKey } from './signing-keys.ts';

/** A lease is valid strictly before its expiry instant. */
export function leaseValid(epoch: Pick<EpochRow, 'lease_expires_at'>, now: Date): boolean {
  return now.getTime() < Date.parse(epoch.lease_expires_at);
}

/** Issue and expiry of a lease starting now (whole seconds, as certificates carry them). */
export function leaseTimes(now: Date, leaseTtlSeconds: number): { issuedAt: string; expiresAt: string } {
  const issuedAt = rfc3339(now);
  const expiresAt = rfc3339(new Date(Date.parse(issuedAt) + leaseTtlSeconds * 1000));
  return { issuedAt, expiresAt };
}

/** The broker's certificate that `vendorId` holds the chain for `epoch` until `expiresAt`. */
export function holderCertificate(
  fields: {
    chainId: string;
    epoch: number;
    vendorId: string;
    prevVendorId: string;
    prevEpoch: number;
    issuedAt: string;
    expiresAt: string;
  },
  broker: string,
  key: BrokerSigningKey,
): HolderCertificate {
  return signHolderCertificate({ ...fields, broker, keyId: key.keyId }, key.privateSeed);
}
