import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import fc from 'fast-check';
import {
  b64uDecode,
  b64uEncode,
  findKey,
  generateSigningKey,
  type HolderCertificate,
  ProtocolError,
  type ReleaseStatement,
  signBytes,
  signHolderCertificate,
  signRelease,
  signTouchstone,
  type Touchstone,
  utf8,
  verifyBytes,
  verifyHolderCertificate,
  verifyRelease,
  verifyTouchstone,
} from '../src/index.ts';
import { vectors } from './vectors.ts';

const brokerKey = b64uDecode(vectors.keys.broker.publicKey, 32);
const vendorKey = b64uDecode(vectors.keys['daily-planet'].publicKey, 32);

type Doc = Record<string, string | number>;
interface Kind {
  name: string;
  doc: Doc;
  key: Uint8Array;
  verify: (doc: Doc, key: Uint8Array) => boolean;
  sign: (doc: Doc, seed: Uint8Array) => Doc;
}

const kinds: Kind[] = [
  {
    name: 'touchstone',
    doc: vectors.touchstone,
    key: brokerKey,
    verify: (d, k) => verifyTouchstone(d as unknown as Touchstone, k),
    sign: (d, s) => signTouchstone(d as unknown as Touchstone, s),
  },
  {
    name: 'holder certificate',
    doc: vectors.holderCerts[0],
    key: brokerKey,
    verify: (d, k) => verifyHolderCertificate(d as unknown as HolderCertificate, k),
    sign: (d, s) => signHolderCertificate(d as unknown as HolderCertificate, s),
  },
  {
    name: 'release statement',
    doc: vectors.release,
    key: vendorKey,
    verify: (d, k) => verifyRelease(d as unknown as ReleaseStatement, k),
    sign: (d, s) => signRelease(d as unknown as ReleaseStatement, s),
  },
];

/** A value different from `old` of the same JSON type, or of another type. */
function changed(old: string | number): fc.Arbitrary<unknown> {
  const sameType =
    typeof old === 'number'
      ? fc.integer({ min: 0, max: 2 ** 40 }).filter((n) => n !== old)
      : fc.string({ maxLength: 50 }).filter((s) => s !== old);
  return fc
    .oneof(sameType, fc.constantFrom<unknown>(null, undefined, String(old), Number(old), `${old}\n`, [old], -1, 1.5))
    .filter((v) => v !== old);
}

for (const kind of kinds) {
  describe(`signed ${kind.name}`, () => {
    it('verifies as given', () => {
      assert.equal(kind.verify(kind.doc, kind.key), true);
    });

    it('fails when any single field is changed', () => {
      const fields = Object.keys(kind.doc).filter((f) => f !== 'sig');
      const arb = fc
        .constantFrom(...fields)
        .chain((field) => changed(kind.doc[field] as string | number).map((value) => ({ field, value })));
      fc.assert(
        fc.property(arb, ({ field, value }) => {
          const tampered = { ...kind.doc, [field]: value } as Doc;
          assert.equal(kind.verify(tampered, kind.key), false);
        }),
      );
    });

    it('fails on a tampered, missing or malformed sig, and never throws', () => {
      const sig = kind.doc.sig as string;
      const flipped = b64uDecode(sig, 64);
      flipped[5] = (flipped[5] as number) ^ 1;
      for (const bad of [b64uEncode(flipped), `${sig}=`, sig.slice(1), '', undefined, 42]) {
        assert.equal(kind.verify({ ...kind.doc, sig: bad } as Doc, kind.key), false);
      }
      assert.equal(kind.verify(null as never, kind.key), false);
      assert.equal(kind.verify(kind.doc, new Uint8Array(31)), false);
    });

    it('refuses to sign a field containing a newline', () => {
      const { privateSeed } = generateSigningKey();
      const field = Object.keys(kind.doc).find((f) => typeof kind.doc[f] === 'string' && f !== 'sig') as string;
      assert.throws(() => kind.sign({ ...kind.doc, [field]: 'a\nb' }, privateSeed), ProtocolError);
    });

    it('a fresh key signs and verifies; sign drops stray fields', () => {
      const { privateSeed, publicKey } = generateSigningKey();
      const signed = kind.sign({ ...kind.doc, extra: 'x' }, privateSeed);
      assert.equal('extra' in signed, false);
      assert.equal(kind.verify(signed, publicKey), true);
      assert.equal(kind.verify(signed, kind.key), false);
    });
  });
}

describe('ed25519', () => {
  it('signs and verifies bytes; verify never throws', () => {
    const { privateSeed, publicKey } = generateSigningKey();
    const sig = signBytes(utf8('hello'), privateSeed);
    assert.equal(verifyBytes(sig, utf8('hello'), publicKey), true);
    assert.equal(verifyBytes(sig, utf8('hellO'), publicKey), false);
    assert.equal(verifyBytes(sig.subarray(1), utf8('hello'), publicKey), false);
    assert.equal(verifyBytes(sig, utf8('hello'), new Uint8Array(32).fill(255)), false);
    assert.throws(() => signBytes(utf8('x'), new Uint8Array(31)), ProtocolError);
  });

  it('findKey picks the Ed25519 key by id', () => {
    const keys = [
      { keyId: 'old', alg: 'Ed25519', publicKey: vectors.keys['daily-planet'].publicKey },
      { keyId: 'bk1', alg: 'Ed25519', publicKey: vectors.keys.broker.publicKey },
      { keyId: 'rsa', alg: 'RS256', publicKey: vectors.keys.broker.publicKey },
      { keyId: 'bad', alg: 'Ed25519', publicKey: 'nope' },
    ];
    assert.deepEqual(findKey(keys, 'bk1'), brokerKey);
    assert.equal(findKey(keys, 'rsa'), undefined);
    assert.equal(findKey(keys, 'bad'), undefined);
    assert.equal(findKey(keys, 'missing'), undefined);
  });
});

test('keyIdForPublicKey is stable, short and differs between keys', async () => {
  const { keyIdForPublicKey, generateSigningKey } = await import('../src/index.ts');
  const a = generateSigningKey().publicKey;
  const b = generateSigningKey().publicKey;
  assert.equal(keyIdForPublicKey(a), keyIdForPublicKey(a));
  assert.match(keyIdForPublicKey(a), /^v[A-Za-z0-9_-]{10}$/);
  assert.notEqual(keyIdForPublicKey(a), keyIdForPublicKey(b));
});
