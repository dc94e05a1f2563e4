import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  b64uDecode,
  b64uEncode,
  checkWire,
  generateChain,
  HolderCertificateSchema,
  hexEncode,
  holderSignedBytes,
  PaywordChain,
  paywordAt,
  publicKeyFromSeed,
  ReleaseStatementSchema,
  releaseSignedBytes,
  signHolderCertificate,
  signRelease,
  signTouchstone,
  stepInput,
  stepPayword,
  TouchstoneSchema,
  touchstoneSignedBytes,
  verifyHolderCertificate,
  verifyPaywordB64,
  verifyRelease,
  verifyTouchstone,
} from '../src/index.ts';
import { vectors } from './vectors.ts';

const chainId = b64uDecode(vectors.chain.chainId, 16);
const seed = b64uDecode(vectors.chain.seed, 32);
const length: number = vectors.chain.length;
const brokerSeed = b64uDecode(vectors.keys.broker.privateSeed, 32);
const brokerKey = b64uDecode(vectors.keys.broker.publicKey, 32);
const vendorSeed = b64uDecode(vectors.keys['daily-planet'].privateSeed, 32);
const vendorKey = b64uDecode(vectors.keys['daily-planet'].publicKey, 32);

function withoutSig<T extends { sig: string }>(doc: T): Omit<T, 'sig'> {
  const { sig: _sig, ...fields } = doc;
  return fields;
}

describe('test vectors: chain', () => {
  it('generateChain reproduces every payword', () => {
    assert.deepEqual(generateChain(chainId, seed, length).map(b64uEncode), vectors.chain.paywords);
  });

  it('PaywordChain and paywordAt agree with the vectors', () => {
    const chain = new PaywordChain(chainId, seed, length);
    assert.equal(chain.anchorB64, vectors.chain.paywords[0]);
    assert.equal(chain.chainIdB64, vectors.chain.chainId);
    assert.equal(chain.seedB64, vectors.chain.seed);
    for (let i = 0; i <= length; i++) {
      assert.equal(chain.b64(i), vectors.chain.paywords[i]);
      assert.equal(b64uEncode(paywordAt(chainId, seed, length, i)), vectors.chain.paywords[i]);
    }
  });

  it('step input for index 15 matches', () => {
    assert.equal(hexEncode(stepInput(chainId, 15, seed)), vectors.chain.stepInputHexForIndex15);
    assert.equal(b64uEncode(stepPayword(chainId, 15, seed)), vectors.chain.paywords[15]);
  });

  it('every later payword verifies against every earlier one', () => {
    const words: string[] = vectors.chain.paywords;
    for (let j = 0; j <= length; j++) {
      for (let k = 0; k <= length; k++) {
        const ok = verifyPaywordB64({
          chainId: vectors.chain.chainId,
          known: { index: j, payword: words[j] as string },
          presented: { index: k, payword: words[k] as string },
        });
        assert.equal(ok, k > j, `j=${j} k=${k}`);
      }
    }
  });
});

describe('test vectors: keys', () => {
  for (const [name, key] of Object.entries(vectors.keys) as [string, { privateSeed: string; publicKey: string }][]) {
    it(`public key of ${name} derives from its seed`, () => {
      assert.equal(b64uEncode(publicKeyFromSeed(b64uDecode(key.privateSeed, 32))), key.publicKey);
    });
  }
});

describe('test vectors: signed documents', () => {
  it('touchstone signed bytes, signature and verification', () => {
    const fields = withoutSig(vectors.touchstone);
    assert.equal(touchstoneSignedBytes(fields), vectors.touchstoneSignedBytes);
    assert.equal(touchstoneSignedBytes(vectors.touchstone), vectors.touchstoneSignedBytes);
    assert.deepEqual(signTouchstone(fields, brokerSeed), vectors.touchstone);
    assert.equal(verifyTouchstone(vectors.touchstone, brokerKey), true);
    assert.equal(verifyTouchstone(vectors.touchstone, vendorKey), false);
    assert.equal(checkWire(TouchstoneSchema, vectors.touchstone), true);
  });

  it('holder certificates: signature and verification', () => {
    for (const cert of vectors.holderCerts) {
      const fields = withoutSig(cert);
      const text = holderSignedBytes(fields);
      const expected = [
        'netpay/holder/v1',
        cert.chainId,
        cert.epoch,
        cert.vendorId,
        cert.prevVendorId,
        cert.prevEpoch,
        cert.broker,
        cert.keyId,
        cert.issuedAt,
        cert.expiresAt,
      ].join('\n');
      assert.equal(text, expected);
      assert.deepEqual(signHolderCertificate(fields, brokerSeed), cert);
      assert.equal(verifyHolderCertificate(cert, brokerKey), true);
      assert.equal(checkWire(HolderCertificateSchema, cert), true);
    }
  });

  it('release statement signed bytes, signature and verification', () => {
    const fields = withoutSig(vectors.release);
    assert.equal(releaseSignedBytes(fields), vectors.releaseSignedBytes);
    assert.deepEqual(signRelease(fields, vendorSeed), vectors.release);
    assert.equal(verifyRelease(vectors.release, vendorKey), true);
    assert.equal(verifyRelease(vectors.release, brokerKey), false);
    assert.equal(checkWire(ReleaseStatementSchema, vectors.release), true);
    // The release's payword is the chain's payword at its index.
    assert.equal(vectors.release.payword, vectors.chain.paywords[vectors.release.index]);
  });
});

describe('test vectors: invalid', () => {
  for (const entry of vectors.invalid) {
    it(entry.what, () => {
      assert.equal(entry.valid, false);
      let ok: boolean;
      if ('doc' in entry) {
        if ('anchor' in entry.doc) ok = verifyTouchstone(entry.doc, brokerKey);
        else if ('toVendorId' in entry.doc) ok = verifyRelease(entry.doc, vendorKey);
        else ok = verifyHolderCertificate(entry.doc, brokerKey);
      } else {
        ok = verifyPaywordB64({
          chainId: vectors.chain.chainId,
          known: entry.verifiesAgainst,
          presented: { index: entry.index, payword: entry.payword },
        });
      }
      assert.equal(ok, false);
    });
  }
});
