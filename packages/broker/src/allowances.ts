/**
 * §7 v1.1 allowances, pure: how far a connected site may spend a connection chain next. The vendor holds w_a and
 * nothing else, so a − (the point it spent to) is all it can ever take; these rules keep that outstanding part at
 * most `allowanceMaxUnits` and within the customer's caps, and decide when the connection moves to a new chain.
 * Amounts of money are minor units; indexes and allowances are units of the chain (connection chains have unit 1,
 * but nothing here assumes it).
 */

export interface AllowanceInputs {
  /** The chain the connection uses now; null before its first chain. */
  chain: {
    length: number;
    unit: number;
    /** Active and not expired: it may carry a further allowance. */
    usable: boolean;
  } | null;
  /** The point the vendor reports spent (or the highest the broker knows, for a grant), on the current chain. */
  spent: number;
  /** The chain's current allowance index (≥ spent); `spent` when none was granted yet. */
  allowance: number;
  allowanceMaxMinor: number;
  /** What the caps leave: min(site cap − this month's net grants, daily cap − today's net grants across sites). */
  capLeftMinor: number;
  /** Which cap is the lower one, for the customer's message. */
  capKind: 'site' | 'daily';
  /** The customer's balance outside any chain. */
  accountMinor: number;
  blockMinor: number;
  /** Whether an automatic top-up may still be tried for this request. */
  topUpPossible: boolean;
}

export type AllowanceDecision =
  /** Raise the allowance on the current chain to `index`. */
  | { kind: 'extend'; index: number }
  /** A full allowance is already outstanding: answer it again (a repeated request gets the same answer). */
  | { kind: 'keep' }
  /**
   * End the current chain at `spent` (its unspent part, allowance included, goes back to the balance), fund a new
   * chain of `blockMinor` from the balance and allow `index` on it.
   */
  | { kind: 'switch'; blockMinor: number; index: number }
  /** Try the automatic top-up, then decide again. */
  | { kind: 'top_up' }
  | { kind: 'limit_reached'; cap: 'site' | 'daily' }
  | { kind: 'balance_exhausted' };

/**
 * The next allowance of a connection.
 * - On the current chain while it can carry a full allowance: a' = min(spent + max, a + caps left); a' > a grants
 *   the difference; none left with a full allowance outstanding repeats it; otherwise a cap binds.
 * - When the chain cannot carry a full allowance (or is spent, expired or missing) and the balance holds money,
 *   the connection moves to a new chain: what the vendor had left on the old one comes back and counts against
 *   the caps no more.
 * - With no money off the chain, the automatic top-up is tried once; after that the chain's last units are
 *   allowed, then the balance is exhausted.
 *
 * @example
 * decideAllowance({ chain: { length: 200, unit: 1, usable: true }, spent: 45, allowance: 50, allowanceMaxMinor: 50,
 *   capLeftMinor: 450, capKind: 'site', accountMinor: 300, blockMinor: 200, topUpPossible: false });
 * // { kind: 'extend', index: 95 }
 */
export function decideAllowance(i: AllowanceInputs): AllowanceDecision {
  const capLeft = Math.max(0, i.capLeftMinor);
  if (i.chain?.usable) {
    const { length, unit } = i.chain;
    const full = Math.floor(i.allowanceMaxMinor / unit);
    const outstanding = i.allowance - i.spent;
    const onChain = Math.min(i.spent + full, i.allowance + Math.floor(capLeft / unit));
    if (length - i.spent >= full) {
      if (onChain > i.allowance) return { kind: 'extend', index: onChain };
      if (outstanding >= full) return { kind: 'keep' };
      return { kind: 'limit_reached', cap: i.capKind };
    }
    const moved = switchTo(i, (length - i.spent) * unit, outstanding * unit, capLeft);
    if (moved) return moved;
    if (i.accountMinor === 0 && i.topUpPossible) return { kind: 'top_up' };
    const last = Math.min(onChain, length);
    if (last > i.allowance) return { kind: 'extend', index: last };
    if (Math.floor(capLeft / unit) === 0 && length > i.allowance) return { kind: 'limit_reached', cap: i.capKind };
    return { kind: 'balance_exhausted' };
  }
  // No chain, or one that can carry nothing more: whatever is left of it comes back with the move.
  const tailMinor = i.chain ? Math.max(0, i.chain.length - i.spent) * i.chain.unit : 0;
  const returnedMinor = i.chain ? Math.max(0, i.allowance - i.spent) * i.chain.unit : 0;
  const moved = switchTo(i, tailMinor, returnedMinor, capLeft);
  if (moved) return moved;
  if (i.accountMinor + tailMinor === 0 && i.topUpPossible) return { kind: 'top_up' };
  if (i.accountMinor + tailMinor > 0 && capLeft + returnedMinor === 0) return { kind: 'limit_reached', cap: i.capKind };
  return { kind: 'balance_exhausted' };
}

/**
 * A move to a new chain, if it gives the vendor more than it holds now: block = min(balance with the old chain's
 * tail, blockMinor); a' = min(max, caps left with the returned allowance, block). Undefined when it would not help.
 * A balance too small for a full allowance waits for the automatic top-up first, when one may be tried.
 */
function switchTo(
  i: AllowanceInputs,
  tailMinor: number,
  returnedMinor: number,
  capLeftMinor: number,
): AllowanceDecision | undefined {
  if (i.accountMinor === 0) return undefined;
  if (i.accountMinor + tailMinor < i.allowanceMaxMinor && i.topUpPossible) return { kind: 'top_up' };
  const blockMinor = Math.min(i.accountMinor + tailMinor, i.blockMinor);
  const index = Math.min(i.allowanceMaxMinor, capLeftMinor + returnedMinor, blockMinor);
  if (index <= returnedMinor || index <= 0) return undefined;
  return { kind: 'switch', blockMinor, index };
}

/** Spending this calendar month (UTC) and today, summed for the caps: grants count, returns take back. */
export interface CapUsage {
  siteMonthMinor: number;
  dailyMinor: number;
}

/** What the caps leave and which one binds. Returns never make a cap larger than it is. */
export function capLeft(
  limits: { siteCapMinor: number; dailyCapMinor: number },
  usage: CapUsage,
): { leftMinor: number; kind: 'site' | 'daily' } {
  const site = limits.siteCapMinor - Math.max(0, usage.siteMonthMinor);
  const daily = limits.dailyCapMinor - Math.max(0, usage.dailyMinor);
  return site <= daily
    ? { leftMinor: Math.max(0, site), kind: 'site' }
    : { leftMinor: Math.max(0, daily), kind: 'daily' };
}
