import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { cardDigits, checkCard, expiryCheck, luhnCheckDigit, luhnValid } from '../src/card.ts';

const NOW = new Date('2026-11-24T12:00:00Z');

describe('Luhn', () => {
  it('accepts the well-known test numbers and rejects a changed check digit', () => {
    for (const n of ['4242424242424242', '4000000000000002', '4000000000009995', '5555555555554444']) {
      assert.equal(luhnValid(n), true, n);
    }
    assert.equal(luhnValid('4242424242424241'), false);
    assert.equal(luhnValid('42424242x4242424'), false);
  });

  const digits = fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 1, maxLength: 30 });

  it('appending the check digit always validates', () => {
    fc.assert(fc.property(digits, (partial) => luhnValid(partial + luhnCheckDigit(partial))));
  });

  it('changing any one digit of a valid number never validates', () => {
    fc.assert(
      fc.property(digits, fc.nat(), fc.integer({ min: 1, max: 9 }), (partial, at, delta) => {
        const valid = partial + luhnCheckDigit(partial);
        const i = at % valid.length;
        const changed = String((Number(valid[i]) + delta) % 10);
        const tampered = valid.slice(0, i) + changed + valid.slice(i + 1);
        return !luhnValid(tampered);
      }),
    );
  });
});

describe('expiry', () => {
  it('is good through the last day of its month, UTC', () => {
    assert.equal(expiryCheck('11/26', NOW), undefined);
    assert.equal(expiryCheck('11/26', new Date('2026-11-30T23:59:59Z')), undefined);
    assert.equal(expiryCheck('11/26', new Date('2026-12-01T00:00:00Z')), 'the card has expired');
    assert.equal(expiryCheck('10/26', NOW), 'the card has expired');
    assert.equal(expiryCheck('01/27', NOW), undefined);
  });

  it('rejects anything but MM/YY', () => {
    for (const bad of ['1/27', '13/27', '00/27', '12/2027', '12-27', '', '12/2']) {
      assert.equal(expiryCheck(bad, NOW), 'must be MM/YY', bad);
    }
  });
});

describe('checkCard', () => {
  const card = (number: string, expiry = '12/30', cvc = '123') => checkCard({ number, expiry, cvc }, NOW);

  it('decides the test cards', () => {
    assert.deepEqual(card('4242 4242 4242 4242'), { ok: true, last4: '4242', outcome: 'succeeded' });
    assert.deepEqual(card('4000 0000 0000 0002'), { ok: true, last4: '0002', outcome: 'card_declined' });
    assert.deepEqual(card('4000000000009995'), { ok: true, last4: '9995', outcome: 'insufficient_funds' });
    assert.deepEqual(card('5555555555554444'), { ok: true, last4: '4444', outcome: 'succeeded' });
  });

  it('names the first wrong field', () => {
    assert.deepEqual(card('4242-4242-4242-4242'), { ok: false, field: 'number', reason: 'must be 12-19 digits' });
    assert.deepEqual(card('4242424242424241'), { ok: false, field: 'number', reason: 'fails the Luhn check' });
    assert.deepEqual(card('4242424242424242', '10/26'), { ok: false, field: 'expiry', reason: 'the card has expired' });
    assert.deepEqual(card('4242424242424242', '12/30', '12'), {
      ok: false,
      field: 'cvc',
      reason: 'must be 3 or 4 digits',
    });
    assert.equal(cardDigits('4242 4242 4242 4242'), '4242424242424242');
    assert.equal(cardDigits('42'), undefined);
  });
});
