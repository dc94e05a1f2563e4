/**
 * A coin purchase between the card charge and the coin: the rules that decide what becomes of it, pure.
 *
 * The broker writes an attempt (committed on its own) before it asks the bank for the money, and closes it in
 * the same transaction as the coin. An attempt left open means the broker stopped between the two (a crash, a
 * timeout, a customer who gave up); the reconciler asks the bank what happened under the attempt's key and
 * settles it by these rules.
 */
import type { CardDetails, ChargeResult } from './bank-port.ts';

/**
 * charging: the bank may have been asked and no coin exists yet · completed: the coin exists · declined: the bank
 * refused the card · abandoned: the bank holds no charge under the key · refunded: charged, but no coin could be
 * made (the client's chainId was taken), so the charge went back to the card.
 */
export type PurchaseAttemptStatus = 'charging' | 'completed' | 'declined' | 'abandoned' | 'refunded';

/** What a purchase asked for: everything a same-key retry needs except the card's secret digits. */
export interface PurchaseAttempt {
  customerId: string;
  idempotencyKey: string;
  /** The broker's `requestFingerprint` of the purchase request. */
  fingerprint: string;
  /** The Idempotency-Key the charge was sent to the bank under. */
  bankKey: string;
  amount: number;
  unit: number;
  currency: string;
  /** The client's own chain (both or neither); absent when the broker makes the chain. */
  chainId?: string;
  anchor?: string;
  /** Not secret (receipts print them) and all the bank needs to recognise the request as the same one. */
  cardLast4: string;
  cardExpiry: string;
}

/** An attempt as stored, with where it stands. */
export interface StoredPurchaseAttempt extends PurchaseAttempt {
  status: PurchaseAttemptStatus;
  chargeId?: string;
  createdAt: string;
  /** When the broker last sent the charge (a retry moves it): the grace period counts from here. */
  updatedAt: string;
}

/** What the bank holds under an attempt's key. */
export type ChargeProbe =
  | { kind: 'charged'; chargeId: string; amount: number }
  | { kind: 'declined' }
  | { kind: 'absent' }
  /** The bank knows the key for another request: not something the broker sends, so a person must look. */
  | { kind: 'mismatch' };

/** What the reconciler does with an open attempt. */
export type Settlement =
  | { action: 'issue'; chargeId: string }
  | { action: 'close'; status: 'declined' | 'abandoned' }
  | { action: 'hold'; reason: string };

/**
 * The card the reconciler re-sends a charge with, so that the bank answers what it stored under the key and
 * never charges anything new. The bank recognises a repeat by amount, currency, description, the last four
 * digits and the expiry (not the full number, which the broker does not keep); a request it has not seen is
 * checked as a card first, and this number (a word before the digits) fails that check, so the bank refuses it
 * as `invalid_card` and records nothing.
 *
 * @example
 * probeCard('4242', '12/30'); // { number: 'probe-4242', expiry: '12/30', cvc: '000' }
 */
export function probeCard(cardLast4: string, cardExpiry: string): CardDetails {
  return { number: `probe-${cardLast4}`, expiry: cardExpiry, cvc: '000' };
}

/**
 * Reads the bank's answer to a probe.
 *
 * @example
 * probeFromCharge({ ok: false, code: 'invalid_card' }); // { kind: 'absent' }
 */
export function probeFromCharge(result: ChargeResult): ChargeProbe {
  if (result.ok) return { kind: 'charged', chargeId: result.chargeId, amount: result.amount };
  switch (result.code) {
    case 'card_declined':
    case 'insufficient_funds':
      return { kind: 'declined' };
    case 'invalid_card':
      return { kind: 'absent' };
    case 'idempotency_conflict':
      return { kind: 'mismatch' };
  }
}

/**
 * Whether an open attempt is old enough to reconcile: younger ones may still have their charge in flight (the
 * bank can commit a request the broker stopped waiting for), so the grace must exceed the bank timeout.
 */
export function isDue(attempt: Pick<StoredPurchaseAttempt, 'status' | 'updatedAt'>, now: Date, graceMs: number) {
  return attempt.status === 'charging' && Date.parse(attempt.updatedAt) + graceMs <= now.getTime();
}

/**
 * What to do with an open attempt once the bank has said what it holds under the key.
 *
 * @example
 * settlementOf({ amount: 200 }, { kind: 'charged', chargeId: 'ch_1', amount: 200 }); // { action: 'issue', chargeId: 'ch_1' }
 */
export function settlementOf(attempt: Pick<PurchaseAttempt, 'amount'>, probe: ChargeProbe): Settlement {
  switch (probe.kind) {
    case 'charged':
      // The bank took this much under the key; a coin of another value would not match the money.
      if (probe.amount !== attempt.amount) {
        return { action: 'hold', reason: `the bank charged ${probe.amount}, the purchase was for ${attempt.amount}` };
      }
      return { action: 'issue', chargeId: probe.chargeId };
    case 'declined':
      return { action: 'close', status: 'declined' };
    case 'absent':
      return { action: 'close', status: 'abandoned' };
    case 'mismatch':
      return { action: 'hold', reason: 'the bank holds this key for another request' };
  }
}

/**
 * What a purchase request does when an attempt with its key already exists: the same request goes on (the bank
 * answers a repeat from what it stored, so it is never charged twice), another request under the key is a
 * conflict, and a purchase whose money was given back stays given back.
 */
export function repeatOf(
  existing: Pick<StoredPurchaseAttempt, 'status' | 'fingerprint'>,
  fingerprint: string,
): 'proceed' | 'conflict' | 'refunded' {
  if (existing.fingerprint !== fingerprint) return 'conflict';
  return existing.status === 'refunded' ? 'refunded' : 'proceed';
}
