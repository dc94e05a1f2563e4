import type { ChainRow, ChainState, EpochRow } from './chain-state.ts';

/**
 * Money is conserved chain by chain (PROTOCOL §8, v1.1): what vendors keep of their redemptions (gross, after
 * take-backs) plus what the customer got back never passes the chain's value. These pure rules are used inside
 * the transaction that moves money (with the chain's row locked) and again by the audit where it is read.
 */

/** length × unit: the most that may ever leave the broker for this chain. */
export function chainValue(chain: Pick<ChainRow, 'length' | 'unit'>): number {
  return chain.length * chain.unit;
}

/**
 * Gross the chain's redeemed ranges still keep (after take-backs): the sum each epoch keeps of its own ranges,
 * written in the same statement order as the ranges themselves (redeemed-ranges.ts) and checked against them by the
 * audit.
 */
export function keptGross(state: ChainState): number {
  let kept = 0;
  for (const e of state.epochs.values()) kept += e.kept_gross;
  return kept;
}

/** What is left of the chain's value for further credits or a refund. */
export function unclaimedValue(state: ChainState): number {
  return chainValue(state.chain) - keptGross(state) - state.chain.refunded_amount;
}

/** Paired assertion: called after every write that credits, takes back or refunds. */
export function assertConserved(state: ChainState, pendingRefund = 0): void {
  const out = keptGross(state) + state.chain.refunded_amount + pendingRefund;
  if (out > chainValue(state.chain)) {
    throw new Error(
      `invariant: chain ${state.chain.chain_id} would let ${out} out for a value of ${chainValue(state.chain)}`,
    );
  }
}

/** Where an epoch provably ended: the lowest of its release index and its forced bound, or null if unknown. */
export function knownEnd(epoch: Pick<EpochRow, 'release_index' | 'forced_bound'>): number | null {
  if (epoch.release_index === null) return epoch.forced_bound;
  if (epoch.forced_bound === null) return epoch.release_index;
  return Math.min(epoch.release_index, epoch.forced_bound);
}

export type RedeemBound =
  | { kind: 'open'; index: number }
  | { kind: 'end'; index: number }
  | { kind: 'end_unknown'; index: number };

/**
 * How far a vendor may redeem in an epoch now (PROTOCOL §5 v1.1). A current epoch is open up to the chain's
 * length; once a later epoch exists, up to the end it provably had (its release, or its forced bound); while that
 * end is unknown, up to the last point the holder itself reported (checkpoint, or start). A chain being refunded
 * caps every epoch at the refund index, which is what the refund did not pay back.
 */
export function redeemBound(chain: ChainRow, epoch: EpochRow): RedeemBound {
  const refundCap = chain.status === 'active' || chain.refund_index === null ? chain.length : chain.refund_index;
  const end = knownEnd(epoch);
  if (end !== null) return { kind: 'end', index: Math.min(end, refundCap) };
  if (epoch.superseded_by === null) return { kind: 'open', index: refundCap };
  const reported = Math.max(epoch.checkpoint_index ?? 0, epoch.start_index ?? 0);
  return { kind: 'end_unknown', index: Math.min(reported, refundCap) };
}
