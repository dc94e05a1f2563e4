import { type BuyCoinRequest, EmailSchema, checkWire } from '@netpay/protocol';
import { newSecret } from '@netpay/service-kit';
import { formField } from './web-context.ts';

/** What the customer typed into a "buy coins" form, kept to re-render it (never the card number or CVC). */
export interface BuyInput {
  amount: string;
  cardNumber: string;
  expiry: string;
  cvc: string;
  /**
   * The purchase attempt's idempotency key, issued once into the form: a double submit, a reload of the answer,
   * or a retry after the bank did not answer all buy one coin with one charge.
   */
  idem: string;
}

export type BuyField = 'amount' | 'cardNumber' | 'expiry' | 'cvc';
export type FieldErrors<F extends string> = Partial<Record<F | 'form', string>>;

export function newFormKey(): string {
  return `web-${newSecret()}`;
}

/**
 * Whether the form shown again after a failed purchase keeps its key. It keeps it while the purchase may still
 * have been charged (the bank did not answer, the broker failed) or was never sent (too many purchases), so that
 * submitting again finishes that same purchase rather than charging a second time; it gets a new one once the
 * bank or the broker gave a final no, since any corrected submission is then a new purchase.
 *
 * @example
 * formKeyAfter('bank_unavailable'); // 'keep'
 * formKeyAfter('card_declined'); // 'renew'
 */
export function formKeyAfter(code: string): 'keep' | 'renew' {
  switch (code) {
    case 'card_declined':
    case 'insufficient_funds':
    case 'invalid_card':
    case 'idempotency_conflict':
    case 'chain_exists':
    case 'bad_request':
      return 'renew';
    default:
      return 'keep';
  }
}

export function readBuyInput(body: unknown): BuyInput {
  const idem = formField(body, 'idem', 100);
  return {
    amount: formField(body, 'amount', 40).trim(),
    cardNumber: formField(body, 'card_number', 40).trim(),
    expiry: formField(body, 'card_expiry', 20).trim(),
    cvc: formField(body, 'card_cvc', 10).trim(),
    idem: /^web-[A-Za-z0-9_-]{43}$/.test(idem) ? idem : newFormKey(),
  };
}

/**
 * An amount of New Zealand dollars as a person types it ("2", "2.5", "2.00", "NZ$2.00") in minor units,
 * or why not. Never goes through a float.
 *
 * @example
 * parseDollars('2.00'); // { ok: true, minor: 200 }
 */
export function parseDollars(text: string): { ok: true; minor: number } | { ok: false; error: string } {
  const cleaned = text.replace(/^(NZ)?\$\s*/i, '').trim();
  if (cleaned === '') return { ok: false, error: 'Enter an amount, for example 2.00.' };
  const match = /^([0-9]{1,7})(?:\.([0-9]{1,2}))?$/.exec(cleaned);
  if (!match) return { ok: false, error: 'Enter an amount in dollars and cents, for example 2.00.' };
  const minor = Number(match[1]) * 100 + Number((match[2] ?? '0').padEnd(2, '0'));
  if (minor < 1) return { ok: false, error: 'The amount must be at least 0.01.' };
  return { ok: true, minor };
}

function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * Checks a buy form field by field; on success gives the same request body the JSON API takes
 * (`POST {api}/coins`, unit 1: the broker makes the chain and keeps its seed for the server-side wallet).
 */
export function validateBuy(
  input: BuyInput,
  now: Date,
  maxMinor: number,
): { request: BuyCoinRequest; errors?: undefined } | { request?: undefined; errors: FieldErrors<BuyField> } {
  const errors: FieldErrors<BuyField> = {};
  const amount = parseDollars(input.amount);
  if (!amount.ok) errors.amount = amount.error;
  else if (amount.minor > maxMinor) {
    errors.amount = `The most one coin can hold is ${Math.floor(maxMinor / 100)}.${String(maxMinor % 100).padStart(2, '0')}.`;
  }

  const digits = input.cardNumber.replace(/[\s-]/g, '');
  if (digits === '') errors.cardNumber = 'Enter the card number.';
  else if (!/^[0-9]{12,19}$/.test(digits)) errors.cardNumber = 'A card number is 12 to 19 digits.';
  else if (!luhnValid(digits)) errors.cardNumber = 'This card number is not valid; check the digits.';

  let expiry = input.expiry.replace(/\s/g, '');
  const long = /^([0-9]{2})\/20([0-9]{2})$/.exec(expiry);
  if (long) expiry = `${long[1]}/${long[2]}`;
  const ex = /^(0[1-9]|1[0-2])\/([0-9]{2})$/.exec(expiry);
  if (input.expiry === '') errors.expiry = 'Enter the expiry date as MM/YY.';
  else if (!ex) errors.expiry = 'Enter the expiry date as MM/YY, for example 12/30.';
  else {
    const months = (2000 + Number(ex[2])) * 12 + (Number(ex[1]) - 1);
    if (months < now.getUTCFullYear() * 12 + now.getUTCMonth()) errors.expiry = 'This card has expired.';
  }

  if (input.cvc === '') errors.cvc = 'Enter the 3 or 4 digit security code.';
  else if (!/^[0-9]{3,4}$/.test(input.cvc)) errors.cvc = 'The security code is 3 or 4 digits.';

  if (Object.keys(errors).length > 0 || !amount.ok) return { errors };
  return {
    request: {
      amount: amount.minor,
      payment: { card: { number: digits.replace(/(.{4})(?=.)/g, '$1 '), expiry, cvc: input.cvc } },
    },
  };
}

/** The bank's or the broker's refusal of a purchase, placed next to the field it is about. */
export function purchaseErrorField(
  code: string,
  detail: string | undefined,
): { field: BuyField | 'form'; message: string } {
  switch (code) {
    case 'card_declined':
      return { field: 'cardNumber', message: 'The bank declined this card. Try another card.' };
    case 'insufficient_funds':
      return { field: 'cardNumber', message: 'The card has insufficient funds.' };
    case 'invalid_card': {
      const d = (detail ?? '').toLowerCase();
      if (d.includes('expir')) return { field: 'expiry', message: detail ?? 'The expiry date is not valid.' };
      if (d.includes('cvc')) return { field: 'cvc', message: detail ?? 'The security code is not valid.' };
      return { field: 'cardNumber', message: detail ?? 'The card details are not valid.' };
    }
    case 'bank_unavailable':
      return {
        field: 'form',
        message:
          'The bank did not answer in time. Submit again to finish this purchase: you will not be charged twice. ' +
          'If you leave it, a charge that went through becomes a coin in your wallet within a few minutes.',
      };
    case 'idempotency_conflict':
      return {
        field: 'form',
        message:
          'This purchase was already sent to the bank with other details, so it cannot be changed. ' +
          'It appears in your wallet once the bank confirms it. Submit again to make a new purchase.',
      };
    case 'rate_limited':
      return { field: 'form', message: 'Too many purchases in a short time. Wait a moment and try again.' };
    default:
      return { field: 'form', message: detail ?? 'The purchase did not go through. Nothing was charged.' };
  }
}

/** Email and password as the register and login forms check them (the same shapes as the JSON API). */
export function validateEmail(email: string): string | undefined {
  if (email === '') return 'Enter your email address.';
  if (!checkWire(EmailSchema, email)) return 'Enter an email address like name@example.com.';
  return undefined;
}
