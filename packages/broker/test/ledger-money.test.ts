import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Money, MoneyError } from '@netpay/protocol';
import fc from 'fast-check';
import {
  assertBalanced,
  CASH,
  COINS_OUTSTANDING,
  FEES,
  payoutEntry,
  payoutEntryOf,
  purchaseEntry,
  purchaseEntryOf,
  redemptionEntry,
  redemptionEntryOf,
  refundEntry,
  refundEntryOf,
  takeBackEntry,
  takeBackEntryOf,
  vendorAccount,
} from '../src/ledger.ts';

const nzd = (minor: number) => Money.of(minor, 'NZD');
const amount = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

describe('ledger entries from Money', () => {
  it('post exactly what the integer builders post, balanced', () => {
    fc.assert(
      fc.property(amount, fc.integer({ min: 0, max: 10_000 }), (gross, bps) => {
        const fee = nzd(gross).feeAt(bps);
        const pairs = [
          [purchaseEntryOf('c', nzd(gross)), purchaseEntry('c', gross)],
          [refundEntryOf('c', nzd(gross)), refundEntry('c', gross)],
          [payoutEntryOf('p', 'v', nzd(gross)), payoutEntry('p', 'v', gross)],
          [redemptionEntryOf('r', 'v', nzd(gross), fee), redemptionEntry('r', 'v', gross, fee.minor)],
          [takeBackEntryOf('r', 'v', nzd(gross), fee), takeBackEntry('r', 'v', gross, fee.minor)],
        ] as const;
        for (const [fromMoney, fromNumber] of pairs) {
          assert.deepEqual(fromMoney, fromNumber);
          assertBalanced(fromMoney);
        }
      }),
    );
  });

  it('a redemption credits the vendor the gross less the fee', () => {
    assert.deepEqual(redemptionEntryOf('r1', 'daily', nzd(2225), nzd(44)).postings, [
      { accountId: COINS_OUTSTANDING, amount: 2225 },
      { accountId: FEES, amount: -44 },
      { accountId: vendorAccount('daily'), amount: -2181 },
    ]);
    assert.deepEqual(purchaseEntryOf('c1', nzd(200)).postings, [
      { accountId: CASH, amount: 200 },
      { accountId: COINS_OUTSTANDING, amount: -200 },
    ]);
  });

  it('refuse a fee above the gross and amounts in two currencies', () => {
    assert.throws(() => redemptionEntryOf('r', 'v', nzd(10), nzd(11)), MoneyError);
    assert.throws(() => takeBackEntryOf('r', 'v', nzd(10), nzd(11)), MoneyError);
    assert.throws(() => redemptionEntryOf('r', 'v', nzd(10), Money.of(1, 'USD')), MoneyError);
  });
});
