/**
 * Card rules of the sandbox bank, pure so they can be tested without a server: the Luhn check, the expiry
 * check against the bank's clock, and which test numbers decline. A real gateway would replace all of this.
 */

/** What the card network says about a card that passed the format checks. */
export type CardOutcome = 'succeeded' | 'card_declined' | 'insufficient_funds';

/** The result of checking card details: the digits we may keep, or the field that is wrong and why. */
export type CardCheck =
  | { ok: true; last4: string; outcome: CardOutcome }
  | { ok: false; field: 'number' | 'expiry' | 'cvc'; reason: string };

export interface CardDetails {
  number: string;
  expiry: string;
  cvc: string;
}

// Stripe's well-known test numbers, so developers can reuse what they already know.
const TEST_CARD_OUTCOMES: Readonly<Record<string, CardOutcome>> = {
  '4242424242424242': 'succeeded',
  '4000000000000002': 'card_declined',
  '4000000000009995': 'insufficient_funds',
};

/**
 * The digits of a card number as people type it: groups separated by single spaces are allowed.
 *
 * @example
 * cardDigits('4242 4242 4242 4242'); // '4242424242424242'
 * cardDigits('4242-4242'); // undefined
 */
export function cardDigits(number: string): string | undefined {
  const digits = number.trim().replace(/ /g, '');
  return /^[0-9]{12,19}$/.test(digits) ? digits : undefined;
}

/**
 * Whether a string of digits passes the Luhn (mod 10) check.
 *
 * @example
 * luhnValid('4242424242424242'); // true
 */
export function luhnValid(digits: string): boolean {
  if (!/^[0-9]+$/.test(digits)) return false;
  return luhnSum(digits, false) % 10 === 0;
}

/**
 * The digit that makes `partial + digit` pass the Luhn check.
 *
 * @example
 * luhnCheckDigit('424242424242424'); // '2'
 */
export function luhnCheckDigit(partial: string): string {
  if (!/^[0-9]*$/.test(partial)) throw new Error('luhnCheckDigit takes digits only');
  return String((10 - (luhnSum(partial, true) % 10)) % 10);
}

// Doubles every second digit counting from the right; `checkDigitFollows` shifts that parity by one.
function luhnSum(digits: string, checkDigitFollows: boolean): number {
  let sum = 0;
  for (let i = digits.length - 1, fromRight = checkDigitFollows ? 1 : 0; i >= 0; i--, fromRight++) {
    let d = digits.charCodeAt(i) - 48;
    if (fromRight % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum;
}

/**
 * Whether an `MM/YY` expiry is well formed and not in the past: a card is good through the last day of its
 * expiry month (UTC).
 *
 * @example
 * expiryCheck('12/26', new Date('2026-12-31T23:00:00Z')); // undefined (still good)
 * expiryCheck('11/26', new Date('2026-12-01T00:00:00Z')); // 'the card has expired'
 */
export function expiryCheck(expiry: string, now: Date): string | undefined {
  const match = /^(0[1-9]|1[0-2])\/([0-9]{2})$/.exec(expiry);
  if (!match) return 'must be MM/YY';
  const month = Number(match[1]);
  const year = 2000 + Number(match[2]);
  const nowMonths = now.getUTCFullYear() * 12 + now.getUTCMonth();
  return year * 12 + (month - 1) < nowMonths ? 'the card has expired' : undefined;
}

/**
 * Checks card details in the order a person fixes them (number, expiry, cvc) and decides the network's answer.
 *
 * @example
 * checkCard({ number: '4000 0000 0000 0002', expiry: '12/30', cvc: '123' }, new Date());
 * // { ok: true, last4: '0002', outcome: 'card_declined' }
 */
export function checkCard(card: CardDetails, now: Date): CardCheck {
  const digits = cardDigits(card.number);
  if (digits === undefined) return { ok: false, field: 'number', reason: 'must be 12-19 digits' };
  if (!luhnValid(digits)) return { ok: false, field: 'number', reason: 'fails the Luhn check' };
  const expiryProblem = expiryCheck(card.expiry, now);
  if (expiryProblem) return { ok: false, field: 'expiry', reason: expiryProblem };
  if (!/^[0-9]{3,4}$/.test(card.cvc)) return { ok: false, field: 'cvc', reason: 'must be 3 or 4 digits' };
  return { ok: true, last4: digits.slice(-4), outcome: TEST_CARD_OUTCOMES[digits] ?? 'succeeded' };
}

/** The last four digits of whatever was typed, for telling requests apart without keeping the number. */
export function last4Of(number: string): string {
  return number.replace(/[^0-9]/g, '').slice(-4);
}
