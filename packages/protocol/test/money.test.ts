import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { currency, feeFor, formatMinor, minorUnits, ProtocolError } from '../src/index.ts';

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
