import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  b64uEncode,
  constantTimeEqual,
  MAX_CHAIN_LENGTH,
  PaywordChain,
  ProtocolError,
  verifyPayword,
  verifyPaywordB64,
} from '../src/index.ts';

const LENGTH = 40;
const chain = PaywordChain.generate(LENGTH);
const point = (i: number) => ({ index: i, payword: chain.payword(i) });

describe('verifyPayword', () => {
  it('verifies from any known point to any later point', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: LENGTH }), fc.integer({ min: 0, max: LENGTH }), (j, k) => {
        assert.equal(verifyPayword({ chainId: chain.chainId, known: point(j), presented: point(k) }), k > j);
      }),
    );
  });

  it('rejects any single flipped bit in the presented payword', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: LENGTH - 1 }),
        fc.integer({ min: 1, max: LENGTH }),
        fc.integer({ min: 0, max: 255 }),
        (j, k, bit) => {
          fc.pre(k > j);
          const tampered = chain.payword(k);
          tampered[bit >> 3] = (tampered[bit >> 3] as number) ^ (1 << (bit & 7));
          assert.equal(
            verifyPayword({ chainId: chain.chainId, known: point(j), presented: { index: k, payword: tampered } }),
            false,
          );
        },
      ),
    );
  });

  it('rejects a changed index, known or presented', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: LENGTH - 1 }),
        fc.integer({ min: 1, max: LENGTH }),
        fc.integer({ min: -5, max: 5 }).filter((d) => d !== 0),
        fc.boolean(),
        (j, k, delta, moveKnown) => {
          fc.pre(k > j);
          const known = moveKnown ? { index: j + delta, payword: chain.payword(j) } : point(j);
          const presented = moveKnown ? point(k) : { index: k + delta, payword: chain.payword(k) };
          assert.equal(verifyPayword({ chainId: chain.chainId, known, presented }), false);
        },
      ),
    );
  });

  it('rejects a different chainId', () => {
    const other = PaywordChain.generate(2);
    assert.equal(verifyPayword({ chainId: other.chainId, known: point(0), presented: point(1) }), false);
  });

  it('returns false, never throws, on malformed input', () => {
    const cases: unknown[] = [
      { chainId: chain.chainId.subarray(1), known: point(0), presented: point(1) },
      { chainId: chain.chainId, known: { index: 0, payword: chain.payword(0).subarray(1) }, presented: point(1) },
      { chainId: chain.chainId, known: point(0), presented: { index: 1, payword: new Uint8Array(33) } },
      { chainId: chain.chainId, known: { index: -1, payword: chain.payword(0) }, presented: point(1) },
      { chainId: chain.chainId, known: { index: 0.5, payword: chain.payword(0) }, presented: point(1) },
      { chainId: chain.chainId, known: point(0), presented: { index: Number.NaN, payword: chain.payword(1) } },
      { chainId: chain.chainId, known: point(0), presented: { index: MAX_CHAIN_LENGTH + 1, payword: chain.seed } },
      { chainId: chain.chainId, known: point(0), presented: point(5), maxSteps: 4 },
      { chainId: 'abc', known: point(0), presented: point(1) },
      { chainId: chain.chainId, known: null, presented: point(1) },
    ];
    for (const input of cases) assert.equal(verifyPayword(input as never), false);
    assert.equal(verifyPayword({ chainId: chain.chainId, known: point(0), presented: point(5), maxSteps: 5 }), true);
  });

  it('verifyPaywordB64 returns false on undecodable input', () => {
    const good = {
      chainId: chain.chainIdB64,
      known: { index: 0, payword: chain.b64(0) },
      presented: { index: 2, payword: chain.b64(2) },
    };
    assert.equal(verifyPaywordB64(good), true);
    assert.equal(verifyPaywordB64({ ...good, chainId: `${good.chainId}=` }), false);
    assert.equal(verifyPaywordB64({ ...good, presented: { index: 2, payword: '!!' } }), false);
    assert.equal(verifyPaywordB64({ ...good, known: { index: 0, payword: b64uEncode(new Uint8Array(31)) } }), false);
  });
});

describe('PaywordChain', () => {
  it('validates its length', () => {
    for (const bad of [0, -1, 1.5, MAX_CHAIN_LENGTH + 1, Number.NaN]) {
      assert.throws(() => PaywordChain.generate(bad), ProtocolError);
    }
    assert.equal(PaywordChain.generate(1).length, 1);
  });

  it('hands out copies and bounds indices', () => {
    const w = chain.payword(3);
    w[0] = (w[0] as number) ^ 1;
    assert.equal(constantTimeEqual(w, chain.payword(3)), false);
    assert.throws(() => chain.payword(LENGTH + 1), ProtocolError);
    assert.throws(() => chain.payword(-1), ProtocolError);
    assert.ok(constantTimeEqual(chain.payword(LENGTH), chain.seed));
  });

  it('roundtrips through fromB64', () => {
    const again = PaywordChain.fromB64(chain.chainIdB64, chain.seedB64, LENGTH);
    assert.equal(again.anchorB64, chain.anchorB64);
  });
});

describe('constantTimeEqual', () => {
  it('matches byte equality', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (a, b) => {
        assert.equal(constantTimeEqual(a, b), a.length === b.length && a.every((x, i) => x === b[i]));
        assert.equal(constantTimeEqual(a, a.slice()), true);
      }),
    );
  });
});
