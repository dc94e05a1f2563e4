/**
 * When a vendor's credit is settled, i.e. safe to pay out of the broker. Pure: the payout run gathers the rows.
 *
 * A credit can still be taken back while the broker may learn a release statement, signed by the vendor, for the
 * epoch it redeemed, at an index below what it redeemed (`take-back.ts`). That can happen only while the epoch's
 * end is unknown: once the broker holds the epoch's release, or has bounded it by a forced claim, or the chain is
 * refunded, every later redemption is checked against that end instead. So a credit is held while its epoch's end
 * is unknown, but no longer than the settlement window: a release that never reaches the broker must not keep a
 * vendor unpaid for ever, and a take-back after the window is a debt the vendor's next credits pay first.
 */

/** One redeemed range of a vendor, with what the broker knows of its epoch. */
export interface RedeemedCredit {
  gross: number;
  fee: number;
  takenBackGross: number;
  takenBackFee: number;
  /** RFC 3339, when the range was redeemed. */
  createdAt: string;
  /** The epoch's end is known (release or forced bound held, or the chain refunded). */
  epochEndKnown: boolean;
  /** The range reaches the next holder's claim while the next epoch's start is unknown (`contested`). */
  contested: boolean;
}

/**
 * A range of a superseded epoch that reaches the payword the next holder's claim carried, while the next epoch's
 * start is unknown: its vendor may have ended the epoch there itself, with a release of its own, holding a double
 * spend the customer handed it after moving. The next holder may yet report the lower release it started from; the
 * range's units above it would then be taken back after a payout (leaving only a debt) and paid to the next holder.
 * So the whole range is held until the next start is known, however long: the settlement window would let it be
 * paid. An honest vendor's range reaches the claim only in a race (a wallet paying two sites at once) and settles
 * when the next holder reports its start, which its SDK does at once and retries until the broker has it.
 *
 * @example
 * contested({ keptTo: 70, nextStart: null, nextClaim: 51 }); // true
 */
export function contested(facts: {
  keptTo: number | null | undefined;
  nextStart: number | null | undefined;
  nextClaim: number | null | undefined;
}): boolean {
  const { keptTo, nextStart, nextClaim } = facts;
  if (keptTo == null || nextClaim == null || nextStart != null) return false;
  return keptTo >= nextClaim;
}

/** The epoch and chain columns that tell whether an epoch's end is known; undefined when the row is missing. */
export interface EpochEndFacts {
  releaseIndex: number | null | undefined;
  forcedBound: number | null | undefined;
  chainStatus: string | null | undefined;
}

export function epochEndKnown(facts: EpochEndFacts): boolean {
  return (
    (facts.releaseIndex !== null && facts.releaseIndex !== undefined) ||
    (facts.forcedBound !== null && facts.forcedBound !== undefined) ||
    facts.chainStatus === 'refunded'
  );
}

export interface SettlementInput {
  /** The vendor's ledger balance, credit-positive (what the broker owes it; negative when it owes a take-back). */
  balance: number;
  /** The sum of the vendor's payouts recorded but not yet settled with the bank. */
  pendingPayouts: number;
  /** The vendor's redeemed ranges; the caller may leave out ranges older than the window. */
  credits: readonly RedeemedCredit[];
  now: Date;
  settlementWindowSeconds: number;
}

export interface Settlement {
  /** Net credit (after fees and take-backs) on epochs whose end is unknown, redeemed within the window. */
  held: number;
  /** What may be paid out now: never below zero. */
  payable: number;
}

/**
 * payable = balance − pending payouts − held, floored at zero.
 *
 * @example
 * settle({ balance: 980, pendingPayouts: 0, credits: [], now: new Date(), settlementWindowSeconds: 86400 });
 * // → { held: 0, payable: 980 }
 */
export function settle(input: SettlementInput): Settlement {
  if (!Number.isSafeInteger(input.settlementWindowSeconds) || input.settlementWindowSeconds < 0) {
    throw new Error('settlementWindowSeconds must be a non-negative integer');
  }
  const windowStartMs = input.now.getTime() - input.settlementWindowSeconds * 1000;
  let held = 0;
  for (const c of input.credits) {
    // A range's kept net is never negative; were a row ever so, it must not lower what other ranges hold.
    const keptNet = Math.max(0, c.gross - c.takenBackGross - (c.fee - c.takenBackFee));
    if (c.contested) {
      held += keptNet;
      continue;
    }
    if (c.epochEndKnown) continue;
    const createdMs = Date.parse(c.createdAt);
    if (Number.isNaN(createdMs)) throw new Error(`settlement: unreadable time ${c.createdAt}`);
    if (createdMs > windowStartMs) held += keptNet;
  }
  const payable = Math.max(0, input.balance - input.pendingPayouts - held);
  if (!Number.isSafeInteger(held) || !Number.isSafeInteger(payable)) throw new Error('settlement: amount overflow');
  return { held, payable };
}
