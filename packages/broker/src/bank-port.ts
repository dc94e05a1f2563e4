/**
 * The broker's view of its bank: three money operations, each with a client-made idempotency key, and saving a
 * card; each answers with a result union. A bank that cannot be reached (timeout, connection refused, 5xx)
 * is not a result but a `BankUnavailable` thrown by the adapter: the caller writes nothing and the
 * client may retry with the same key.
 */
export interface Bank {
  charge(request: ChargeRequest, idempotencyKey: string): Promise<ChargeResult>;
  /** Saves a card for later charges by token; the broker keeps only the token (sealed) and the last 4 digits. */
  saveCard(card: CardDetails): Promise<SaveCardResult>;
  refund(request: RefundRequest, idempotencyKey: string): Promise<RefundResult>;
  payout(request: PayoutRequest, idempotencyKey: string): Promise<PayoutResult>;
}

export interface CardDetails {
  number: string;
  expiry: string;
  cvc: string;
}

/** A charge of a card given by its details, or of a saved card by its token. */
export type ChargeRequest = {
  amount: number;
  currency: string;
  description?: string;
} & ({ card: CardDetails; cardToken?: undefined } | { cardToken: string; card?: undefined });

export type SaveCardResult =
  | { ok: true; cardToken: string; last4: string }
  | { ok: false; code: 'card_declined' | 'invalid_card'; detail?: string };

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
