import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  currency,
  feeFor,
  formatAmount,
  formatMinor,
  Money,
  MoneyError,
  minorUnits,
  ProtocolError,
} from '../src/index.ts';

const isBadRequest = (err: unknown) => err instanceof ProtocolError && err.code === 'bad_request';

describe('minorUnits', () => {
  it('accepts safe non-negative integers and their canonical strings', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        assert.equal(minorUnits(n), n);
        assert.equal(minorUnits(String(n)), n);
      }),
    );
    assert.equal(minorUnits('0'), 0);
    assert.equal(minorUnits('12'), 12);
    assert.equal(Object.is(minorUnits(-0), 0), true);
  });

  it('rejects floats, negatives, NaN, infinities and unsafe integers', () => {
    const bad = fc.oneof(
      fc.double().filter((d) => !Number.isSafeInteger(d) || d < 0),
      fc.integer({ max: -1 }),
      fc.constantFrom(Number.NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER + 1, 2 ** 60, 0.1, 1.5),
    );
    fc.assert(fc.property(bad, (v) => assert.throws(() => minorUnits(v), isBadRequest)));
  });

  it('rejects non-canonical strings', () => {
    for (const s of ['', '012', '00', '1.0', '-1', '+1', '1e3', ' 1', '1 ', '0x10', '١', '9007199254740992', '1_000']) {
      assert.throws(() => minorUnits(s), isBadRequest, s);
    }
    fc.assert(
      fc.property(fc.string(), (s) => {
        fc.pre(!/^(0|[1-9][0-9]*)$/.test(s));
        assert.throws(() => minorUnits(s), isBadRequest);
      }),
    );
  });

  it('rejects other types', () => {
    for (const v of [null, undefined, true, {}, [], [1]]) assert.throws(() => minorUnits(v), isBadRequest);
  });
});

describe('feeFor', () => {
  it('rounds down exactly', () => {
    assert.equal(feeFor(999, 250), 24);
    assert.equal(feeFor(0, 250), 0);
    assert.equal(feeFor(100, 0), 0);
    assert.equal(feeFor(100, 10_000), 100);
    assert.equal(feeFor(Number.MAX_SAFE_INTEGER, 9999), Number((BigInt(Number.MAX_SAFE_INTEGER) * 9999n) / 10000n));
  });

  it('matches BigInt floor division and never exceeds the gross', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.integer({ min: 0, max: 10_000 }), (gross, bps) => {
        const fee = feeFor(gross, bps);
        assert.equal(BigInt(fee), (BigInt(gross) * BigInt(bps)) / 10_000n);
        assert.ok(fee <= gross && fee >= 0);
      }),
    );
  });

  it('rejects bad inputs', () => {
    assert.throws(() => feeFor(1.5, 10), ProtocolError);
    assert.throws(() => feeFor(-1, 10), ProtocolError);
    assert.throws(() => feeFor(10, 10_001), ProtocolError);
  });
});

describe('currency and formatMinor', () => {
  it('validates currency codes', () => {
    assert.equal(currency('NZD'), 'NZD');
    for (const bad of ['nzd', 'NZ', 'NZDD', '', 1, null]) assert.throws(() => currency(bad), isBadRequest);
  });

  it('formats with two decimals', () => {
    assert.equal(formatMinor(123, 'NZD'), 'NZD 1.23');
    assert.equal(formatMinor(5, 'NZD'), 'NZD 0.05');
    assert.equal(formatMinor(100000, 'USD'), 'USD 1000.00');
    assert.throws(() => formatMinor(1.5, 'NZD'), ProtocolError);
  });
});

const CURRENCIES = ['NZD', 'USD', 'EUR', 'JPY', 'CHF'] as const;
const isMoneyError = (err: unknown) => err instanceof MoneyError;
/** Any amount whose sums with two others stay exact (a third of the safe range). */
const amount = fc.integer({ min: 0, max: Math.floor(Number.MAX_SAFE_INTEGER / 3) });
const code = fc.constantFrom(...CURRENCIES);

