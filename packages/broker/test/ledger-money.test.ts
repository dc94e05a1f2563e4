import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Money, MoneyError } from '@netpay/protocol';
import fc from 'fast-check';
import {
  assertBalanced,
  CASH,
  COINS_OUTSTANDING,
  FEES,
  payoutEntryOf,
  purchaseEntryOf,
  redemptionEntryOf,
  refundEntryOf,
  takeBackEntryOf,
  vendorAccount,
} from '../src/ledger.ts';

const nzd = (minor: number) => Money.of(minor, 'NZD');
const amount = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

describe('ledger entries from Money', () => {
  it('every entry balances and moves exactly the amounts given', () => {
    fc.assert(
      fc.property(amount, fc.integer({ min: 0, max: 10_000 }), (gross, bps) => {
        const fee = nzd(gross).feeAt(bps);
        const entries = [
          purchaseEntryOf('c', nzd(gross)),
          refundEntryOf('c', nzd(gross)),
          payoutEntryOf('p', 'v', nzd(gross)),
          redemptionEntryOf('r', 'v', nzd(gross), fee),
          takeBackEntryOf('r', 'v', nzd(gross), fee),
        ];
        for (const e of entries) {
          assertBalanced(e);
          const coins = e.postings.find((p) => p.accountId === COINS_OUTSTANDING)?.amount ?? 0;
          const cash = e.postings.find((p) => p.accountId === CASH)?.amount ?? 0;
          assert.ok(Math.abs(coins) === gross || Math.abs(cash) === gross || gross === 0);
        }
        const redemption = redemptionEntryOf('r', 'v', nzd(gross), fee).postings;
        const credited = redemption.find((p) => p.accountId === vendorAccount('v'))?.amount ?? 0;
        assert.ok(credited === -(gross - fee.minor), `vendor credited ${credited}`);
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
