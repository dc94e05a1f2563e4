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

/** Symbols people recognise for the currencies NetPay shows; any other currency is shown by its code. */
const SYMBOLS: Readonly<Record<string, string>> = { NZD: 'NZ$', AUD: 'A$', USD: 'US$', EUR: '€', GBP: '£' };
/** ISO 4217 minor-unit exponents other than 2 (a yen has no cents), so no amount is shown a hundred times off. */
const EXPONENTS: Readonly<Record<string, number>> = { JPY: 0, KRW: 0, ISK: 0, BHD: 3, JOD: 3, KWD: 3, OMR: 3, TND: 3 };

/**
 * The one formatter of amounts for people: symbol, thousands separators, the currency's decimals, and `−` for a
 * negative signed balance. `Money#format()` uses it; pages that only hold a signed integer (a ledger balance)
 * use it directly. Deterministic: no locale data, so a server and a browser print the same text.
 *
 * @example
 * formatAmount(10, 'NZD'); // 'NZ$0.10'
 * formatAmount(123456, 'USD'); // 'US$1,234.56'
 * formatAmount(-5, 'NZD'); // '−NZ$0.05'
 * formatAmount(500, 'CHF'); // 'CHF 5.00'
 */
export function formatAmount(minor: number, currencyCode: Currency): string {
  if (!Number.isSafeInteger(minor)) throw new ProtocolError('bad_request', 'amount must be a safe integer');
  const code = currency(currencyCode);
  const exponent = EXPONENTS[code] ?? 2;
  const digits = String(Math.abs(minor)).padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent).replace(/\B(?=(\d{3})+$)/g, ',');
  const fraction = exponent > 0 ? `.${digits.slice(digits.length - exponent)}` : '';
  const symbol = SYMBOLS[code];
  return `${minor < 0 ? '−' : ''}${symbol ?? `${code} `}${whole}${fraction}`;
}

/** A Money operation that would produce an amount that cannot exist: negative, unsafe, or across currencies. */
export class MoneyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MoneyError';
  }
}

/**
 * An amount of money: a non-negative safe integer of the currency's minor unit together with its currency.
 * Immutable, and built only through strict factories, so a `Money` value is always a real amount; arithmetic
 * never goes negative, never loses precision and never mixes currencies (it throws `MoneyError` instead, a bug
 * rather than an outcome). It does not turn into a number by accident: `+m`, `m + 1`, `m == 5` and `m > n`
 * throw; read `.minor` when an integer is needed (a database column, a signed ledger posting). `JSON.stringify`
 * writes the integer of minor units, the wire form of every amount in PROTOCOL.md.
 *
 * @example
 * const price = Money.of(5, 'NZD');
 * const total = price.times(3).plus(Money.of(10, 'NZD')); // NZ$0.25
 * total.feeAt(200).minor; // 0 (floor of 2 %)
 * Money.parse('125', 'NZD').format(); // 'NZ$1.25'
 * JSON.stringify({ amount: total }); // '{"amount":25}'
 */
export class Money {
  /** The amount in minor units (cents): a non-negative safe integer. */
  readonly minor: number;
  readonly currency: Currency;

  private constructor(minor: number, currencyCode: Currency) {
    this.minor = minor;
    this.currency = currencyCode;
    Object.freeze(this);
  }

  /**
   * An amount from a trusted integer (or bigint, as a driver may return a BIGINT column).
   *
   * @throws ProtocolError('bad_request') for floats, negatives, NaN, unsafe integers, strings or a bad currency
   * @example
   * Money.of(125, 'NZD');
   */
  static of(minor: number | bigint, currencyCode: Currency): Money {
    if (typeof minor !== 'number' && typeof minor !== 'bigint') {
      throw new ProtocolError('bad_request', 'amount must be an integer of minor units');
    }
    return new Money(minorUnits(minor), currency(currencyCode));
  }

  /**
   * An amount from untrusted input: a safe non-negative integer or its canonical decimal string (`"125"`, not
   * `"0125"`, `"1.25"`, `"1e2"` or `" 125"`), and a three-letter currency code.
   *
   * @throws ProtocolError('bad_request')
   * @example
   * Money.parse('125', 'NZD').minor; // 125
   */
  static parse(minor: unknown, currencyCode: unknown): Money {
    return new Money(minorUnits(minor), currency(currencyCode));
  }

