/**
 * The broker's view of its bank: three operations, each with a client-made idempotency key, each
 * answering with a result union. A bank that cannot be reached (timeout, connection refused, 5xx)
 * is not a result but a `BankUnavailable` thrown by the adapter: the caller writes nothing and the
 * client may retry with the same key.
 */
export interface Bank {
  charge(request: ChargeRequest, idempotencyKey: string): Promise<ChargeResult>;
  refund(request: RefundRequest, idempotencyKey: string): Promise<RefundResult>;
  payout(request: PayoutRequest, idempotencyKey: string): Promise<PayoutResult>;
}

export interface CardDetails {
  number: string;
  expiry: string;
  cvc: string;
}

export interface ChargeRequest {
  amount: number;
  currency: string;
  card: CardDetails;
  description?: string;
}

export type ChargeResult =
  | { ok: true; chargeId: string; amount: number }
  | {
      ok: false;
      code: 'card_declined' | 'insufficient_funds' | 'invalid_card' | 'idempotency_conflict';
      detail?: string;
    };

export interface RefundRequest {
  chargeId: string;
  amount: number;
}

export type RefundResult = { ok: true; refundId: string } | { ok: false; code: string; detail?: string };

export interface PayoutRequest {
  amount: number;
  currency: string;
  destination: string;
}

export type PayoutResult =
  | { ok: true; payoutId: string }
  | { ok: false; code: 'insufficient_funds' | 'rejected'; detail?: string };

/** The bank did not answer in time, refused the connection, or failed with a 5xx. */
export class BankUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BankUnavailable';
  }
}
