import { ProtocolError } from '@netpay/protocol';
import { hashToken, newSecret, rfc3339 } from '@netpay/service-kit';
import type { ConnectionRow } from './connection-chain.ts';
import { checkLimit, DEFAULT_LIMITS } from './customer-settings.ts';
import { newId } from './ids.ts';
import type { BrokerTx, Queryable } from './schema.ts';

/**
 * Connections (§7 v1.1): a customer's consent that one vendor site may draw on the NetPay balance. At most one
 * live connection per (customer, site); revoking ends it for good and a later connect makes a new one. The
 * vendor holds the connection's refresh token, which the broker keeps only as a hash: the lookup by hash is the
 * comparison, so it leaks nothing about the token.
 */

const REFRESH_PREFIX = 'np_rt_';

/** The live connection of a customer to a site, if any. */
export async function liveConnection(
  db: Queryable,
  customerId: string,
  vendorId: string,
): Promise<ConnectionRow | undefined> {
  return db
    .selectFrom('connections')
    .selectAll()
    .where('customer_id', '=', customerId)
    .where('vendor_id', '=', vendorId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
}

/**
 * Refresh tokens a connection keeps: one per grant, so each browser session the site holds for the customer (a
 * phone, a laptop) draws on the connection with its own. Past this many, a grant retires the oldest: a site (or
 * whoever drives its connect) cannot pile up tokens, and the customer's eleventh device only retires the first.
 */
export const TOKENS_PER_CONNECTION = 10;

/** The connection a refresh token belongs to (live or revoked); undefined for an unknown or retired token. */
export async function connectionByRefreshToken(db: Queryable, token: string): Promise<ConnectionRow | undefined> {
  if (!token.startsWith(REFRESH_PREFIX)) return undefined;
  return db
    .selectFrom('connection_tokens')
    .innerJoin('connections', 'connections.id', 'connection_tokens.connection_id')
    .selectAll('connections')
    .where('connection_tokens.token_hash', '=', hashToken(token))
    .executeTakeFirst();
}

/** Whether the customer ever revoked a connection to the site (its connect then shows the page unless one is live). */
export async function revokedConnection(db: Queryable, customerId: string, vendorId: string): Promise<boolean> {
  const row = await db
    .selectFrom('connections')
    .select('id')
    .where('customer_id', '=', customerId)
    .where('vendor_id', '=', vendorId)
    .where('revoked_at', 'is not', null)
    .executeTakeFirst();
  return row !== undefined;
}

export async function connectionById(db: Queryable, id: string): Promise<ConnectionRow | undefined> {
  return db.selectFrom('connections').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * The live connection of the customer to the site, made if missing, with a fresh refresh token of its own (returned
 * once). The tokens of earlier grants keep working (another device's session at the site holds them), up to
 * `TOKENS_PER_CONNECTION`; revoking the connection stops them all. Inside the caller's transaction, under the
 * customer's lock.
 */
export async function connectWithFreshToken(
  trx: BrokerTx,
  customerId: string,
  vendorId: string,
  now: Date,
): Promise<{ connection: ConnectionRow; refreshToken: string }> {
  const refreshToken = newSecret(REFRESH_PREFIX);
  const hash = hashToken(refreshToken);
  const existing = await liveConnection(trx, customerId, vendorId);
  if (existing) {
    await trx.updateTable('connections').set({ refresh_token_hash: hash }).where('id', '=', existing.id).execute();
    await addToken(trx, existing.id, hash, now);
    return { connection: { ...existing, refresh_token_hash: hash }, refreshToken };
  }
  const connection: ConnectionRow = {
    id: newId('con'),
    customer_id: customerId,
    vendor_id: vendorId,
    created_at: rfc3339(now),
    revoked_at: null,
    refresh_token_hash: hash,
    chain_id: null,
    site_cap_minor: DEFAULT_LIMITS.siteCapMinor,
  };
  await trx.insertInto('connections').values(connection).execute();
  await addToken(trx, connection.id, hash, now);
  return { connection, refreshToken };
}

/**
 * Records a grant's token and retires the connection's oldest past `TOKENS_PER_CONNECTION`. Under the customer's
 * lock (the caller's), so the grant numbers of one connection never race.
 */
async function addToken(trx: BrokerTx, connectionId: string, hash: string, now: Date): Promise<void> {
  const last = await trx
    .selectFrom('connection_tokens')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .where('connection_id', '=', connectionId)
    .executeTakeFirst();
  const seq = Number(last?.seq ?? 0) + 1;
  await trx
    .insertInto('connection_tokens')
    .values({ token_hash: hash, connection_id: connectionId, seq, created_at: rfc3339(now) })
    .execute();
  await trx
    .deleteFrom('connection_tokens')
    .where('connection_id', '=', connectionId)
    .where('seq', '<=', seq - TOKENS_PER_CONNECTION)
    .execute();
}

/** Whether the customer ever connected a site (the consent page is then skipped, unless they asked for it). */
export async function hasConnected(db: Queryable, customerId: string): Promise<boolean> {
  const row = await db.selectFrom('connections').select('id').where('customer_id', '=', customerId).executeTakeFirst();
  return row !== undefined;
}

/** Sets a site's monthly cap (the customer's own connection only). */
export async function setSiteCap(
  db: Queryable,
  customerId: string,
  connectionId: string,
  capMinor: number,
): Promise<void> {
  const updated = await db
    .updateTable('connections')
    .set({ site_cap_minor: checkLimit('siteCapMinor', capMinor) })
    .where('id', '=', connectionId)
    .where('customer_id', '=', customerId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) !== 1) throw new ProtocolError('not_found', 'no such connected site');
}
