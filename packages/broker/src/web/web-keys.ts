import { createHmac } from 'node:crypto';
import { isUniqueViolation, newSecret, rfc3339 } from '@netpay/service-kit';
import type { Kysely } from 'kysely';
import type { BrokerDeps } from '../deps.ts';
import type { BrokerSchema } from '../schema.ts';
import { openWebSecret, sealWebSecret } from '../store-secrets.ts';

interface WebSecretTable {
  name: string;
  secret: string;
  created_at: string;
}

const NAME = 'web-hmac';

/**
 * The pages' HMAC key (CSRF tokens, operator cookies), made once and kept in the database so every broker
 * process sharing the store agrees on it and a restart does not invalidate open forms. It is stored sealed under
 * the master key, so the database alone cannot forge a CSRF token or an operator cookie.
 */
export async function loadWebKey(deps: BrokerDeps): Promise<Buffer> {
  const db = deps.db as unknown as Kysely<BrokerSchema & { web_secrets: WebSecretTable }>;
  const read = () => db.selectFrom('web_secrets').select('secret').where('name', '=', NAME).executeTakeFirst();
  let row = await read();
  if (!row) {
    try {
      await db
        .insertInto('web_secrets')
        .values({ name: NAME, secret: sealWebSecret(NAME, newSecret()), created_at: rfc3339(deps.clock.now()) })
        .execute();
    } catch (error) {
      if (!isUniqueViolation(error)) throw error; // another process made it first
    }
    row = await read();
  }
  if (!row) throw new Error('web secret missing after insert');
  return Buffer.from(openWebSecret(NAME, row.secret), 'base64url');
}

/** HMAC-SHA-256 of `purpose` and `parts`, base64url; the purpose keeps tokens of one kind from passing as another. */
export function mac(key: Buffer, purpose: string, ...parts: string[]): string {
  return createHmac('sha256', key)
    .update([purpose, ...parts].join('\n'), 'utf8')
    .digest('base64url');
}
