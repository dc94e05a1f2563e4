import { type ClaimResponse, type PreviousHolder, ProtocolError, type Touchstone } from '@netpay/protocol';
import {
  type ChainState,
  type EpochRow,
  highestEarlierStart,
  highestKnownPoint,
  loadChainState,
  type Point,
  updateEpoch,
} from './chain-state.ts';
import { refuseForeignClaim } from './connection-chain.ts';
import { rfc3339 } from '@netpay/service-kit';
import type { BrokerDeps } from './deps.ts';
import { type HashWork, withHashWork } from './hash-work.ts';
import { holderCertificate, leaseTimes, leaseValid } from './holder-lease.ts';
import { PreparedQuery } from './prepared-query.ts';
import { shownPaidBefore } from './redeemed-ranges.ts';
import type { BrokerTx } from './schema.ts';
import { activeSigningKey } from './signing-keys.ts';
import { takeBackEarlierBeyond } from './take-back.ts';
import { findVendor } from './vendor-registry.ts';

/** The claim answer plus what the broker's own refund needs to know. */
export interface ClaimOutcome {
  response: ClaimResponse;
  epoch: EpochRow;
}

/**
 * §5 claim, inside the caller's transaction with the chain locked: makes `vendorId` the holder of a new
 * epoch, or answers the current holder with its certificate (renewing an expired lease nobody else took).
 * When the previous holder's lease has expired the new epoch starts *forced* at the highest point the broker
 * knows, and the previous holder may redeem nothing beyond it.
 */
export async function claimInTransaction(
  deps: BrokerDeps,
  trx: BrokerTx,
  state: ChainState,
  vendorId: string,
  options: { allowExpired?: boolean; proof?: Point | undefined; work?: HashWork; internal?: boolean } = {},
): Promise<ClaimOutcome> {
  const now = deps.clock.now();
  const { chain } = state;
  if (!options.allowExpired && now.getTime() >= Date.parse(chain.expires_at)) {
    throw new ProtocolError('chain_expired', `chain expired at ${chain.expires_at}`);
  }
  const current = state.epochs.get(chain.current_epoch);

  if (current && current.vendor_id === vendorId) {
    if (!leaseValid(current, now)) {
      // Nobody claimed it since: the same holder renews its lease in the same epoch.
      await renew(deps, trx, state, current, now);
    }
    await forceStartIfPredecessorExpired(trx, state, current, now);
    return { response: await responseFor(trx, state, current), epoch: current };
  }

  // Opening a new epoch moves the coin: only a customer's fresh payword may do that (the broker's own refund and
  // connect grants act for the authenticated customer and need none).
  if (!options.internal && !options.work) throw new Error('a vendor claim checks its proof through hash work');
  const proof = options.internal || !options.work ? null : checkProof(options.work, state, options.proof);
  const epochNumber = (current?.epoch ?? 0) + 1;
  const { issuedAt, expiresAt } = leaseTimes(now, deps.config.leaseTtlSeconds);
  let start: Point | null = null;
  let startKind: string | null = null;
  if (!current) {
    start = { index: 0, payword: chain.anchor };
    startKind = 'anchor';
  } else if (!leaseValid(current, now)) {
    start = highestKnownPoint(state, epochNumber);
    startKind = 'forced';
  }
  const key = await activeSigningKey(trx);
  const holder = holderCertificate(
    {
      chainId: chain.chain_id,
      epoch: epochNumber,
      vendorId,
      prevVendorId: current?.vendor_id ?? '',
      prevEpoch: current?.epoch ?? 0,
      issuedAt,
      expiresAt,
    },
    deps.config.publicUrl,
    key,
  );
  const row: EpochRow = {
    chain_id: chain.chain_id,
    epoch: epochNumber,
    vendor_id: vendorId,
    prev_vendor_id: current?.vendor_id ?? '',
    prev_epoch: current?.epoch ?? 0,
    start_index: start?.index ?? null,
    start_payword: start?.payword ?? null,
    start_kind: startKind,
    issued_at: issuedAt,
    lease_expires_at: expiresAt,
    holder: JSON.stringify(holder),
    checkpoint_index: null,
    checkpoint_payword: null,
    release_index: null,
    release_payword: null,
    release: null,
    superseded_by: null,
    forced_bound: null,
    claim_index: proof?.index ?? null,
    claim_payword: proof?.payword ?? null,
    kept_gross: 0,
    redeemed_index: null,
    redeemed_payword: null,
  };
  if (current) {
    const patch: Partial<EpochRow> = { superseded_by: epochNumber };
    if (startKind === 'forced' && start) patch.forced_bound = lowerBound(current.forced_bound, start.index);
    await updateEpoch(trx, state, current, patch);
  }
  await insertEpoch.run(trx, row);
  state.epochs.set(epochNumber, row);
  await setCurrentEpoch.run(trx, { chainId: chain.chain_id, epoch: epochNumber });
  chain.current_epoch = epochNumber;
  return { response: await responseFor(trx, state, row), epoch: row };
}

