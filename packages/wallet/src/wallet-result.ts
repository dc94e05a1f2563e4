import { WalletError, type WalletErrorCode } from './wallet-error.ts';

/**
 * The outcome of a wallet operation: its value, or the expected failure that stopped it (a refusal by the wallet's
 * own rules, a problem the broker answered, a network failure). Failures are values so callers branch on
 * `error.code` without try/catch; only bugs and a broken store are thrown.
 *
 * @example
 * const bought = await wallet.results.buy({ amountMinor: 200, card });
 * if (!bought.ok) console.log(bought.error.code); // 'card_declined'
 */
export type WalletResult<T> = { ok: true; value: T } | { ok: false; error: WalletError };

export function ok<T>(value: T): WalletResult<T> {
  return { ok: true, value };
}

export function fail<T = never>(
  code: WalletErrorCode,
  message?: string,
  extra?: ConstructorParameters<typeof WalletError>[2],
): WalletResult<T> {
  return { ok: false, error: new WalletError(code, message, extra) };
}

/** A failure passed on as the failure of another operation's result type. */
export function failed<T>(result: { ok: false; error: WalletError }): WalletResult<T> {
  return { ok: false, error: result.error };
}

/** The value, or the failure thrown as its `WalletError` (the throwing methods of `Wallet`). */
export function unwrap<T>(result: WalletResult<T>): T {
  if (result.ok) return result.value;
  throw result.error;
}
