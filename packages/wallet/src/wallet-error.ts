import type { ErrorCode } from '@netpay/protocol';

/**
 * Codes of failures the wallet itself detects. Problems the broker answers with keep their protocol code
 * (`card_declined`, `invalid_credentials`, `not_refundable`, …), so `WalletErrorCode` is the union of both.
 */
export const WALLET_ERROR_CODES = {
  invalid_argument: 'An argument to the wallet is invalid',
  no_broker: 'No broker URL is configured: pass brokerUrl or log in first',
  not_logged_in: 'No broker session: log in first',
  price_too_high: 'The price is above the per-request limit (maxPriceMinor)',
  budget_exceeded: 'Paying would exceed the wallet budget (budgetMinor)',
  no_suitable_coin: 'No coin of this broker and currency, unexpired, with enough units left',
  invalid_challenge: 'The vendor sent a malformed NetPay challenge',
  invalid_touchstone: 'The broker returned a touchstone that does not match the chain or does not verify',
  invalid_response: 'A broker answer is malformed',
  broker_error: 'The broker failed without a problem body',
  network_error: 'The request did not complete; it may or may not have taken effect',
  purchase_pending: 'An earlier purchase did not complete: retry it with the same amount and unit first',
  unknown_coin: 'No coin with this chainId in the wallet',
  corrupt_store: 'The wallet store holds data this wallet cannot read',
} as const;

export type WalletOwnErrorCode = keyof typeof WALLET_ERROR_CODES;
export type WalletErrorCode = WalletOwnErrorCode | ErrorCode;

/**
 * An expected failure of a wallet operation. Branch on `code`; `status` and `problem` are set when the broker or a
 * vendor answered with a problem.
 *
 * @example
 * try { await wallet.fetch(url, undefined, { maxPriceMinor: 10 }); }
 * catch (err) { if (err instanceof WalletError && err.code === 'price_too_high') console.log(err.message); }
 */
export class WalletError extends Error {
  readonly code: WalletErrorCode;
  /** The message without its code, in words for people. */
  readonly detail: string;
  readonly status?: number;
  readonly problem?: Record<string, unknown>;

  constructor(
    code: WalletErrorCode,
    message?: string,
    extra: { status?: number; problem?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    const text = message ?? (WALLET_ERROR_CODES as Record<string, string>)[code] ?? code;
    super(`${code}: ${text}`, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'WalletError';
    this.code = code;
    this.detail = text;
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.problem !== undefined) this.problem = extra.problem;
  }
}
