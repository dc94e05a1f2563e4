import { randomBytes } from 'node:crypto';

/** A random identifier with a readable prefix (`cus_…`, `red_…`): 12 random bytes, base64url. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}
