import { readFileSync } from 'node:fs';

/**
 * The version of the `netpay` command, from its package.json (one folder up from here in the sources and in a
 * build alike), so the number printed is the one published.
 *
 * @example
 * netpayVersion(); // '0.1.0'
 */
export function netpayVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error('the netpay package.json has no version');
  return pkg.version;
}

/** What `netpay --version` prints. */
export function versionLine(): string {
  return `netpay ${netpayVersion()}\n`;
}