/**
 * Every column of an epoch row (the compiler checks the list against the table): a new epoch is inserted by a
 * statement built once, since building the 23-column insert and the chain's update took about a fifth of a
 * millisecond of every claim.
 */
const EPOCH_COLUMNS: Record<keyof EpochRow, true> = {
  chain_id: true,
  epoch: true,
  vendor_id: true,
  prev_vendor_id: true,
  prev_epoch: true,
  start_index: true,
  start_payword: true,
  start_kind: true,
  issued_at: true,
  lease_expires_at: true,
  holder: true,
  checkpoint_index: true,
  checkpoint_payword: true,
  release_index: true,
  release_payword: true,
  release: true,
  superseded_by: true,
  forced_bound: true,
  claim_index: true,
  claim_payword: true,
  kept_gross: true,
  redeemed_index: true,
  redeemed_payword: true,
};

const insertEpoch = new PreparedQuery<unknown, keyof EpochRow>((db, slot) => {
  const values = {} as Record<keyof EpochRow, never>;
  for (const column of Object.keys(EPOCH_COLUMNS) as (keyof EpochRow)[]) values[column] = slot(column);
  return db.insertInto('epochs').values(values);
});

const setCurrentEpoch = new PreparedQuery((db, slot) =>
  db
    .updateTable('chains')
    .set({ current_epoch: slot('epoch') })
    .where('chain_id', '=', slot('chainId')),
);

/**
 * §5 v1.1 proof of payment: the payword the customer presented must lie on the chain strictly above every point
 * the broker knows (anchor, starts, checkpoints, releases, earlier proofs, redeemed ends). A vendor that holds no
 * fresh payword of the customer's (a garbage header, or one it saw before) therefore cannot take the coin.
 * Costs proof.index − highest SHA-256 steps, bounded by the chain's length (in the pool when long).
 */
function checkProof(work: HashWork, state: ChainState, proof: Point | undefined): Point {
  if (!proof) {
    throw new ProtocolError('invalid_payword', "a claim that opens a new epoch must carry the customer's payword");
  }
  const highest = highestKnownPoint(state);
  if (!Number.isSafeInteger(proof.index) || proof.index <= highest.index || proof.index > state.chain.length) {
    throw new ProtocolError(
      'invalid_payword',
      `the proof's index must be above ${highest.index} (the highest point the broker knows) and at most ${state.chain.length}`,
      { lastIndex: highest.index },
    );
  }
  if (!work.verify(state.chain.chain_id, highest, proof)) {
    throw new ProtocolError('invalid_payword', 'the proof does not verify against the chain');
  }
  return { index: proof.index, payword: proof.payword };
}

/** A chain the broker is taking back for a refund can no longer be claimed by vendors. */
export function refuseUnlessActive(state: ChainState | undefined): asserts state is ChainState {
  if (!state) throw new ProtocolError('unknown_chain', 'the broker does not know this chain', undefined, 404);
  if (state.chain.status !== 'active') {
    throw new ProtocolError('chain_refunding', `the chain is ${state.chain.status.replace('_', ' ')}`);
  }
}

function lowerBound(existing: number | null, index: number): number {
  return existing === null ? index : Math.min(existing, index);
}

async function renew(deps: BrokerDeps, trx: BrokerTx, state: ChainState, epoch: EpochRow, now: Date): Promise<void> {
  const { issuedAt, expiresAt } = leaseTimes(now, deps.config.leaseTtlSeconds);
  const holder = holderCertificate(
    {
      chainId: epoch.chain_id,
      epoch: epoch.epoch,
      vendorId: epoch.vendor_id,
      prevVendorId: epoch.prev_vendor_id,
      prevEpoch: epoch.prev_epoch,
      issuedAt,
      expiresAt,
    },
    deps.config.publicUrl,
    await activeSigningKey(trx),
  );
  await updateEpoch(trx, state, epoch, {
    issued_at: issuedAt,
    lease_expires_at: expiresAt,
    holder: JSON.stringify(holder),
  });
}

