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
 * how a chain proves it is the one that reached a point, for retries and entitlements.
 */
export function verifiesAtOrBelow(
  chainId: Uint8Array,
  points: readonly KnownPoint[],
  index: number,
  payword: Uint8Array,
): boolean {
  let best: KnownPoint | undefined;
  for (const p of points) {
    if (p.index === index) return constantTimeEqual(p.payword, payword);
    if (p.index < index && (!best || p.index > best.index)) best = p;
  }
  if (!best) return false;
  return verifyPayword({ chainId, known: best, presented: { index, payword } });
}

/**
 * The §4 rules as a pure function, in the order the protocol lists them: free re-reads first (retry of the last
 * payment for the same resource, entitlement), then expiry, currency, whole units, chain length, already spent,
 * lease (answer `claim` when the vendor must claim first and ask again), amount, and the payword itself.
 *
 * A payword that does not verify against what the vendor already knows is refused before any claim, so a forged
 * header cannot make a chain move here.
 *
 * @example
 * const check = checkPayment(view, { index: 3, payword, resource: 'GET /a/1', priceMinor: 1 }, { nowMs, currency: 'NZD' });
 */
export function checkPayment(
  view: ChainView,
  pay: PresentedPayment,
  ctx: { nowMs: number; currency: string },
): PaymentCheck {
  const k = pay.index;
  const last = view.lastIndex;
  if (k <= last) {
    if (k === last && view.lastResource === pay.resource && constantTimeEqual(view.lastPayword, pay.payword)) {
      return { kind: 'retry' };
    }
    if (view.entitled(pay.resource) && verifiesAtOrBelow(view.chainId, view.knownPoints, k, pay.payword)) {
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
  if (!view.accepting) {
    // Refuse a forgery before claiming: a genuine w_k always verifies against any earlier point of its chain.
    if (
      view.knownPoints.length > 0 &&
      !verifyPayword({
        chainId: view.chainId,
        known: { index: last, payword: view.lastPayword },
        presented: { index: k, payword: pay.payword },
      })
    ) {
      return reject('invalid_payword', `payword for index ${k} does not verify`);
    }
    return { kind: 'claim' };
  }
  if (k - last < units) {
    return reject('insufficient_amount', `index ${k} pays ${k - last} units; the price is ${units}`);
  }
  const ok = verifyPayword({
    chainId: view.chainId,
    known: { index: last, payword: view.lastPayword },
    presented: { index: k, payword: pay.payword },
  });
  if (!ok) return reject('invalid_payword', `payword for index ${k} does not verify`);
  return { kind: 'pay', units: k - last, amountMinor: (k - last) * view.unit };
}

function reject(code: ErrorCode, detail: string, extra?: Record<string, unknown>): PaymentCheck {
  return extra ? { kind: 'reject', code, detail, extra } : { kind: 'reject', code, detail };
}

/** The receipt's balance: what is left on the chain in minor units, (length − last) × unit. */
export function balanceMinor(view: { length: number; unit: number }, lastIndex: number): number {
  return (view.length - lastIndex) * view.unit;
}
