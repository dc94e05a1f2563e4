import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  b64uEncode,
  formatAuthorization,
  formatReceipt,
  formatWwwAuthenticate,
  isNetPayAuthorization,
  MAX_CHAIN_LENGTH,
  MAX_HEADER_LENGTH,
  ProtocolError,
  parseAuthorization,
  parseReceipt,
  parseWwwAuthenticate,
} from '../src/index.ts';
import { vectors } from './vectors.ts';

const chain: string = vectors.chain.chainId;
const payword = vectors.chain.paywords[3] as string;
const valid = `NetPay chain="${chain}", index="3", payword="${payword}"`;

/** Asserts that `fn` either returns or throws a bad_request ProtocolError, nothing else. */
function onlyBadRequest(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `threw ${String(err)}`);
    assert.equal(err.code, 'bad_request');
  }
}

const b64 = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map(b64uEncode);

describe('Authorization', () => {
  it('parses the canonical form', () => {
    assert.deepEqual(parseAuthorization(valid), { chain, index: 3, payword });
  });

  it('accepts any scheme case, any parameter order and optional whitespace', () => {
    const variants = [
      `netpay index="3",payword="${payword}",chain="${chain}"`,
      `NETPAY   payword = "${payword}" ,  chain="${chain}"\t, index="3"  `,
      `  NetPay chain="${chain}",index="3",PAYWORD="${payword}"`,
    ];
    for (const v of variants) assert.deepEqual(parseAuthorization(v), { chain, index: 3, payword });
  });

  it('rejects malformed headers with bad_request', () => {
    const bad = [
      undefined,
      '',
      'NetPay',
      'NetPay ',
      `Bearer chain="${chain}", index="3", payword="${payword}"`,
      `NetPayX chain="${chain}", index="3", payword="${payword}"`,
      `NetPay chain="${chain}", index="3"`,
      `NetPay chain="${chain}", index="3", payword="${payword}", extra="1"`,
      `NetPay chain="${chain}", index="3", index="3", payword="${payword}"`,
      `NetPay chain="${chain}", index="03", payword="${payword}"`,
      `NetPay chain="${chain}", index="-1", payword="${payword}"`,
      `NetPay chain="${chain}", index="3.0", payword="${payword}"`,
      `NetPay chain="${chain}", index="1e3", payword="${payword}"`,
      `NetPay chain="${chain}", index="${MAX_CHAIN_LENGTH + 1}", payword="${payword}"`,
      `NetPay chain="${chain}", index=3, payword="${payword}"`,
      `NetPay chain="${chain}=", index="3", payword="${payword}"`,
      `NetPay chain="${payword}", index="3", payword="${chain}"`,
      `NetPay chain="${chain.slice(0, -1)}x", index="3", payword="${payword}"`,
      `NetPay chain="${chain}", index="3", payword="${payword}",`,
      `NetPay chain="${chain}",, index="3", payword="${payword}"`,
      `NetPay chain="${chain}" index="3" payword="${payword}"`,
      `NetPay chain="${chain}", index="3", payword="${payword}`,
      `NetPay chain="${chain}", index="3", payword="${payword}\\"`,
      `NetPay chain="${chain}", index="3", payword="${payword}" x`,
      `NetPay chain="${chain}", index="3", payword="${payword}"${' '.repeat(MAX_HEADER_LENGTH)}`,
    ];
    for (const header of bad) {
      assert.throws(
        () => parseAuthorization(header),
        (err: unknown) => err instanceof ProtocolError && err.code === 'bad_request',
        String(header),
      );
    }
  });

  it('format → parse roundtrips', () => {
    fc.assert(
      fc.property(b64(16), fc.integer({ min: 0, max: MAX_CHAIN_LENGTH }), b64(32), (c, index, p) => {
        const params = { chain: c, index, payword: p };
        assert.deepEqual(parseAuthorization(formatAuthorization(params)), params);
      }),
    );
  });

  it('formatting refuses invalid values', () => {
    assert.throws(() => formatAuthorization({ chain, index: -1, payword }), ProtocolError);
    assert.throws(() => formatAuthorization({ chain: payword, index: 1, payword }), ProtocolError);
    assert.throws(() => formatAuthorization({ chain, index: 1, payword: 'x"' }), ProtocolError);
  });

  it('parse throws nothing but bad_request on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' })), (s) => {
        onlyBadRequest(() => parseAuthorization(s));
        onlyBadRequest(() => parseAuthorization(`NetPay ${s}`));
        onlyBadRequest(() => parseWwwAuthenticate(s));
        onlyBadRequest(() => parseReceipt(s));
      }),
      { numRuns: 500 },
    );
  });

  it('parse throws nothing but bad_request on mutated valid headers', () => {
    const mutation = fc.record({
      at: fc.nat({ max: valid.length }),
      remove: fc.nat({ max: 4 }),
      insert: fc.string({ maxLength: 4, unit: 'binary' }),
    });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        let header = valid;
        for (const m of mutations) header = header.slice(0, m.at) + m.insert + header.slice(m.at + m.remove);
        onlyBadRequest(() => {
          const parsed = parseAuthorization(header);
          // Anything that still parses must be well formed.
          formatAuthorization(parsed);
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('isNetPayAuthorization checks only the scheme', () => {
    assert.equal(isNetPayAuthorization(valid), true);
    assert.equal(isNetPayAuthorization('netpay whatever'), true);
    assert.equal(isNetPayAuthorization('NetPay'), true);
    assert.equal(isNetPayAuthorization('Bearer abc'), false);
    assert.equal(isNetPayAuthorization('NetPayment x'), false);
    assert.equal(isNetPayAuthorization(undefined), false);
  });
});

describe('WWW-Authenticate', () => {
  const challenge = { realm: 'daily-planet', price: 5, currency: 'NZD', broker: 'https://broker.example' };

  it('formats the documented form and roundtrips', () => {
    const text = formatWwwAuthenticate(challenge);
    assert.equal(text, 'NetPay realm="daily-planet", price="5", currency="NZD", broker="https://broker.example"');
    assert.deepEqual(parseWwwAuthenticate(text), challenge);
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/),
        fc.maxSafeNat(),
        fc.stringMatching(/^[A-Z]{3}$/),
        fc.webUrl({ validSchemes: ['https', 'http'] }).filter((u) => !/["\\\s]/.test(u) && u.length < 500),
        (realm, price, currency, broker) => {
          const params = { realm, price, currency, broker };
          assert.deepEqual(parseWwwAuthenticate(formatWwwAuthenticate(params)), params);
        },
      ),
    );
  });

  it('ignores unknown parameters but rejects missing, duplicate and malformed ones', () => {
    assert.deepEqual(parseWwwAuthenticate(`${formatWwwAuthenticate(challenge)}, future="x"`), challenge);
    for (const bad of [
      'NetPay realm="daily-planet", price="5", currency="NZD"',
      'NetPay realm="daily-planet", price="05", currency="NZD", broker="https://broker.example"',
      'NetPay realm="Daily", price="5", currency="NZD", broker="https://broker.example"',
      'NetPay realm="daily-planet", price="5", currency="nzd", broker="https://broker.example"',
      'NetPay realm="daily-planet", price="5", currency="NZD", broker="ftp://broker.example"',
      'NetPay realm="a", realm="b", price="5", currency="NZD", broker="https://broker.example"',
    ]) {
      assert.throws(() => parseWwwAuthenticate(bad), ProtocolError, bad);
    }
  });
});

describe('NetPay-Receipt', () => {
  it('roundtrips', () => {
    fc.assert(
      fc.property(b64(16), fc.integer({ min: 0, max: MAX_CHAIN_LENGTH }), fc.maxSafeNat(), (c, index, balance) => {
        const params = { chain: c, index, balance };
        assert.deepEqual(parseReceipt(formatReceipt(params)), params);
      }),
    );
    assert.equal(formatReceipt({ chain, index: 3, balance: 13 }), `chain="${chain}", index="3", balance="13"`);
  });

  it('rejects malformed receipts', () => {
    assert.throws(() => parseReceipt(`chain="${chain}", index="3"`), ProtocolError);
    assert.throws(() => parseReceipt(`chain="${chain}", index="3", balance="-1"`), ProtocolError);
    assert.throws(() => formatReceipt({ chain, index: 3, balance: 1.5 }), ProtocolError);
  });
});
