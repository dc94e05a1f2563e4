import { constantTimeEqual, type ErrorCode, verifyPayword } from '@netpay/protocol';

/** A point of a chain the vendor has verified: w_index. */
export interface KnownPoint {
  index: number;
  payword: Uint8Array;
}

/** What the payment rules need to know about a chain at this vendor (a snapshot; no I/O). */
export interface ChainView {
  chainId: Uint8Array;
  unit: number;
  length: number;
  currency: string;
  expiresAtMs: number;
  /** The highest index this vendor knows spent, and its payword. */
  lastIndex: number;
  lastPayword: Uint8Array;
  /** The resource of the payment that reached lastIndex at this vendor, if one did. */
  lastResource: string | null;
  /** Every verified point (anchor, epoch starts, releases, payments) for entitlement checks. */
  knownPoints: readonly KnownPoint[];
  /** Whether the chain has bought this resource here before. */
  entitled(resource: string): boolean;
  /** True when this vendor holds a valid lease with a known start, so it may take a payment now. */
  accepting: boolean;
}

/** Counts the hash steps spent verifying presented paywords, so bounded work per request can be observed. */
export interface WorkMeter {
  hashSteps: number;
}

/**
 * §4 v1.1: how far beyond its last index a vendor verifies a payword by default, and the least it may be set to.
 * An honest wallet pays price / unit steps ahead; a resynchronising one is told the vendor's last index.
 */
export const DEFAULT_MAX_STEPS_AHEAD = 1000;
export const MIN_MAX_STEPS_AHEAD = 1000;

/** The context of the §4 checks: the clock, the vendor's currency and its bound on work per request. */
export interface PaymentContext {
  nowMs: number;
  currency: string;
  /** Hash steps a payword may lie beyond the last index (default `DEFAULT_MAX_STEPS_AHEAD`). */
  maxStepsAhead?: number;
  meter?: WorkMeter;
}

/** Limits on one verification: the most hash steps it may take, and where to count them. */
export interface VerifyLimits {
  maxSteps?: number;
  meter?: WorkMeter | undefined;
}

/** A presented payment: the parsed Authorization header plus what is being bought. */
export interface PresentedPayment {
  index: number;
  payword: Uint8Array;
  resource: string;
  priceMinor: number;
}

/** The outcome of the §4 checks; expected failures are values. */
export type PaymentCheck =
  | { kind: 'retry' }
  | { kind: 'entitled' }
  | { kind: 'pay'; units: number; amountMinor: number }
  | { kind: 'claim' }
  | { kind: 'reject'; code: ErrorCode; detail: string; extra?: Record<string, unknown> };

/**
 * True when w_index verifies against the nearest known point at or below it (equality at a known index). This is
 * how a chain proves it is the one that reached a point, for retries and entitlements. `limits.maxSteps` refuses
 * (false) a point further than that from every known point below it, without hashing.
 */
export function verifiesAtOrBelow(
  chainId: Uint8Array,
  points: readonly KnownPoint[],
  index: number,
  payword: Uint8Array,
  limits: VerifyLimits = {},
): boolean {
  let best: KnownPoint | undefined;
  for (const p of points) {
    if (p.index === index) return constantTimeEqual(p.payword, payword);
    if (p.index < index && (!best || p.index > best.index)) best = p;
  }
  if (!best) return false;
  return verifyBounded(chainId, best, { index, payword }, limits);
}

/** `verifyPayword` that refuses before hashing beyond `maxSteps` and counts the steps it hashes. */
function verifyBounded(chainId: Uint8Array, known: KnownPoint, presented: KnownPoint, limits: VerifyLimits): boolean {
  const steps = presented.index - known.index;
  const maxSteps = limits.maxSteps ?? Number.MAX_SAFE_INTEGER;
  if (steps <= 0 || steps > maxSteps) return false;
  if (limits.meter) limits.meter.hashSteps += steps;
  return verifyPayword({ chainId, known, presented, maxSteps: steps });
}

