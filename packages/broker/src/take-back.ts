import { b64uDecode, type ErrorCode, Money, type ReleaseStatement, verifyRelease } from '@netpay/protocol';
import { type ChainState, type EpochRow, lowestLaterStart, pointOnChain, updateEpoch } from './chain-state.ts';
import { assertConserved } from './conservation.ts';
import { newId } from './ids.ts';
import { takeBackEntryOf } from './ledger.ts';
import { postEntry } from './ledger-store.ts';
import type { HashWork } from './hash-work.ts';
import { rangesKeptBeyond, shownPaidBefore } from './redeemed-ranges.ts';
import type { BrokerTx } from './schema.ts';

/**
 * Checks a release statement carried to the broker: it hands epoch e−1 of this chain from its holder to
 * (toVendorId, toEpoch), is signed with a key of the releasing vendor, and its payword lies on the chain.
 * Returns the rejection code, or null when it is good evidence. A release that is not good evidence leaves
 * `from` unproven, which PROTOCOL.md's item codes call `invalid_payword`.
 */
export async function checkRelease(
  work: HashWork,
  trx: BrokerTx,
  state: ChainState,
  release: ReleaseStatement,
  toVendorId: string,
  toEpoch: number,
): Promise<ErrorCode | null> {
  const previous = state.epochs.get(toEpoch - 1);
  if (
    !previous ||
    release.chainId !== state.chain.chain_id ||
    release.epoch !== previous.epoch ||
    release.vendorId !== previous.vendor_id ||
    release.toVendorId !== toVendorId ||
    release.toEpoch !== toEpoch
  ) {
    return 'invalid_payword';
  }
  const key = await trx
    .selectFrom('vendor_keys')
    .select('public_key')
    .where('vendor_id', '=', release.vendorId)
    .where('key_id', '=', release.keyId)
    .executeTakeFirst();
  if (!key || !verifyRelease(release, b64uDecode(key.public_key, 32))) return 'invalid_payword';
  if (!pointOnChain(work, state, { index: release.index, payword: release.payword })) return 'invalid_payword';
  return null;
}

/**
 * Records a verified release of `previous` (the epoch it ends): it bounds what that holder may redeem, gives
 * the next epoch its start if the broker did not know it, and takes back whatever the releasing vendor was
 * already paid beyond the released index (its own signature is the evidence). A second, different release
 * signed for the same epoch is equivocation: the lower one bounds the signer, what it was paid beyond it is taken
 * back, and the conflict is recorded with both statements; the next epoch's start, once known, stays where it is.
 */
export async function learnRelease(
  trx: BrokerTx,
  state: ChainState,
  previous: EpochRow,
  release: ReleaseStatement,
  at: string,
  /**
   * Who showed it: the next epoch's holder (it started from it: a checkpoint's or a range's `from.release`, or the
   * broker's own refund), or the releasing vendor itself, ending its epoch (`to.release`).
   */
  shownBy: 'next holder' | 'signer',
): Promise<void> {
  const known = previous.release;
  const evidence = JSON.stringify(release);
  if (known !== null && previous.release_index !== null && previous.release_payword !== null) {
    const same = release.index === previous.release_index && release.payword === previous.release_payword;
    if (!same) {
      await recordConflict(
        trx,
        previous,
        'equivocation',
        release.index,
        previous.release_index,
        0,
        JSON.stringify({ known: JSON.parse(known), presented: release }),
        at,
      );
    }
  }
  if (previous.release_index === null || release.index < previous.release_index) {
    await updateEpoch(trx, state, previous, {
      release_index: release.index,
      release_payword: release.payword,
      release: evidence,
    });
    await takeBackBeyond(trx, state, previous, release.index, evidence, at);
  }
  // The next epoch starts where this one ended, once, and never below what the holders before it said they had been
  // paid to (their claims' proofs, their checkpoints): a start the broker knows is never lowered, and a release below
  // those points is a lie that bounds and takes back from its signer while the next epoch starts at that point (as a
  // forced start would). The units between go to nobody. Handed to the next holder they would be paid twice
  // whenever the signer had been paid out (its debt is then all the broker holds): how a vendor and its partner
  // would turn one chain into more than its value. Nor is any start at or above the payword the next holder's claim
  // carried on the releasing vendor's own word: ending its epoch there, it would take units the customer paid the
  // next holder (a double spend handed to it, or a lie), so the true start is still to come; meanwhile its ranges
  // that reach the claim are held from payout (settlement.ts `contested`). On the next holder's word any start
  // stands: it started there (a wallet may show a payword below what it paid the previous holder when it moves).
  const next = state.epochs.get(previous.epoch + 1);
  const end = previous.release_index;
  if (next && end !== null && previous.release_payword !== null && next.start_kind === null) {
    const floor = await shownPaidBefore(trx, state, next.epoch);
    const start = end >= floor.index ? { index: end, payword: previous.release_payword } : floor;
    // Nor above a later epoch's start the broker already knows (epochs start in order: the later one began from
    // this epoch's end, so a start above it is a lie).
    const later = lowestLaterStart(state, next.epoch);
    const belowClaim = next.claim_index === null || start.index < next.claim_index || shownBy === 'next holder';
    if (belowClaim && (later === null || start.index <= later)) {
      await updateEpoch(trx, state, next, {
        start_index: start.index,
        start_payword: start.payword,
        start_kind: start.index === end ? 'release' : 'forced',
      });
      // The releasing epoch itself was bounded at its release, at or below this start: the ones before it remain.
      await takeBackEarlierBeyond(trx, state, previous.epoch, start.index, JSON.stringify({ start, release }), at);
    }
  }
  assertConserved(state);
}

