import { requestIdHeaders } from '@netpay/service-kit';
import {
  BankUnavailable,
  type Bank,
  type CardDetails,
  type ChargeRequest,
  type ChargeResult,
  type PayoutRequest,
  type PayoutResult,
  type RefundRequest,
  type RefundResult,
  type SaveCardResult,
} from './bank-port.ts';

export interface HttpBankOptions {
  /** The bank's base URL, e.g. http://127.0.0.1:4100 */
  url: string;
  apiKey: string;
  /** How long one call may take before the bank counts as unavailable (default 5 s). */
  timeoutMs?: number;
}

interface BankAnswer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * The `Bank` port over the sandbox bank's HTTP API (`/v1/charges`, `/v1/refunds`, `/v1/payouts`, `/v1/cards`).
 *
 * @example
 * const bank = new HttpBank({ url: 'http://127.0.0.1:4100', apiKey, timeoutMs: 5000 });
 * const result = await bank.charge({ amount: 200, currency: 'NZD', card }, 'coin-…');
 */
export class HttpBank implements Bank {
  readonly #url: string;
  readonly #apiKey: string;
  readonly #timeoutMs: number;

  constructor(options: HttpBankOptions) {
    this.#url = options.url.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  async charge(request: ChargeRequest, idempotencyKey: string): Promise<ChargeResult> {
    const { status, body } = await this.#post('/v1/charges', request, idempotencyKey);
    if (status === 200 || status === 201) {
      if (typeof body.id !== 'string') throw new BankUnavailable('bank answered a charge without an id');
      return { ok: true, chargeId: body.id, amount: Number(body.amount) };
    }
    const code = typeof body.code === 'string' ? body.code : '';
    const detail = typeof body.detail === 'string' ? body.detail : undefined;
    if (status === 402) {
      const declined = code === 'insufficient_funds' ? 'insufficient_funds' : 'card_declined';
      return { ok: false, code: declined, ...(detail ? { detail } : {}) };
    }
    if (status === 400) return { ok: false, code: 'invalid_card', ...(detail ? { detail } : {}) };
    if (status === 422) return { ok: false, code: 'idempotency_conflict', ...(detail ? { detail } : {}) };
    throw new Error(`bank refused the charge: ${status} ${code} ${detail ?? ''}`);
  }

  async saveCard(card: CardDetails): Promise<SaveCardResult> {
    const { status, body } = await this.#post('/v1/cards', { card });
    if (status === 201 || status === 200) {
      if (typeof body.cardToken !== 'string' || typeof body.last4 !== 'string') {
        throw new BankUnavailable('bank answered a saved card without a token');
      }
      return { ok: true, cardToken: body.cardToken, last4: body.last4 };
    }
    const detail = typeof body.detail === 'string' ? body.detail : undefined;
    if (status === 402) return { ok: false, code: 'card_declined', ...(detail ? { detail } : {}) };
    if (status === 400) return { ok: false, code: 'invalid_card', ...(detail ? { detail } : {}) };
    throw new Error(`bank refused to save the card: ${status} ${detail ?? ''}`);
  }

  async refund(request: RefundRequest, idempotencyKey: string): Promise<RefundResult> {
    const { status, body } = await this.#post('/v1/refunds', request, idempotencyKey);
    if (status === 200 || status === 201) return { ok: true, refundId: String(body.id) };
    return {
      ok: false,
      code: typeof body.code === 'string' ? body.code : `http_${status}`,
      ...(typeof body.detail === 'string' ? { detail: body.detail } : {}),
    };
  }

  async payout(request: PayoutRequest, idempotencyKey: string): Promise<PayoutResult> {
    const { status, body } = await this.#post('/v1/payouts', request, idempotencyKey);
    if (status === 200 || status === 201) return { ok: true, payoutId: String(body.id) };
    const detail = typeof body.detail === 'string' ? body.detail : `bank answered ${status}`;
    return { ok: false, code: body.code === 'insufficient_funds' ? 'insufficient_funds' : 'rejected', detail };
  }

  async #post(path: string, payload: unknown, idempotencyKey?: string): Promise<BankAnswer> {
    let response: Response;
    try {
      response = await fetch(this.#url + path, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.#apiKey}`,
          'content-type': 'application/json',
          // The request this call works for, so the bank logs it under the same id.
          ...requestIdHeaders(),
          ...(idempotencyKey !== undefined ? { 'idempotency-key': idempotencyKey } : {}),
        },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (cause) {
      throw new BankUnavailable(`bank unreachable: ${(cause as Error).message}`, { cause });
    }
    let body: Record<string, unknown> = {};
    try {
      const text = await response.text();
      const parsed: unknown = text ? JSON.parse(text) : {};
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
    } catch (cause) {
      if (response.status >= 500) throw new BankUnavailable(`bank failed with ${response.status}`, { cause });
      throw new BankUnavailable(`bank answered unreadable JSON (${response.status})`, { cause });
    }
    if (response.status >= 500) throw new BankUnavailable(`bank failed with ${response.status}`);
    return { status: response.status, body };
  }
}