describe('Money', () => {
  it('round-trips through of, parse, the wire (JSON) and its canonical string', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), code, (n, c) => {
        const m = Money.of(n, c);
        assert.equal(m.minor, n);
        assert.equal(m.currency, c);
        assert.ok(Money.parse(String(n), c).equals(m));
        assert.ok(Money.of(BigInt(n), c).equals(m));
        const wire = JSON.parse(JSON.stringify({ amount: m, currency: m.currency }));
        assert.deepEqual(wire, { amount: n, currency: c });
        assert.ok(Money.parse(wire.amount, wire.currency).equals(m));
      }),
    );
  });

  it('rejects floats, negatives, NaN, unsafe integers, non-canonical strings and bad currency codes', () => {
    const badNumber = fc.oneof(
      fc.double().filter((d) => !Number.isSafeInteger(d) || d < 0),
      fc.integer({ max: -1 }),
      fc.constantFrom(Number.NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER + 1, 0.1, 1.5),
    );
    fc.assert(
      fc.property(badNumber, (v) => {
        assert.throws(() => Money.of(v, 'NZD'), isBadRequest);
        assert.throws(() => Money.parse(v, 'NZD'), isBadRequest);
      }),
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        fc.pre(!/^(0|[1-9][0-9]*)$/.test(s) || s.length > 16);
        assert.throws(() => Money.parse(s, 'NZD'), isBadRequest);
      }),
    );
    for (const s of ['012', '1.0', '-1', '1e3', ' 1', '9007199254740992']) {
      assert.throws(() => Money.parse(s, 'NZD'), isBadRequest, s);
    }
    // Money.of is for integers already in hand: even a canonical string must go through parse.
    assert.throws(() => Money.of('12' as unknown as number, 'NZD'), isBadRequest);
    assert.throws(() => Money.of(-1n, 'NZD'), isBadRequest);
    assert.throws(() => Money.of(2n ** 53n, 'NZD'), isBadRequest);
    for (const c of ['nzd', 'NZ', 'NZDD', '', 'N1D', null, 1]) {
      assert.throws(() => Money.parse(1, c), isBadRequest, String(c));
    }
    for (const v of [null, undefined, true, {}, [], [1]]) assert.throws(() => Money.parse(v, 'NZD'), isBadRequest);
  });

  it('is immutable', () => {
    const m = Money.of(5, 'NZD');
    assert.ok(Object.isFrozen(m));
    assert.throws(() => {
      (m as { minor: number }).minor = 6;
    }, TypeError);
    assert.equal(m.minor, 5);
  });

  it('never converts to a number implicitly', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), code, (n, c) => {
        const m = Money.of(n, c);
        const other = Money.of(n, c);
        // biome-ignore lint/suspicious/noExplicitAny: implicit conversions are exactly what is being tried
        const loose = m as any;
        assert.throws(() => +loose, isMoneyError);
        assert.throws(() => Number(loose), isMoneyError);
        assert.throws(() => loose + 1, isMoneyError);
        assert.throws(() => loose * 2, isMoneyError);
        assert.throws(() => loose < other, isMoneyError);
        assert.throws(() => Math.max(loose, 0), isMoneyError);
        assert.throws(() => `${''}` + loose, isMoneyError);
        assert.throws(() => loose.valueOf(), isMoneyError);
        // A template literal asks for a string: people get the formatted amount, never a bare integer.
        assert.equal(`${m}`, m.format());
        assert.equal(String(m), m.format());
      }),
    );
  });

  it('plus is associative and commutative, and sum is the fold of plus', () => {
    fc.assert(
      fc.property(amount, amount, amount, code, (a, b, c, cur) => {
        const [x, y, z] = [Money.of(a, cur), Money.of(b, cur), Money.of(c, cur)];
        assert.ok(
          x
            .plus(y)
            .plus(z)
            .equals(x.plus(y.plus(z))),
        );
        assert.ok(x.plus(y).equals(y.plus(x)));
        assert.equal(x.plus(y).minor, a + b);
        assert.ok(Money.sum([x, y, z], cur).equals(x.plus(y).plus(z)));
      }),
    );
    assert.ok(Money.sum([], 'NZD').equals(Money.zero('NZD')));
    assert.throws(() => Money.of(Number.MAX_SAFE_INTEGER, 'NZD').plus(Money.of(1, 'NZD')), isMoneyError);
  });

  it('minus never yields a negative amount, and undoes plus', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.maxSafeNat(), code, (a, b, cur) => {
        const [x, y] = [Money.of(a, cur), Money.of(b, cur)];
        if (b > a) {
          assert.throws(() => x.minus(y), isMoneyError);
          return;
        }
        const d = x.minus(y);
        assert.ok(d.minor >= 0);
        assert.equal(d.minor, a - b);
        assert.ok(d.plus(y).equals(x));
        assert.equal(x.minus(x).isZero(), true);
      }),
    );
  });

  it('never mixes currencies', () => {
    const nzd = Money.of(5, 'NZD');
    const usd = Money.of(5, 'USD');
    assert.throws(() => nzd.plus(usd), isMoneyError);
    assert.throws(() => nzd.minus(usd), isMoneyError);
    assert.throws(() => nzd.compare(usd), isMoneyError);
    assert.throws(() => Money.sum([nzd, usd], 'NZD'), isMoneyError);
    assert.throws(() => Money.sum([usd], 'NZD'), isMoneyError);
    assert.equal(nzd.equals(usd), false);
  });

  it('the fee is at most the amount, floor(minor × bps / 10000), and grows with the rate', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.integer({ min: 0, max: 10_000 }), code, (a, bps, cur) => {
        const m = Money.of(a, cur);
        const fee = m.feeAt(bps);
        assert.equal(fee.currency, cur);
        assert.ok(fee.compare(m) <= 0);
        assert.equal(BigInt(fee.minor), (BigInt(a) * BigInt(bps)) / 10_000n);
        if (bps < 10_000) assert.ok(m.feeAt(bps + 1).compare(fee) >= 0);
      }),
    );
    assert.equal(Money.of(49, 'NZD').feeAt(200).minor, 0);
    assert.equal(Money.of(50, 'NZD').feeAt(200).minor, 1);
    assert.throws(() => Money.of(50, 'NZD').feeAt(10_001), isBadRequest);
    assert.throws(() => Money.of(50, 'NZD').feeAt(1.5), isBadRequest);
  });

  it('times is repeated plus', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 50 }), (a, n) => {
        const m = Money.of(a, 'NZD');
        assert.ok(m.times(n).equals(Money.sum(Array(n).fill(m), 'NZD')));
      }),
    );
    assert.throws(() => Money.of(5, 'NZD').times(-1), isMoneyError);
    assert.throws(() => Money.of(5, 'NZD').times(1.5), isMoneyError);
    assert.throws(() => Money.of(Number.MAX_SAFE_INTEGER, 'NZD').times(2), isMoneyError);
  });

  it('compare orders amounts like their integers', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.maxSafeNat(), (a, b) => {
        assert.equal(Money.of(a, 'NZD').compare(Money.of(b, 'NZD')), Math.sign(a - b));
        assert.equal(Money.of(a, 'NZD').equals(Money.of(b, 'NZD')), a === b);
      }),
    );
  });

  it('formats for people with one shared function', () => {
    assert.equal(Money.of(10, 'NZD').format(), 'NZ$0.10');
    assert.equal(Money.of(0, 'NZD').format(), 'NZ$0.00');
    assert.equal(Money.of(123456, 'USD').format(), 'US$1,234.56');
    assert.equal(Money.of(100_000_000, 'EUR').format(), '€1,000,000.00');
    assert.equal(Money.of(1500, 'JPY').format(), 'JPY 1,500');
    assert.equal(Money.of(7, 'CHF').format(), 'CHF 0.07');
    assert.equal(formatAmount(-5, 'NZD'), '−NZ$0.05');
    assert.throws(() => formatAmount(1.5, 'NZD'), isBadRequest);
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        // No digit is lost or invented: the digits of the text are the integer of minor units.
        assert.equal(Number(Money.of(n, 'USD').format().replace(/\D/g, '')), n);
      }),
    );
    // The older formatter keeps its output.
    assert.equal(formatMinor(10, 'NZD'), 'NZD 0.10');
  });
});
