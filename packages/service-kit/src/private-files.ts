import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A data folder and every folder in it: only its owner may list or enter it. */
export const PRIVATE_DIR_MODE = 0o700;
/** Every file in a data folder (databases, keys, tokens): only its owner may read it. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Makes every file and folder this process creates private to its user from now on. A service main calls it
 * first, so a file some library creates (a SQLite journal, a log) is never readable by others, even for an
 * instant before a chmod.
 */
export function restrictUmask(): void {
  process.umask(0o077);
}

/**
 * Makes `path` (and any missing parents) a folder of mode 0700; an existing folder is tightened to 0700.
 *
 * @example
 * makePrivateDir('./data/vendors/daily-planet');
 */
export function makePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  chmodSync(path, PRIVATE_DIR_MODE);
}

/**
 * Writes a file of mode 0600 (tightening it if it already existed with another mode). `exclusive` fails with
 * EEXIST when the file exists, for a first-start value that a concurrent process may have written first.
 */
export function writePrivateFile(path: string, text: string, options: { exclusive?: boolean } = {}): void {
  writeFileSync(path, text, { mode: PRIVATE_FILE_MODE, flag: options.exclusive ? 'wx' : 'w' });
  chmodSync(path, PRIVATE_FILE_MODE);
}

/** Creates an empty file of mode 0600 when it is missing; an existing file is tightened to 0600. */
export function touchPrivateFile(path: string): void {
  closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
  chmodSync(path, PRIVATE_FILE_MODE);
}

/**
 * Tightens a data folder made by an older version: every folder in it to 0700, every file to 0600. Symbolic
 * links are left alone (their target may be anywhere).
 */
export function tightenTree(root: string): void {
  chmodSync(root, PRIVATE_DIR_MODE);
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) tightenTree(path);
    else if (entry.isFile()) chmodSync(path, PRIVATE_FILE_MODE);
  }
}

/**
 * What in a folder is open to anyone but its owner: `path mode` lines for each folder not 0700 and each file not
 * 0600, the root included. Empty when everything is private.
 */
export function looseModes(root: string): string[] {
  const loose: string[] = [];
  const visit = (path: string) => {
    const stat = lstatSync(path);
    const mode = stat.mode & 0o777;
    if (stat.isDirectory()) {
      if (mode !== PRIVATE_DIR_MODE) loose.push(`${path} ${mode.toString(8)}`);
      for (const name of readdirSync(path)) visit(join(path, name));
    } else if (stat.isFile() && mode !== PRIVATE_FILE_MODE) {
      loose.push(`${path} ${mode.toString(8)}`);
    }
  };
  visit(root);
  return loose;
}