/**
 * A holder that could not reach its predecessor repeats the claim; once the predecessor's lease has run out
 * (it cannot renew a superseded epoch) the broker fixes the start at the highest point it knows.
 */
async function forceStartIfPredecessorExpired(
  trx: BrokerTx,
  state: ChainState,
  epoch: EpochRow,
  now: Date,
): Promise<void> {
  if (epoch.start_kind !== null) return;
  const previous = state.epochs.get(epoch.epoch - 1);
  if (!previous || leaseValid(previous, now)) return;
  const start = await forcedStartBelowClaim(trx, state, epoch);
  await updateEpoch(trx, state, epoch, {
    start_index: start.index,
    start_payword: start.payword,
    start_kind: 'forced',
  });
  await updateEpoch(trx, state, previous, { forced_bound: lowerBound(previous.forced_bound, start.index) });
  // What the previous holder (and any before it) kept beyond it reached the next claim (below it, its ends count in
  // the start), so it was held from payout (settlement.ts `contested`): taken back now, it costs the broker nothing.
  const evidence = JSON.stringify({ forcedStart: start });
  await takeBackEarlierBeyond(trx, state, epoch.epoch, start.index, evidence, rfc3339(now));
}

/**
 * The forced start of an epoch whose claim carried the customer's payword: the highest point the broker knows below
 * that payword, and at least what the holders before showed they were paid to. A point at or past it is the
 * previous holder's own word after the move (its own release, a range ending there): it may be a double spend the
 * customer handed it, and starting there would give the next holder's units to it.
 *
 * But never below an earlier epoch's known start, even one at or past the claim (epochs start in order): a wallet
 * that showed this holder a stale payword may have paid the holders before it further, and the previous epoch's start
 * there means its predecessor ended there and may have been paid out for it. Below it, taking back what that
 * predecessor kept would leave an honest vendor in debt (found by a review of the later-start rule).
 */
async function forcedStartBelowClaim(trx: BrokerTx, state: ChainState, epoch: EpochRow): Promise<Point> {
  const below = epoch.claim_index ?? Number.POSITIVE_INFINITY;
  const best = highestKnownPoint(state, epoch.epoch, below);
  const shown = await shownPaidBefore(trx, state, epoch.epoch);
  const start = shown.index < below && shown.index > best.index ? shown : best;
  const earlier = highestEarlierStart(state, epoch.epoch);
  return earlier && earlier.index > start.index ? earlier : start;
}

async function responseFor(trx: BrokerTx, state: ChainState, epoch: EpochRow): Promise<ClaimResponse> {
  let previous: PreviousHolder | null = null;
  if (epoch.prev_vendor_id !== '') {
    const vendor = await findVendor(trx, epoch.prev_vendor_id);
    previous = { vendorId: epoch.prev_vendor_id, releaseUrl: vendor?.release_url ?? '', epoch: epoch.prev_epoch };
  }
  const start =
    epoch.start_kind === 'forced' && epoch.start_index !== null && epoch.start_payword !== null
      ? { index: epoch.start_index, payword: epoch.start_payword }
      : null;
  return {
    touchstone: JSON.parse(state.chain.touchstone) as Touchstone,
    holder: JSON.parse(epoch.holder),
    previous,
    start,
  };
}

/**
 * `POST {api}/chains/{chainId}/claim` for a vendor: one transaction with the chain's row locked, so
 * concurrent claims leave exactly one holder per epoch.
 */
export async function claimChain(
  deps: BrokerDeps,
  chainId: string,
  vendorId: string,
  proof?: Point,
): Promise<ClaimResponse> {
  return withHashWork(deps.hasher, (work) =>
    deps.db.transaction().execute(async (trx) => {
      const state = await loadChainState(trx, deps.engine, chainId);
      refuseUnlessActive(state);
      refuseForeignClaim(state, vendorId);
      return (await claimInTransaction(deps, trx, state, vendorId, { proof, work })).response;
    }),
  );
}
