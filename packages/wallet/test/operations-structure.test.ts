// The wallet's shape: each operation is a module over the one injected WalletContext, and operations never import
// each other (what they share lives in wallet-state.ts and the pure modules beside it), so each can be read alone.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const DIR = fileURLToPath(new URL('../src/operations/', import.meta.url));

test('operations import no other operation, and each takes the WalletContext', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.ts'));
  assert.deepEqual(files.sort(), ['account.ts', 'buy.ts', 'coins.ts', 'pay.ts', 'refund.ts', 'sync.ts']);
  for (const file of files) {
    const text = readFileSync(`${DIR}${file}`, 'utf8');
    const imports = [...text.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1] as string);
    const siblings = imports.filter((i) => i.startsWith('./'));
    assert.deepEqual(siblings, [], `${file} imports another operation`);
    assert.ok(imports.includes('../wallet-state.ts'), `${file} works on the WalletContext`);
  }
});
