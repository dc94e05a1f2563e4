import type { HolderCertificate } from '@netpay/protocol';

/** The lease a holder certificate grants, in ms: expiresAt − issuedAt. */
export function leaseTtlMs(holder: Pick<HolderCertificate, 'issuedAt' | 'expiresAt'>): number {
  return Math.max(0, Date.parse(holder.expiresAt) - Date.parse(holder.issuedAt));
}

/**
 * Whether a lease should be renewed now: it expires within the next third of its TTL (or already has).
 *
 * @example
 * if (needsRenewal(holder, Date.now())) await broker.checkpoint(…);
 */
export function needsRenewal(holder: Pick<HolderCertificate, 'issuedAt' | 'expiresAt'>, nowMs: number): boolean {
  return Date.parse(holder.expiresAt) - nowMs <= leaseTtlMs(holder) / 3;
}

/** What one `renewLeases()` pass did. */
export interface RenewalReport {
  renewed: number;
  superseded: number;
  failed: number;
}
