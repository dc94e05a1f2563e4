import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { b64uEncode, formatAuthorization, MAX_CHAIN_LENGTH, parseAuthorization } from '@netpay/protocol';
import fc from 'fast-check';
import { readCanonicalAuthorization } from '../src/payment-header.ts';

/** The strict parser's reading, or undefined where it refuses. */
function strict(value: string) {
  try {
    return parseAuthorization(value);
  } catch {
    return undefined;
  }
}

/** The fast reading must be the strict one whenever it reads anything at all. */
function agrees(value: string): void {
  const fast = readCanonicalAuthorization(value);
  if (fast === undefined) return;
  const { paywordBytes, ...params } = fast;
  assert.deepEqual(params, strict(value), `fast and strict readings differ for ${JSON.stringify(value)}`);
  assert.equal(b64uEncode(paywordBytes), params.payword);
}

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const wellFormed = fc
  .record({ chain: bytes(16), index: fc.integer({ min: 0, max: MAX_CHAIN_LENGTH }), payword: bytes(32) })
  .map((p) => formatAuthorization({ chain: b64uEncode(p.chain), index: p.index, payword: b64uEncode(p.payword) }));

/** A header changed in one place: a character replaced, inserted or removed (from a small alphabet of risks). */
const mutated = fc
  .record({
    header: wellFormed,
    at: fc.nat(),
    how: fc.constantFrom('replace', 'insert', 'remove'),
    ch: fc.constantFrom(...'"\\ ,=0123456789AaZz_-+/=\t\u00e9'.split(''), 'netpay', 'NETPAY', '00'),
  })
  .map(({ header, at, how, ch }) => {
    const i = at % (header.length + 1);
    if (how === 'insert') return header.slice(0, i) + ch + header.slice(i);
    if (how === 'remove') return header.slice(0, i) + header.slice(i + 1);
    return header.slice(0, i) + ch + header.slice(i + 1);
  });

describe('payment header: the fast reading of the canonical form', () => {
  it('reads every header a wallet formats, exactly as the strict parser does', () => {
    fc.assert(
      fc.property(wellFormed, (header) => {
        assert.notEqual(readCanonicalAuthorization(header), undefined, header);
        agrees(header);
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with the strict parser on mutated headers and arbitrary text', () => {
    fc.assert(
      fc.property(mutated, (header) => agrees(header)),
      { numRuns: 20_000 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => agrees(text)),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'NetPay chain="index", payword=0123456789AZaz_-'.split('')) }),
        agrees,
      ),
      { numRuns: 5000 },
    );
  });

  it('leaves every other form to the strict parser', () => {
    const header = formatAuthorization({
      chain: b64uEncode(new Uint8Array(16)),
      index: 7,
      payword: b64uEncode(new Uint8Array(32)),
    });
    const others = [
      header.replace('NetPay', 'netpay'), // the scheme in another case: strict reads it, fast does not
      header.replace(', ', ','),
      header.replace('index="7"', 'index=7'),
      header.replace('index="7"', 'index="07"'),
      header.replace('index="7"', `index="${MAX_CHAIN_LENGTH + 1}"`),
      `${header} `,
      header.replace('chain="AAAAAAAAAAAAAAAAAAAAAA"', 'chain="AAAAAAAAAAAAAAAAAAAAAB"'), // non-canonical base64url
    ];
    for (const other of others) assert.equal(readCanonicalAuthorization(other), undefined, other);
    assert.deepEqual(strict(others[0] as string), strict(header));
  });
});
