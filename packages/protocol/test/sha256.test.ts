import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { sha256, sha256BackendName } from '../src/sha256.ts';

test('Node hashes through OpenSSL', () => {
  assert.equal(sha256BackendName(), 'node');
});

test('the native SHA-256 gives the same bytes as the JavaScript one for any input', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (input) => {
      assert.deepEqual(new Uint8Array(sha256(input)), nobleSha256(input));
    }),
    { numRuns: 500 },
  );
});
