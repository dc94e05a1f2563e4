import { b64uDecode, b64uEncode, paywordAt, type RedemptionItem } from '@netpay/protocol';

/*
 * §5 v1.1: once a later epoch exists, a redemption of an epoch may not pass its end. An honest vendor whose epoch
 * was superseded by a *forced* claim (it could not be reached for a release, and its lease ran out) holds payments
 * above that end: the units the customer paid it after its last checkpoint, which the contract gives to the next
 * holder. The broker refuses a range that passes the end as a whole (`beyond_release`) and does not say where the end
 * is. Taking that refusal as the range's answer would lose the units *below* the end too: everything since the
 * vendor's last redemption. So the vendor looks for the end itself: it redeems the range clipped at a midpoint, keeps
 * what is accepted and halves again, until the highest index the broker accepts is found (log2 of the range's
 * length in requests). Only the units above the end are then given up. The paywords of the clipped ends are hashed
 * down from the range's end, which the vendor holds.
 */

/** Hash steps between two yields to the event loop while a clipped end's payword is derived. */
export const STEPS_PER_TURN = 4096;

/** A point of the chain, as the wire carries it. */
export interface WirePoint {
  index: number;
  payword: string;
}

/**
 * The payword at `index`, hashed down from a known later point of the chain (`above.index` ≥ `index`), giving the
 * event loop back every `STEPS_PER_TURN` steps so that a long range never holds it.
 *
 * @example
 * await paywordBelow(chainIdBytes, { index: 120, payword: w120 }, 100); // w100
 */
export async function paywordBelow(chainId: Uint8Array, above: WirePoint, index: number): Promise<string> {
  let at = above.index;
  let word = b64uDecode(above.payword, 32);
  while (at > index) {
    const next = Math.max(index, at - STEPS_PER_TURN);
    word = paywordAt(chainId, word, at, next);
    at = next;
    if (at > index) await new Promise((resolve) => setImmediate(resolve));
  }
  return b64uEncode(word);
}

/** What the broker answered one clipped range. */
export type ClippedAnswer =
  | 'accepted'
  /** Still past the end: the end is lower. */
  | 'beyond_release'
  /** Refused for another reason (overlap, a refund…): the search stops, what was accepted stays. */
  | 'rejected'
  /** Not answered: the search stops, and a later run starts it again from the durable state. */
  | 'unreachable';

/** Where the search ended: the point the epoch is now redeemed to, and whether the broker answered throughout. */
export interface BoundSearch {
  redeemedTo: WirePoint;
  answered: boolean;
}

/**
 * Redeems as much of `item` as the broker accepts, for a range it refused `beyond_release`: a binary search on the
 * range's end, each probe a real redemption of [redeemed point, probe] through `redeem` (which stores and sends it
 * like any batch). The range's start may carry the epoch's start release; only the first accepted probe needs it.
 *
 * @example
 * const { redeemedTo } = await redeemUpToBound(item, chainIdBytes, (probe) => sendOne(probe));
 */
export async function redeemUpToBound(
  item: RedemptionItem,
  chainId: Uint8Array,
  redeem: (probe: RedemptionItem) => Promise<ClippedAnswer>,
): Promise<BoundSearch> {
  let from: WirePoint = { index: item.from.index, payword: item.from.payword };
  let fromRelease = item.from.release;
  // The lowest point known to pass the end (or the range's own end), from which the next probe's payword is hashed.
  let above: WirePoint = { index: item.to.index, payword: item.to.payword };
  let lo = from.index + 1;
  let hi = item.to.index - 1;
  while (lo <= hi) {
    const mid = lo + Math.floor((hi - lo + 1) / 2);
    const payword = await paywordBelow(chainId, above, mid);
    const probe: RedemptionItem = {
      chainId: item.chainId,
      epoch: item.epoch,
      from: fromRelease ? { ...from, release: fromRelease } : { ...from },
      to: { index: mid, payword },
    };
    const answer = await redeem(probe);
    if (answer === 'accepted') {
      from = { index: mid, payword };
      fromRelease = undefined;
      lo = mid + 1;
    } else if (answer === 'beyond_release') {
      above = { index: mid, payword };
      hi = mid - 1;
    } else {
      return { redeemedTo: from, answered: answer === 'rejected' };
    }
  }
  return { redeemedTo: from, answered: true };
}
