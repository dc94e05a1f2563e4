// The OpenSSL backend (Node) and the JavaScript backend (browsers) must be interchangeable: the same keys, the same
// signature bytes, the same verdict on every input, including crafted ones where plain OpenSSL and plain noble
// disagree (small-order keys, small-order parts in R or in the key).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import type { Ed25519Backend } from '../src/ed25519-backend.ts';
import { nativeEd25519 } from '../src/ed25519-native.ts';
import { nobleEd25519 } from '../src/ed25519-noble.ts';
import { ed25519BackendName, signBytes, utf8, verifyBytes } from '../src/index.ts';
import { LruCache } from '../src/lru-cache.ts';

const native = nativeEd25519() as Ed25519Backend;
const backends = [native, nobleEd25519];
const Point = ed25519.Point;
const ORDER = Point.Fn.ORDER;
type EdPoint = InstanceType<typeof Point>;

function le32(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function challenge(r: Uint8Array, a: Uint8Array, message: Uint8Array): bigint {
  return bytesToNumberLE(sha512(concat(r, a, message))) % ORDER;
}

/** A point of order 8 (the torsion a malicious signer could mix into R or into its key). */
const torsion8: EdPoint = (() => {
  for (let y = 2n; ; y++) {
    try {
      const p = Point.fromBytes(le32(y), false);
      const t = p.multiplyUnsafe(ORDER - 1n).add(p); // [L]P: the small-order part of P
      if (!t.double().double().is0()) return t;
    } catch {
      // not a y on the curve
    }
  }
})();

const message = utf8('netpay/touchstone/v1\nchain');
const seed = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const { scalar, pointBytes: honestKey } = ed25519.utils.getExtendedPublicKey(seed);

function verdicts(signature: Uint8Array, msg: Uint8Array, publicKey: Uint8Array): boolean[] {
  return backends.map((b) => b.verify(signature, msg, publicKey));
}

describe('Ed25519 backends', () => {
  it('Node uses OpenSSL, and the facade signs through it', () => {
    assert.ok(native, 'node:crypto Ed25519 is available');
    assert.equal(ed25519BackendName(), 'node');
    assert.deepEqual(signBytes(message, seed), nobleEd25519.sign(message, seed));
  });

  it('give the same keys, the same signatures and the same verdicts for random keys, messages and tampering', () => {
    const mutation = fc.oneof(
      fc.constant({ kind: 'none' as const }),
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(64 * 8 - 1) }),
      fc.record({ kind: fc.constant('signature' as const), bytes: fc.uint8Array({ minLength: 64, maxLength: 64 }) }),
      fc.record({ kind: fc.constant('key' as const), bytes: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
      fc.record({ kind: fc.constant('length' as const), bytes: fc.uint8Array({ maxLength: 70 }) }),
      fc.constant({ kind: 'high-s' as const }),
      fc.constant({ kind: 'other-message' as const }),
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 300 }),
        mutation,
        (privateSeed, msg, m) => {
          const publicKey = native.publicKey(privateSeed);
          assert.deepEqual(publicKey, nobleEd25519.publicKey(privateSeed));
          const signature = native.sign(msg, privateSeed);
          assert.deepEqual(signature, nobleEd25519.sign(msg, privateSeed));
          let sig: Uint8Array = signature;
          let key: Uint8Array = publicKey;
          let signed: Uint8Array = msg;
          if (m.kind === 'flip') {
            sig = signature.slice();
            sig[m.at >> 3] = (sig[m.at >> 3] as number) ^ (1 << (m.at & 7));
          } else if (m.kind === 'signature' || m.kind === 'length') {
            sig = m.bytes;
          } else if (m.kind === 'key') {
            key = m.bytes;
          } else if (m.kind === 'high-s') {
            sig = concat(signature.subarray(0, 32), le32(bytesToNumberLE(signature.subarray(32)) + ORDER));
          } else if (m.kind === 'other-message') {
            signed = concat(msg, Uint8Array.of(0));
          }
          const got = verdicts(sig, signed, key);
          assert.deepEqual(got, [m.kind === 'none', m.kind === 'none']);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never throw on values that are not byte arrays', () => {
    const junk: unknown[] = [undefined, null, 'sig', 42, {}, [1, 2, 3], new Uint16Array(32)];
    for (const backend of backends) {
      for (const x of junk) {
        const good = backend.sign(message, seed);
        assert.equal(backend.verify(x as Uint8Array, message, honestKey), false);
        assert.equal(backend.verify(good, x as Uint8Array, honestKey), false);
        assert.equal(backend.verify(good, message, x as Uint8Array), false);
      }
    }
    assert.equal(verifyBytes(null as unknown as Uint8Array, message, honestKey), false);
  });

  it('refuse the identity key, with which plain OpenSSL verifies every message', () => {
    const identity = Point.ZERO.toBytes();
    const forged = concat(identity, le32(0n));
    assert.deepEqual(verdicts(forged, message, identity), [false, false]);
    // The same point with its sign bit set: a second encoding OpenSSL decodes, strict RFC 8032 does not.
    const negativeZero = identity.slice();
    negativeZero[31] = 0x80;
    assert.deepEqual(verdicts(forged, message, negativeZero), [false, false]);
    // And (0, -1), the other point with x = 0, likewise.
    const order2 = Point.fromBytes(le32(2n ** 255n - 20n), false).toBytes();
    const negativeOrder2 = order2.slice();
    negativeOrder2[31] = (negativeOrder2[31] as number) | 0x80;
    assert.deepEqual(verdicts(concat(order2, le32(0n)), message, negativeOrder2), [false, false]);
  });

  it('refuse every small-order key, whatever R', () => {
    for (let i = 1n; i <= 8n; i++) {
      const key = torsion8.multiplyUnsafe(i).toBytes();
      for (let j = 0n; j < 8n; j++) {
        const sig = concat(torsion8.multiplyUnsafe(j).toBytes(), le32(0n));
        assert.deepEqual(verdicts(sig, message, key), [false, false], `key ${i}, R ${j}`);
      }
    }
  });

  it('refuse a signature whose R carries a small-order part (plain noble, being cofactored, takes it)', () => {
    const r = 12345n;
    const R = Point.BASE.multiply(r).add(torsion8).toBytes();
    const k = challenge(R, honestKey, message);
    const sig = concat(R, le32((r + k * scalar) % ORDER));
    assert.equal(ed25519.verify(sig, message, honestKey, { zip215: false }), true);
    assert.deepEqual(verdicts(sig, message, honestKey), [false, false]);
  });

  it('agree on a key with a small-order part: refused when only the cofactored equation holds, taken when the exact one does', () => {
    const key = Point.fromBytes(honestKey).add(torsion8);
    const keyBytes = key.toBytes();
    // Signed as usual with the prime-order part's scalar: [8]-equation holds, [S]B = R + [k]A fails unless 8 | k.
    let r = 1000n;
    let k = challenge(Point.BASE.multiply(r).toBytes(), keyBytes, message);
    while (k % 8n === 0n) k = challenge(Point.BASE.multiply(++r).toBytes(), keyBytes, message);
    const plain = concat(Point.BASE.multiply(r).toBytes(), le32((r + k * scalar) % ORDER));
    assert.equal(ed25519.verify(plain, message, keyBytes, { zip215: false }), true);
    assert.deepEqual(verdicts(plain, message, keyBytes), [false, false]);
    // R = rB - [k]T makes the exact equation hold: search r until the challenge agrees with the guessed torsion.
    for (let attempt = 0n; ; attempt++) {
      const guess = attempt % 8n;
      const R = Point.BASE.multiply(2000n + attempt).subtract(torsion8.multiplyUnsafe(guess === 0n ? 0n : guess));
      const kk = challenge(R.toBytes(), keyBytes, message);
      if (kk % 8n !== guess) continue;
      const exact = concat(R.toBytes(), le32((2000n + attempt + kk * scalar) % ORDER));
      assert.deepEqual(verdicts(exact, message, keyBytes), [true, true]);
      break;
    }
  });

  it('sign with the new seed when a seed array is changed in place', () => {
    const mutable = seed.slice();
    const first = native.sign(message, mutable);
    mutable[0] = (mutable[0] as number) ^ 1;
    const second = native.sign(message, mutable);
    assert.notDeepEqual(first, second);
    assert.deepEqual(second, nobleEd25519.sign(message, mutable));
    assert.deepEqual(native.publicKey(mutable), nobleEd25519.publicKey(mutable));
  });
});

describe('LruCache', () => {
  it('keeps at most its capacity, forgetting the least recently used', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    assert.equal(cache.get('a'), 1); // a is now the most recent
    cache.set('c', 3);
    assert.equal(cache.size, 2);
    assert.equal(cache.get('b'), undefined);
    assert.equal(cache.get('a'), 1);
    assert.equal(cache.get('c'), 3);
    cache.set('c', 4);
    assert.equal(cache.size, 2);
    assert.equal(cache.get('c'), 4);
  });
});