  /** Nothing, in `currencyCode`. */
  static zero(currencyCode: Currency): Money {
    return new Money(0, currency(currencyCode));
  }

  /**
   * The total of `amounts`, all in `currencyCode` (named so an empty list still has a currency).
   *
   * @example
   * Money.sum([Money.of(1, 'NZD'), Money.of(2, 'NZD')], 'NZD').minor; // 3
   */
  static sum(amounts: Iterable<Money>, currencyCode: Currency): Money {
    let total = Money.zero(currencyCode);
    for (const amount of amounts) total = total.plus(amount);
    return total;
  }

  /** Whether `value` is a Money (built by its factories; the constructor is private). */
  static isMoney(value: unknown): value is Money {
    return value instanceof Money;
  }

  plus(other: Money): Money {
    this.#sameCurrency(other);
    return Money.#checked(this.minor + other.minor, this.currency, 'sum');
  }

  /** @throws MoneyError when `other` is larger (money never goes negative) or in another currency. */
  minus(other: Money): Money {
    this.#sameCurrency(other);
    if (other.minor > this.minor) {
      throw new MoneyError(`${other.format()} is more than ${this.format()}: the difference would be negative`);
    }
    return new Money(this.minor - other.minor, this.currency);
  }

  /** This amount `count` times (a unit price times a number of units). */
  times(count: number): Money {
    if (!Number.isSafeInteger(count) || count < 0) throw new MoneyError(`count must be a non-negative integer`);
    return Money.#checked(this.minor * count, this.currency, 'product');
  }

  /**
   * The fee at `bps` basis points of this amount, rounded down: floor(minor × bps / 10000). Never more than
   * the amount.
   *
   * @example
   * Money.of(999, 'NZD').feeAt(250).minor; // 24
   */
  feeAt(bps: number): Money {
    return new Money(feeFor(this.minor, bps), this.currency);
  }

  /** -1, 0 or 1 as this amount is smaller than, equal to or larger than `other` (same currency). */
  compare(other: Money): -1 | 0 | 1 {
    this.#sameCurrency(other);
    return this.minor < other.minor ? -1 : this.minor > other.minor ? 1 : 0;
  }

  /** Same currency and same amount (never throws: amounts in two currencies are simply not equal). */
  equals(other: Money): boolean {
    return other instanceof Money && other.currency === this.currency && other.minor === this.minor;
  }

  isZero(): boolean {
    return this.minor === 0;
  }

  /** For people: `NZ$0.10`, `US$1,234.56` (see {@link formatAmount}). */
  format(): string {
    return formatAmount(this.minor, this.currency);
  }

  /** The same as `format()`, so a template literal shows the amount to people, never a bare number. */
  toString(): string {
    return this.format();
  }

  /** The wire form: the integer of minor units (the currency travels in its own member). */
  toJSON(): number {
    return this.minor;
  }

  /** Throws: an amount is not a number. Read `.minor` explicitly. */
  valueOf(): never {
    throw new MoneyError('Money is not a number: read .minor for the integer of minor units');
  }

  /** Only string conversion (template literals) is allowed; `+m`, `m + 1`, `m == 1`, `m < n` throw. */
  [Symbol.toPrimitive](hint: 'number' | 'string' | 'default'): string {
    if (hint === 'string') return this.format();
    throw new MoneyError(`Money cannot be converted implicitly (${hint}): read .minor or call format()`);
  }

  #sameCurrency(other: Money): void {
    if (!(other instanceof Money)) throw new MoneyError('not a Money value');
    if (other.currency !== this.currency)
      throw new MoneyError(`currencies differ: ${this.currency} and ${other.currency}`);
  }

  static #checked(minor: number, currencyCode: Currency, what: string): Money {
    if (!Number.isSafeInteger(minor)) throw new MoneyError(`the ${what} is too large to count exactly`);
    return new Money(minor, currencyCode);
  }
}