/**
 * The §4 rules as a pure function, in the order the protocol lists them: free re-reads first (retry of the last
 * payment for the same resource, entitlement), then expiry, currency, whole units, chain length, already spent,
 * too far ahead, lease (answer `claim` when the vendor must claim first and ask again), amount, and the payword
 * itself.
 *
 * Work is bounded before any hashing (§4 v1.1): a payword more than `maxStepsAhead` beyond the last index is
 * `too_far_ahead` with `lastIndex`, so every request costs at most that many hashes. The bound is never below the
 * price in units, or the vendor could not be paid for its own price. A payword that does not verify against what
 * the vendor already knows is refused before any claim, so a forged header cannot make a chain move here.
 *
 * @example
 * const check = checkPayment(view, { index: 3, payword, resource: 'GET /a/1', priceMinor: 1 }, { nowMs, currency: 'NZD' });
 */
export function checkPayment(view: ChainView, pay: PresentedPayment, ctx: PaymentContext): PaymentCheck {
  const k = pay.index;
  const last = view.lastIndex;
  const maxStepsAhead = ctx.maxStepsAhead ?? DEFAULT_MAX_STEPS_AHEAD;
  if (k <= last) {
    if (k === last && view.lastResource === pay.resource && constantTimeEqual(view.lastPayword, pay.payword)) {
      return { kind: 'retry' };
    }
    const limits = { maxSteps: maxStepsAhead, meter: ctx.meter };
    if (view.entitled(pay.resource) && verifiesAtOrBelow(view.chainId, view.knownPoints, k, pay.payword, limits)) {
      return { kind: 'entitled' };
    }
  }
  if (ctx.nowMs >= view.expiresAtMs) return reject('chain_expired', 'the chain has expired');
  if (view.currency !== ctx.currency) {
    return reject('currency_mismatch', `the chain is in ${view.currency}; this vendor takes ${ctx.currency}`);
  }
  if (pay.priceMinor % view.unit !== 0) {
    return reject('insufficient_amount', `price ${pay.priceMinor} is not a whole number of units of ${view.unit}`);
  }
  const units = pay.priceMinor / view.unit;
  if (k > view.length || last + units > view.length) {
    return reject(
      'chain_exhausted',
      `the chain has ${view.length - last} of ${view.length} units left; ${units} needed`,
    );
  }
  if (k <= last) return reject('already_spent', `index ${k} is not above ${last}`, { lastIndex: last });
  const bound = Math.max(maxStepsAhead, units);
  if (k - last > bound) {
    return reject(
      'too_far_ahead',
      `index ${k} is ${k - last} steps beyond this vendor's last index; at most ${bound}`,
      {
        lastIndex: last,
      },
    );
  }
  const known = { index: last, payword: view.lastPayword };
  const presented = { index: k, payword: pay.payword };
  const limits = { maxSteps: bound, meter: ctx.meter };
  if (!view.accepting) {
    // Refuse a forgery before claiming: a genuine w_k always verifies against any earlier point of its chain.
    if (!verifyBounded(view.chainId, known, presented, limits)) {
      return reject('invalid_payword', `payword for index ${k} does not verify`);
    }
    return { kind: 'claim' };
  }
  if (k - last < units) {
    return reject('insufficient_amount', `index ${k} pays ${k - last} units; the price is ${units}`);
  }
  if (!verifyBounded(view.chainId, known, presented, limits)) {
    return reject('invalid_payword', `payword for index ${k} does not verify`);
  }
  return { kind: 'pay', units: k - last, amountMinor: (k - last) * view.unit };
}

function reject(code: ErrorCode, detail: string, extra?: Record<string, unknown>): PaymentCheck {
  return extra ? { kind: 'reject', code, detail, extra } : { kind: 'reject', code, detail };
}

/** The receipt's balance: what is left on the chain in minor units, (length − last) × unit. */
export function balanceMinor(view: { length: number; unit: number }, lastIndex: number): number {
  return (view.length - lastIndex) * view.unit;
}
