import { hashToken } from '@netpay/service-kit';
import { type BankDb, findMerchantByKeyHash } from './store.ts';

const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;

/**
 * The merchant an `Authorization: Bearer <key>` header names, or undefined. Keys are stored only as SHA-256
 * hashes; looking the hash up is the comparison, so no plaintext key is ever compared or kept.
 */
export async function authenticateMerchant(db: BankDb, authorization: string | undefined): Promise<string | undefined> {
  const match = authorization === undefined ? null : BEARER.exec(authorization);
  if (!match?.[1]) return undefined;
  return findMerchantByKeyHash(db, hashToken(match[1]));
}
