import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  loadMasterKey,
  looseModes,
  MASTER_KEY_FILE,
  makePrivateDir,
  newMasterKeyText,
  openDatabase,
  SecretBox,
  SecretBoxError,
  sql,
  tightenTree,
  writePrivateFile,
} from '../src/index.ts';
import { tempDir } from '../src/testing.ts';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('SecretBox', () => {
  const box = SecretBox.fromKey(loadMasterKey({}, { NETPAY_MASTER_KEY: newMasterKeyText() }));

  test('seals to a versioned string that opens only with the same key and context', () => {
    const seed = 'fX3k0Vq1J9Yx7oQ2m4Z8w1v6b5n3c2x1a0s9d8f7g6h';
    const sealed = box.seal(seed, 'chains.seed:abc');
    assert.match(sealed, /^nps1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    assert.ok(!sealed.includes(seed));
    assert.ok(SecretBox.isSealed(sealed));
    assert.ok(!SecretBox.isSealed(seed));
    assert.equal(box.open(sealed, 'chains.seed:abc'), seed);
    assert.notEqual(box.seal(seed, 'chains.seed:abc'), sealed, 'a fresh IV every time');

    assert.throws(() => box.open(sealed, 'chains.seed:abd'), SecretBoxError, 'another row');
    const other = SecretBox.fromKey(loadMasterKey({}, { NETPAY_MASTER_KEY: newMasterKeyText() }));
    assert.throws(() => other.open(sealed, 'chains.seed:abc'), /another master key/);
    const flipped = sealed.slice(0, -2) + (sealed.at(-2) === 'A' ? 'B' : 'A') + sealed.at(-1);
    assert.throws(() => box.open(flipped, 'chains.seed:abc'), SecretBoxError, 'tampered');
    assert.throws(() => box.open(seed, 'chains.seed:abc'), /not a sealed value/);
  });

  test('refuses keys that are not 32 bytes', () => {
    assert.throws(() => SecretBox.fromKey(new Uint8Array(16)), /32 bytes/);
    assert.throws(() => loadMasterKey({}, { NETPAY_MASTER_KEY: 'short' }), /43 characters/);
    assert.throws(() => loadMasterKey({}, {}), /no master key/);
  });
});

describe('the master key file', () => {
  test('is made 0600 on first use and read back after', () => {
    const dir = tempDir();
    try {
      const first = loadMasterKey({ dataDir: dir.path }, {});
      const file = join(dir.path, MASTER_KEY_FILE);
      assert.equal(mode(file), 0o600);
      assert.deepEqual(loadMasterKey({ dataDir: dir.path }, {}), first);
      // The environment wins over the file.
      const text = newMasterKeyText();
      assert.deepEqual(
        loadMasterKey({ dataDir: dir.path }, { NETPAY_MASTER_KEY: text }),
        new Uint8Array(Buffer.from(text, 'base64url')),
      );
      assert.equal(readFileSync(file, 'utf8').trim().length, 43);
    } finally {
      dir.remove();
    }
  });
});

describe('private files', () => {
  test('folders 0700, files 0600, and an older folder is tightened', () => {
    const dir = tempDir();
    try {
      const data = join(dir.path, 'data');
      makePrivateDir(join(data, 'vendors', 'x'));
      writePrivateFile(join(data, 'vendors', 'x', 'api-key'), 'k\n');
      assert.deepEqual(looseModes(data), []);

      mkdirSync(join(data, 'old'), { mode: 0o755 });
      chmodSync(join(data, 'old'), 0o755);
      writeFileSync(join(data, 'old', 'demo.json'), '{}', { mode: 0o644 });
      chmodSync(join(data, 'old', 'demo.json'), 0o644);
      chmodSync(data, 0o755);
      assert.equal(looseModes(data).length, 3);
      tightenTree(data);
      assert.deepEqual(looseModes(data), []);
    } finally {
      dir.remove();
    }
  });

  test('a SQLite database and its -wal and -shm are 0600, also when an older one was 0644', async () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, 'data', 'broker.db');
      const database = openDatabase<{ t: { v: string } }>(`sqlite:${path}`);
      await sql`create table t (v text)`.execute(database.db);
      await sql`insert into t values ('x')`.execute(database.db);
      for (const file of [path, `${path}-wal`, `${path}-shm`]) assert.equal(mode(file), 0o600, file);
      assert.equal(mode(join(dir.path, 'data')), 0o700);
      await database.close();

      chmodSync(path, 0o644);
      const again = openDatabase<{ t: { v: string } }>(`sqlite:${path}`);
      await sql`insert into t values ('y')`.execute(again.db);
      for (const file of [path, `${path}-wal`, `${path}-shm`]) assert.equal(mode(file), 0o600, file);
      await again.close();
    } finally {
      dir.remove();
    }
  });
});
