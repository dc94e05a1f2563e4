import { ProtocolError } from './error-codes.ts';

/**
 * An amount of money as an integer count of the currency's minor unit (cents). The brand means a value of this
 * type went through `minorUnits`, so it is a safe non-negative integer.
 */
export type MinorUnits = number & { readonly __minor: unique symbol };

/** An ISO 4217 currency code such as `NZD`, checked by `currency()`. */
export type Currency = string;

const CANONICAL_DECIMAL = /^(0|[1-9][0-9]*)$/;
const CURRENCY = /^[A-Z]{3}$/;

/**
 * The one door into `MinorUnits`: accepts a safe non-negative integer, or its canonical decimal string
 * (as from a BIGINT column or a query string). Rejects floats, negatives, NaN, unsafe integers and strings
 * such as `"012"`, `"1.0"`, `"-1"`, `"1e3"`, `" 1"`.
 *
 * @throws ProtocolError('bad_request')
 * @example
 * minorUnits(125); // 125
 * minorUnits('125'); // 125
 * minorUnits(1.5); // throws
 */
export function minorUnits(value: unknown): MinorUnits {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return (Object.is(value, -0) ? 0 : value) as MinorUnits;
    throw new ProtocolError('bad_request', 'amount must be a non-negative safe integer of minor units');
  }
  if (typeof value === 'string') {
    if (value.length <= 16 && CANONICAL_DECIMAL.test(value)) {
      const n = Number(value);
      if (Number.isSafeInteger(n)) return n as MinorUnits;
    }
    throw new ProtocolError('bad_request', 'amount must be a canonical non-negative decimal integer');
  }
  if (typeof value === 'bigint') {
    if (value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(value) as MinorUnits;
    throw new ProtocolError('bad_request', 'amount out of range');
  }
  throw new ProtocolError('bad_request', 'amount must be an integer of minor units');
}

/**
 * Whether `value` is already a valid amount of minor units.
 *
 * @example
 * isMinorUnits(3); // true
 */
export function isMinorUnits(value: unknown): value is MinorUnits {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * The broker's fee on `gross` minor units at `feeBps` basis points, rounded down: floor(gross × feeBps / 10000).
 * Computed in BigInt because gross × feeBps can pass 2^53 for large balances.
 *
 * @example
 * feeFor(999, 250); // 24
 */
export function feeFor(gross: number, feeBps: number): number {
  if (!Number.isSafeInteger(gross) || gross < 0) throw new ProtocolError('bad_request', 'gross must be minor units');
  if (!Number.isSafeInteger(feeBps) || feeBps < 0 || feeBps > 10_000) {
    throw new ProtocolError('bad_request', 'feeBps must be an integer in 0..10000');
  }
  return Number((BigInt(gross) * BigInt(feeBps)) / 10_000n);
}

/**
 * Checks an ISO 4217-shaped currency code.
 *
 * @throws ProtocolError('bad_request')
 * @example
 * currency('NZD'); // 'NZD'
 */
export function currency(value: unknown): Currency {
  if (typeof value === 'string' && CURRENCY.test(value)) return value;
  throw new ProtocolError('bad_request', 'currency must be three upper-case letters');
}

/**
 * Formats an amount for people, always with two decimal places (every NetPay currency so far has cents).
 *
 * @example
 * formatMinor(123, 'NZD'); // 'NZD 1.23'
 */
export function formatMinor(amount: number, currencyCode: Currency): string {
  const units = minorUnits(amount);
  const whole = Math.floor(units / 100);
  const cents = units % 100;
  return `${currencyCode} ${whole}.${String(cents).padStart(2, '0')}`;
}
