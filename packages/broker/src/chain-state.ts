import { type DatabaseEngine, forUpdate } from '@netpay/service-kit';
import type { HashWork } from './hash-work.ts';
import { PreparedQuery } from './prepared-query.ts';
import type { BrokerSchema, BrokerTx } from './schema.ts';

export type ChainRow = BrokerSchema['chains'];
export type EpochRow = BrokerSchema['epochs'];
export type RangeRow = BrokerSchema['redeemed_ranges'];

/**
 * What the broker knows about one chain, loaded under the chain's row lock: the chain and its epochs, never its
 * redeemed ranges (a chain may have many). Each epoch carries what its ranges add up to (kept gross, highest end);
 * the few ranges an operation must see are read by redeemed-ranges.ts.
 */
export interface ChainState {
  chain: ChainRow;
  /** By epoch number. */
  epochs: Map<number, EpochRow>;
}

/** A point on a chain the broker has verified: w_index. */
export interface Point {
  index: number;
  payword: string;
}

/**
 * Every verified point of the chain the broker keeps at hand, from epochs before `beforeEpoch` when given: the
 * anchor, epoch starts, checkpoints, releases, the proofs of payment claims carried and each epoch's highest redeemed
 * end. Each one was checked against the anchor (directly or through another point) before it was stored. (Lower
 * ends of redeemed ranges are verified points too; leaving them out only lengthens some hash walks, never changes
 * an answer, and every range end is at most its epoch's highest.)
 */
export function knownPoints(state: ChainState, beforeEpoch = Number.POSITIVE_INFINITY): Point[] {
  const points: Point[] = [{ index: 0, payword: state.chain.anchor }];
  for (const e of state.epochs.values()) {
    if (e.epoch >= beforeEpoch) continue;
    if (e.start_index !== null && e.start_payword !== null)
      points.push({ index: e.start_index, payword: e.start_payword });
    if (e.checkpoint_index !== null && e.checkpoint_payword !== null) {
      points.push({ index: e.checkpoint_index, payword: e.checkpoint_payword });
    }
    if (e.release_index !== null && e.release_payword !== null) {
      points.push({ index: e.release_index, payword: e.release_payword });
    }
    if (e.claim_index !== null && e.claim_payword !== null) {
      points.push({ index: e.claim_index, payword: e.claim_payword });
    }
    if (e.redeemed_index !== null && e.redeemed_payword !== null) {
      points.push({ index: e.redeemed_index, payword: e.redeemed_payword });
    }
  }
  return points;
}

/**
 * The lowest start the broker knows of any epoch after `epoch`, or null. Epochs hold the chain in order, so no epoch
 * ends above it: what an earlier holder would redeem past it are units the customer paid a later one (a double spend
 * handed to the earlier holder, or its lie), and the later holder's start is the broker's own word to it.
 */
export function lowestLaterStart(state: ChainState, epoch: number): number | null {
  let lowest: number | null = null;
  for (const e of state.epochs.values()) {
    if (e.epoch > epoch && e.start_index !== null && (lowest === null || e.start_index < lowest))
      lowest = e.start_index;
  }
  return lowest;
}

/** The highest start the broker knows of an epoch before `epoch`, or null: no later epoch starts below it. */
export function highestEarlierStart(state: ChainState, epoch: number): Point | null {
  let best: Point | null = null;
  for (const e of state.epochs.values()) {
    if (e.epoch >= epoch || e.start_index === null || e.start_payword === null) continue;
    if (best === null || e.start_index > best.index) best = { index: e.start_index, payword: e.start_payword };
  }
  return best;
}

/** The highest verified point (the anchor when nothing else is known), below index `below` when given. */
export function highestKnownPoint(state: ChainState, beforeEpoch?: number, below = Number.POSITIVE_INFINITY): Point {
  let best: Point = { index: 0, payword: state.chain.anchor };
  for (const p of knownPoints(state, beforeEpoch)) if (p.index < below && p.index > best.index) best = p;
  return best;
}

/**
 * The highest point the holders before `beforeEpoch` showed they had been paid to: their claims' proofs, their
 * checkpoints and the ends of the ranges they redeemed (each one a payword only the customer's payment gave them; a
 * release is not among them: it is the very statement that may be a lie). No later epoch starts below it
 * (take-back.ts, redemption.ts): below it the units are the earlier holders', who may have been paid out for them
 * already, so a lower release can take back from its signer but never hand those units to the next holder.
 */
