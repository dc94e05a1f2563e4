import { ProtocolError } from '@netpay/protocol';
import { hashPassword, hashToken, isUniqueViolation, newSecret, rfc3339, verifyPassword } from '@netpay/service-kit';
import type { BrokerDeps } from './deps.ts';
import { newId } from './ids.ts';
import type { Queryable } from './schema.ts';

/** Emails are compared case-insensitively: stored trimmed and lower-cased. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

// A real hash to check against when the email is unknown, so a failed login takes as long either way.
let dummyHash: Promise<string> | undefined;

/** §7 `POST {api}/customers`. */
export async function createCustomer(
  deps: BrokerDeps,
  email: string,
  password: string,
): Promise<{ customerId: string }> {
  const customerId = newId('cus');
  const passwordHash = await hashPassword(password);
  try {
    await deps.db
      .insertInto('customers')
      .values({
        id: customerId,
        email: normalizeEmail(email),
        password_hash: passwordHash,
        created_at: rfc3339(deps.clock.now()),
      })
      .execute();
  } catch (error) {
    if (isUniqueViolation(error)) throw new ProtocolError('email_taken', 'an account with this email already exists');
    throw error;
  }
  return { customerId };
}

/**
 * What a session token opens: the JSON API (`Authorization: Bearer`, §7 `POST {api}/sessions`) or the web pages
 * (the `np_session` cookie). A token of one kind is refused as the other, so a cookie that leaks (another site on
 * the same host, a log) never works as an API token, and an API token never carries a browser session.
 */
export type SessionKind = 'api' | 'web';

const TOKEN_PREFIX: Record<SessionKind, string> = { api: 'np_st_', web: 'np_ws_' };

/** §7 `POST {api}/sessions`: a bearer token for the customer API, or (kind `web`) a web page session's cookie. */
export async function createSession(
  deps: BrokerDeps,
  email: string,
  password: string,
  kind: SessionKind = 'api',
): Promise<{ token: string; customerId: string; expiresAt: string }> {
  const row = await deps.db
    .selectFrom('customers')
    .select(['id', 'password_hash'])
    .where('email', '=', normalizeEmail(email))
    .executeTakeFirst();
  if (!row) {
    dummyHash ??= hashPassword('not a real password');
    await verifyPassword(password, await dummyHash);
    throw new ProtocolError('invalid_credentials', 'wrong email or password');
  }
  if (!(await verifyPassword(password, row.password_hash))) {
    throw new ProtocolError('invalid_credentials', 'wrong email or password');
  }
  const token = newSecret(TOKEN_PREFIX[kind]);
  const now = deps.clock.now();
  const expiresAt = rfc3339(new Date(now.getTime() + deps.config.sessionTtlSeconds * 1000));
  await deps.db
    .insertInto('sessions')
    .values({
      token_hash: hashToken(token),
      kind,
      customer_id: row.id,
      created_at: rfc3339(now),
      expires_at: expiresAt,
    })
    .execute();
  return { token, customerId: row.id, expiresAt };
}

/** The customer a session token belongs to, if the session is live and of the kind asked for. */
export async function customerBySession(
  db: Queryable,
  token: string,
  now: Date,
  kind: SessionKind,
): Promise<{ id: string; email: string } | undefined> {
  const row = await db
    .selectFrom('sessions')
    .innerJoin('customers', 'customers.id', 'sessions.customer_id')
    .select(['customers.id as id', 'customers.email as email', 'sessions.expires_at as expires_at'])
    .where('sessions.token_hash', '=', hashToken(token))
    .where('sessions.kind', '=', kind)
    .executeTakeFirst();
  if (!row || now.getTime() >= Date.parse(row.expires_at)) return undefined;
  return { id: row.id, email: row.email };
}

/** Ends a session (logout). */
export async function deleteSession(db: Queryable, token: string): Promise<void> {
  await db.deleteFrom('sessions').where('token_hash', '=', hashToken(token)).execute();
}
