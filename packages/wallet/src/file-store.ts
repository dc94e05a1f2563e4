import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type CoinStore, type WalletState, isWalletState } from './coin-store.ts';
import { WalletError } from './wallet-error.ts';

/**
 * A `CoinStore` in one JSON file (Node only). Each save writes a temporary file beside it with mode 0600, syncs it to
 * disk, and renames it over the old one, so a crash leaves either the old state or the new, never half of one. The
 * directory is created with mode 0700. The file holds seeds and the session token: it is a secret.
 *
 * One process at a time: two processes saving the same file do not merge their changes (the last rename wins).
 *
 * @example
 * const store = new FileCoinStore(join(homedir(), '.netpay', 'wallet.json'));
 */
export class FileCoinStore implements CoinStore {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  async load(): Promise<WalletState | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      throw new WalletError('corrupt_store', `${this.path} is not JSON`, { cause });
    }
    if (!isWalletState(value)) throw new WalletError('corrupt_store', `${this.path} is not a version 1 wallet`);
    return value;
  }

  async save(state: WalletState): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.chmod(0o600); // the umask cannot widen it, but a pre-set ACL default might
      await handle.writeFile(`${JSON.stringify(state, null, 2)}\n`, 'utf8');
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => {});
      await rm(temp, { force: true });
      throw err;
    }
    await handle.close();
    try {
      await rename(temp, this.path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    // Make the rename itself durable. Directories cannot be opened for sync on every platform: best effort.
    try {
      const dirHandle = await open(dir, 'r');
      try {
        await dirHandle.sync();
      } finally {
        await dirHandle.close();
      }
    } catch {
      // ignore
    }
  }
}