export function heldBefore(
  state: ChainState,
  beforeEpoch: number,
  /** Per epoch whose highest redeemed end reaches the next claim, its highest end below it (redeemed-ranges.ts). */
  endsBelowClaim: ReadonlyMap<number, Point> = new Map(),
): Point {
  let best: Point = { index: 0, payword: state.chain.anchor };
  const consider = (index: number | null, payword: string | null) => {
    if (index !== null && payword !== null && index > best.index) best = { index, payword };
  };
  for (const e of state.epochs.values()) {
    if (e.epoch >= beforeEpoch) continue;
    consider(e.claim_index, e.claim_payword);
    consider(e.checkpoint_index, e.checkpoint_payword);
    // No epoch starts below an earlier one's start.
    consider(e.start_index, e.start_payword);
    // A redeemed end below the next holder's claim was the holder's (a claim's payword lies above every point the
    // broker knew when it was made); one at or past it may be a double spend handed to the holder after the move
    // (its range is held from payout until the next start is known: settlement.ts `contested`), so then the
    // highest end below the claim counts.
    const nextClaim = state.epochs.get(e.epoch + 1)?.claim_index ?? null;
    if (nextClaim === null || (e.redeemed_index !== null && e.redeemed_index < nextClaim)) {
      consider(e.redeemed_index, e.redeemed_payword);
    } else {
      const below = endsBelowClaim.get(e.epoch);
      if (below) consider(below.index, below.payword);
    }
  }
  return best;
}

/** The highest spent index the broker knows of. */
export function highestKnownIndex(state: ChainState): number {
  return highestKnownPoint(state).index;
}

/**
 * Whether (index, payword) lies on the chain: equal to a known point at that index, or hashing down to the
 * nearest known point below it. Costs at most index − base SHA-256 steps, run through `work` (in the pool when long).
 */
export function pointOnChain(work: HashWork, state: ChainState, presented: Point): boolean {
  if (!Number.isInteger(presented.index) || presented.index < 0 || presented.index > state.chain.length) return false;
  let base: Point = { index: 0, payword: state.chain.anchor };
  for (const p of knownPoints(state)) {
    if (p.index === presented.index) return p.payword === presented.payword;
    if (p.index < presented.index && p.index > base.index) base = p;
  }
  if (base.index === presented.index) return base.payword === presented.payword;
  return work.verify(state.chain.chain_id, base, presented);
}

const chainById = new PreparedQuery((db, slot) =>
  db.selectFrom('chains').selectAll().where('chain_id', '=', slot('chainId')),
);
const chainByIdForUpdate = new PreparedQuery((db, slot) =>
  db.selectFrom('chains').selectAll().where('chain_id', '=', slot('chainId')).forUpdate(),
);
const epochsOfChain = new PreparedQuery((db, slot) =>
  db.selectFrom('epochs').selectAll().where('chain_id', '=', slot('chainId')),
);

/** Locks the chain's row for the rest of the transaction (PostgreSQL; SQLite transactions are serial). */
export async function lockChain(trx: BrokerTx, engine: DatabaseEngine, chainId: string): Promise<ChainRow | undefined> {
  return (forUpdate(engine) ? chainByIdForUpdate : chainById).first(trx, { chainId });
}

/** Locks and loads a chain with its epochs. */
export async function loadChainState(
  trx: BrokerTx,
  engine: DatabaseEngine,
  chainId: string,
): Promise<ChainState | undefined> {
  const chain = await lockChain(trx, engine, chainId);
  if (!chain) return undefined;
  const epochs = await epochsOfChain.all(trx, { chainId });
  return { chain, epochs: new Map(epochs.map((e) => [e.epoch, e])) };
}

/** Writes the changed columns of an epoch and keeps the in-memory copy in step. */
export async function updateEpoch(
  trx: BrokerTx,
  state: ChainState,
  epoch: EpochRow,
  patch: Partial<EpochRow>,
): Promise<void> {
  await trx
    .updateTable('epochs')
    .set(patch)
    .where('chain_id', '=', epoch.chain_id)
    .where('epoch', '=', epoch.epoch)
    .execute();
  Object.assign(epoch, patch);
  state.epochs.set(epoch.epoch, epoch);
}