/**
 * Takes back what every epoch before `before` kept beyond `start`, just learned as a later epoch's start. Epochs hold
 * the chain in order: an earlier holder's range past a later start holds units the customer paid the later holder,
 * and without this the later holder's own range would be refused as an overlap. Such a range reached its next
 * holder's claim while that start was unknown (every later start is at or above that claim's floor), so it was held
 * from payout (settlement.ts `contested`): taking it back costs the broker nothing.
 */
export async function takeBackEarlierBeyond(
  trx: BrokerTx,
  state: ChainState,
  before: number,
  start: number,
  evidence: string,
  at: string,
): Promise<void> {
  for (const earlier of [...state.epochs.values()]) {
    if (earlier.epoch < before) await takeBackBeyond(trx, state, earlier, start, evidence, at);
  }
}

async function recordConflict(
  trx: BrokerTx,
  epoch: EpochRow,
  kind: string,
  fromIndex: number,
  toIndex: number,
  amount: number,
  evidence: string,
  at: string,
): Promise<void> {
  await trx
    .insertInto('conflicts')
    .values({
      id: newId('cf'),
      chain_id: epoch.chain_id,
      epoch: epoch.epoch,
      vendor_id: epoch.vendor_id,
      kind,
      from_index: fromIndex,
      to_index: toIndex,
      amount,
      evidence,
      created_at: at,
    })
    .execute();
}

/**
 * Takes back from the epoch's holder every redeemed unit at or past `bound`, with a conflict record each. The
 * fee goes back in proportion to the gross (a range's fee was its share of the vendor's carried fee).
 */
export async function takeBackBeyond(
  trx: BrokerTx,
  state: ChainState,
  epoch: EpochRow,
  bound: number,
  evidence: string,
  at: string,
): Promise<void> {
  const unit = state.chain.unit;
  for (const range of await rangesKeptBeyond(trx, epoch, bound)) {
    const newKeptTo = Math.max(range.from_index, bound);
    const keptGross = range.gross - range.taken_back_gross;
    const keptFee = range.fee - range.taken_back_fee;
    const newGross = (newKeptTo - range.from_index) * unit;
    const proportionalFee =
      range.gross === 0 ? 0 : Number((BigInt(range.fee) * BigInt(newGross)) / BigInt(range.gross));
    const newFee = Math.min(keptFee, proportionalFee);
    const grossBack = keptGross - newGross;
    const feeBack = keptFee - newFee;
    await postEntry(
      trx,
      takeBackEntryOf(
        range.id,
        epoch.vendor_id,
        Money.of(grossBack, state.chain.currency),
        Money.of(feeBack, state.chain.currency),
      ),
      at,
    );
    const patch = {
      kept_to: newKeptTo,
      taken_back_gross: range.taken_back_gross + grossBack,
      taken_back_fee: range.taken_back_fee + feeBack,
    };
    await trx.updateTable('redeemed_ranges').set(patch).where('id', '=', range.id).execute();
    await updateEpoch(trx, state, epoch, { kept_gross: epoch.kept_gross - grossBack });
    await recordConflict(
      trx,
      epoch,
      'redeemed_past_release',
      newKeptTo,
      range.kept_to,
      grossBack - feeBack,
      evidence,
      at,
    );
    Object.assign(range, patch);
  }
}
