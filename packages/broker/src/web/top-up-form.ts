import { html, type SafeHtml } from '@netpay/service-kit';
import type { TopUpPayment } from '../top-up.ts';
import { MAX_TOP_UP_MINOR } from '../top-up.ts';
import {
  type BuyField,
  type BuyInput,
  type FieldErrors,
  newFormKey,
  parseDollars,
  purchaseErrorField,
  readBuyInput,
  validateBuy,
} from './buy-form.ts';
import { field, hidden } from './layout.ts';
import { formField } from './web-context.ts';

/** What the customer typed into an "add money" form (never kept: the card number and CVC). */
export interface TopUpInput extends BuyInput {
  /** 'saved' to pay with the saved card, 'card' for the card typed in. */
  payWith: 'saved' | 'card';
  saveCard: boolean;
}

export type TopUpField = 'amount' | 'cardNumber' | 'expiry' | 'cvc';

export function readTopUpInput(body: unknown): TopUpInput {
  return {
    ...readBuyInput(body),
    payWith: formField(body, 'pay_with', 10) === 'saved' ? 'saved' : 'card',
    saveCard: formField(body, 'save_card', 10) === 'on',
  };
}

export function emptyTopUp(savedCard: boolean): TopUpInput {
  return {
    amount: '',
    cardNumber: '',
    expiry: '',
    cvc: '',
    idem: newFormKey(),
    payWith: savedCard ? 'saved' : 'card',
    saveCard: false,
  };
}

/**
 * The bank's or the broker's refusal of a top-up, placed next to the field it is about (as for a purchase,
 * except that nothing settles an unanswered top-up later: the customer finishes it by sending the form again).
 */
export function topUpErrorField(
  code: string,
  detail: string | undefined,
): { field: TopUpField | 'form'; message: string } {
  if (code === 'bank_unavailable') {
    return {
      field: 'form',
      message:
        'The bank did not answer in time. Submit again to finish adding the money: you will not be charged twice.',
    };
  }
  if (code === 'idempotency_conflict') {
    return {
      field: 'form',
      message: 'This top-up was already sent to the bank with other details. Submit again to make a new one.',
    };
  }
  return purchaseErrorField(code, detail);
}

/** Whether a form carried an amount to add at all (the consent page's add-money part is optional). */
export function wantsTopUp(input: TopUpInput): boolean {
  return input.amount !== '';
}

/**
 * Checks an add-money form field by field: the amount always, the card fields unless the saved card pays.
 * On success: the amount in minor units and how it is paid.
 */
export function validateTopUp(
  input: TopUpInput,
  now: Date,
  savedCard: boolean,
): { amount: number; payment: TopUpPayment; errors?: undefined } | { errors: FieldErrors<TopUpField> } {
  if (input.payWith === 'saved' && savedCard) {
    const amount = parseDollars(input.amount);
    if (!amount.ok) return { errors: { amount: amount.error } };
    if (amount.minor > MAX_TOP_UP_MINOR) return { errors: { amount: 'The most one top-up can add is 1,000.00.' } };
    return { amount: amount.minor, payment: { savedCard: true } };
  }
  const checked = validateBuy(input, now, MAX_TOP_UP_MINOR);
  if (checked.errors) {
    const errors = { ...checked.errors };
    if (errors.amount?.startsWith('The most one coin')) errors.amount = 'The most one top-up can add is 1,000.00.';
    return { errors };
  }
  return {
    amount: checked.request.amount,
    payment: { card: checked.request.payment.card, saveCard: input.saveCard },
  };
}

/**
 * The fields of an "add money" form: amount, the saved card or a card, and "save this card". `prefix` keeps ids
 * unique when the fields sit inside another form (the consent page).
 */
export function topUpFields(
  input: TopUpInput,
  errors: FieldErrors<TopUpField>,
  savedCardLast4: string | null,
  prefix = '',
): SafeHtml {
  const id = (name: string) => `${prefix}${name}`;
  const saved =
    savedCardLast4 !== null
      ? html`<fieldset><legend>Pay with</legend>
<div class="choice"><input type="radio" id="${id('pay-saved')}" name="pay_with" value="saved"${input.payWith === 'saved' ? html` checked` : ''}>
<label for="${id('pay-saved')}">Saved card ending ${savedCardLast4}</label></div>
<div class="choice"><input type="radio" id="${id('pay-card')}" name="pay_with" value="card"${input.payWith === 'card' ? html` checked` : ''}>
<label for="${id('pay-card')}">Another card (below)</label></div>
</fieldset>`
      : hidden('pay_with', 'card');
  return html`${saved}
${buyFields(input, errors, prefix, 'For example 5.00.')}
<div class="choice"><input type="checkbox" id="${id('save-card')}" name="save_card"${input.saveCard ? html` checked` : ''}>
<label for="${id('save-card')}">Save this card for next time and for automatic top-ups (NetPay keeps only its last four digits)</label></div>`;
}

/** The amount and card fields of a form that charges a card (add money, and the consent page's add money). */
export function buyFields(
  input: BuyInput | undefined,
  errors: FieldErrors<BuyField>,
  prefix = '',
  amountHint = 'For example 2.00 (one cent per unit).',
): SafeHtml {
  const id = (name: string) => `${prefix}${name}`;
  return html`${hidden('idem', input?.idem ?? '')}
${field({ id: id('amount'), name: 'amount', label: 'Amount in NZ$', value: input?.amount ?? '', error: errors.amount, hint: amountHint, inputmode: 'decimal', autocomplete: 'off', maxlength: 12 })}
${field({ id: id('card-number'), name: 'card_number', label: 'Card number', value: input?.cardNumber ?? '', error: errors.cardNumber, autocomplete: 'cc-number', inputmode: 'numeric', maxlength: 23, required: false })}
<div class="row">
<div>${field({ id: id('card-expiry'), name: 'card_expiry', label: 'Expiry (MM/YY)', value: input?.expiry ?? '', error: errors.expiry, autocomplete: 'cc-exp', maxlength: 7, required: false })}</div>
<div>${field({ id: id('card-cvc'), name: 'card_cvc', label: 'Security code (CVC)', type: 'password', error: errors.cvc, autocomplete: 'cc-csc', inputmode: 'numeric', maxlength: 4, required: false })}</div>
</div>`;
}
