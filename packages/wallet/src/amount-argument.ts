import { type WalletResult, fail, ok } from './wallet-result.ts';

/**
 * Checks an amount given to the wallet as an integer of minor units (cents), and says what is wrong in words.
 *
 * @example
 * wholeMinor('amountMinor', 1.5, 1); // { ok: false, error: invalid_argument 'amountMinor must be a whole number…' }
 */
export function wholeMinor(name: string, value: unknown, min = 0): WalletResult<number> {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    const least = min > 0 ? ` of at least ${min}` : '';
    return fail(
      'invalid_argument',
      `${name} must be a whole number of minor units (cents)${least}, e.g. 200 for NZ$2.00; got ${String(value)}`,
    );
  }
  return ok(value);
}
