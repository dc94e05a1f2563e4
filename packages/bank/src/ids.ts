import { randomBytes } from 'node:crypto';

/** A random object id with a type prefix (`ch_`, `re_`, `po_`), like a card gateway's. */
export function newObjectId(prefix: 'ch' | 're' | 'po'): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}
