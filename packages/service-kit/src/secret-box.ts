import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The first field of every sealed string; a new format gets a new version, old ones stay readable. */
const VERSION = 'nps1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SEALED_RE = /^nps1\.([A-Za-z0-9_-]{8})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22,})$/;

/** The name of the master key file in a data folder, when no key comes from the environment. */
export const MASTER_KEY_FILE = 'master-key';

/** A sealed string could not be opened: another master key, another row, or tampered bytes. */
export class SecretBoxError extends Error {
  override name = 'SecretBoxError';
}

/**
 * Secrets at rest (signing seeds, coin seeds, HMAC keys) sealed with AES-256-GCM under a master key that is not
 * kept in the database, so a copy of the database alone reveals none of them.
 *
 * A sealed value is one string, `nps1.<key id>.<iv>.<ciphertext and tag>` (base64url fields): it fits the text
 * columns the plaintext used. The `context` (for example `chains.seed:<chain id>`) is authenticated with it, so a
 * sealed value copied into another row or column does not open there. The key id names which key sealed it (a
 * MAC of the key, not the key), so a wrong key is told apart from damaged data.
 *
 * @example
 * const box = SecretBox.fromKey(loadMasterKey({ dataDir: './data' }));
 * const stored = box.seal(seed, `chains.seed:${chainId}`);
 * box.open(stored, `chains.seed:${chainId}`); // seed
 */
export class SecretBox {
  readonly keyId: string;
  private readonly key: Buffer;

  private constructor(key: Buffer) {
    this.key = key;
    this.keyId = createHmac('sha256', key).update('netpay master key id', 'utf8').digest('base64url').slice(0, 8);
  }

  /** A box for a 32-byte key; anything else is refused. */
  static fromKey(key: Uint8Array): SecretBox {
    if (key.length !== KEY_BYTES) throw new Error(`a master key is ${KEY_BYTES} bytes, not ${key.length}`);
    return new SecretBox(Buffer.from(key));
  }

  /** True when `text` has the shape of a sealed value (whichever key sealed it). */
  static isSealed(text: string): boolean {
    return SEALED_RE.test(text);
  }

  seal(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(context));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${this.keyId}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  /** The plaintext of a value this box sealed under the same context; a SecretBoxError otherwise. */
  open(sealed: string, context: string): string {
    const match = SEALED_RE.exec(sealed);
    if (!match) throw new SecretBoxError(`not a sealed value (${context})`);
    const [, keyId, ivText, bodyText] = match as unknown as [string, string, string, string];
    if (keyId !== this.keyId) {
      throw new SecretBoxError(`${context} was sealed with another master key (${keyId}, this one is ${this.keyId})`);
    }
    const body = Buffer.from(bodyText, 'base64url');
    if (body.length < TAG_BYTES) throw new SecretBoxError(`sealed value too short (${context})`);
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(ivText, 'base64url'), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(aad(context));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new SecretBoxError(`${context} does not open: damaged, or sealed for another row`);
    }
  }
}

function aad(context: string): Buffer {
  return Buffer.from(`${VERSION}\n${context}`, 'utf8');
}

/**
 * The master key: `NETPAY_MASTER_KEY` (base64url of 32 bytes), else the file `NETPAY_MASTER_KEY_FILE`, else
 * `<dataDir>/master-key`. A file that does not exist yet is made with a fresh random key, mode 0600. In
 * production keep the key apart from the database's backups (the environment, or a file on another volume).
 *
 * @example
 * const key = loadMasterKey({ dataDir: './data' }); // makes ./data/master-key on first start
 */
export function loadMasterKey(options: { dataDir?: string }, env: NodeJS.ProcessEnv = process.env): Uint8Array {
  const fromEnv = env.NETPAY_MASTER_KEY;
  if (fromEnv !== undefined && fromEnv !== '') return decodeMasterKey(fromEnv.trim(), 'NETPAY_MASTER_KEY');
  const file =
    env.NETPAY_MASTER_KEY_FILE || (options.dataDir !== undefined ? join(options.dataDir, MASTER_KEY_FILE) : undefined);
  if (file === undefined) throw new Error('no master key: set NETPAY_MASTER_KEY or give a data folder');
  const existing = readKeyFile(file);
  if (existing !== undefined) return decodeMasterKey(existing, file);
  try {
    // `wx` fails when another process made the file first; its key then wins.
    writeFileSync(file, `${randomBytes(KEY_BYTES).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const made = readKeyFile(file);
  if (made === undefined) throw new Error(`the master key file ${file} is empty`);
  return decodeMasterKey(made, file);
}

/** A new random master key as base64url, for `NETPAY_MASTER_KEY`. */
export function newMasterKeyText(): string {
  return randomBytes(KEY_BYTES).toString('base64url');
}

function readKeyFile(file: string): string | undefined {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return text === '' ? undefined : text;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function decodeMasterKey(text: string, source: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]{43}$/.test(text)) throw new Error(`${source} must hold a base64url 32-byte key (43 characters)`);
  return new Uint8Array(Buffer.from(text, 'base64url'));
}
