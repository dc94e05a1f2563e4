import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { b64uDecode, b64uEncode, hexEncode, ProtocolError, randomBytes, utf8 } from '../src/index.ts';

const isBadRequest = (err: unknown) => err instanceof ProtocolError && err.code === 'bad_request';

describe('base64url', () => {
  it('roundtrips and agrees with a reference encoder', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const text = b64uEncode(bytes);
        assert.equal(text, Buffer.from(bytes).toString('base64url'));
        assert.deepEqual(b64uDecode(text), bytes);
        assert.deepEqual(b64uDecode(text, bytes.length), bytes);
      }),
    );
  });

  it('is strict', () => {
    for (const bad of ['AA==', 'AA=', 'A', 'AB', 'A+', 'A/', 'AA A', 'ÀA', 'AAAAA', '\u0000A']) {
      assert.throws(() => b64uDecode(bad), isBadRequest, bad);
    }
    // 'AB' has non-zero trailing bits: 'AA' is the canonical encoding of [0].
    assert.deepEqual(b64uDecode('AA'), new Uint8Array([0]));
    assert.throws(() => b64uDecode('AAAA', 2), isBadRequest);
    assert.throws(() => b64uDecode(42 as unknown as string), isBadRequest);
  });

  it('every decodable string re-encodes to itself', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{0,12}$/), (text) => {
        try {
          assert.equal(b64uEncode(b64uDecode(text)), text);
        } catch (err) {
          assert.ok(isBadRequest(err));
        }
      }),
    );
  });
});

describe('utf8, hex and randomBytes', () => {
  it('work', () => {
    assert.deepEqual(utf8('NP1'), new Uint8Array([78, 80, 49]));
    assert.equal(hexEncode(new Uint8Array([1, 255])), '01ff');
    assert.equal(randomBytes(16).length, 16);
    assert.equal(randomBytes(70_000).length, 70_000);
    assert.notDeepEqual(randomBytes(32), randomBytes(32));
    assert.throws(() => randomBytes(-1), RangeError);
  });
});
