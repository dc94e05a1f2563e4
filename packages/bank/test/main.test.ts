import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { describe, it } from 'node:test';
import { tempDir } from '@netpay/service-kit/testing';
import { bankApiKeyPath, readOrCreateBankApiKey } from '../src/main.ts';

describe('bank API key file', () => {
  it('is created once with mode 0600 and read back the same', () => {
    const dir = tempDir();
    try {
      const data = `${dir.path}/nested/data`;
      const key = readOrCreateBankApiKey(data);
      assert.match(key, /^bk_[A-Za-z0-9_-]{43}$/);
      assert.equal(statSync(bankApiKeyPath(data)).mode & 0o777, 0o600);
      assert.equal(readOrCreateBankApiKey(data), key);
    } finally {
      dir.remove();
    }
  });
});
