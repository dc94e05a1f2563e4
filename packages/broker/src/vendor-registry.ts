import { b64uDecode, keyIdForPublicKey, type PublicKeyEntry, ProtocolError } from '@netpay/protocol';
import { hashToken, isUniqueViolation, newSecret, rfc3339 } from '@netpay/service-kit';
import { ensureVendorAccount } from './ledger-store.ts';
import { PreparedQuery } from './prepared-query.ts';
import type { BrokerDb, Queryable } from './schema.ts';

/** The vendor name the broker itself uses when it takes a chain back for a refund (§7). */
export const BROKER_VENDOR_ID = 'broker';

export interface VendorRegistration {
  id: string;
  name: string;
  url: string;
  releaseUrl: string;
  /** Ed25519 public key, base64url. */
  publicKey: string;
  keyId?: string;
}

export interface VendorRow {
  id: string;
  name: string;
  url: string;
  release_url: string;
}

const VENDOR_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const URL_RE = /^https?:\/\/[^\s"\\]+$/;

export { keyIdForPublicKey };

/**
 * Registers a vendor (operator command). Returns its API key, which the broker keeps only as a hash.
 * Registering an existing id again updates its name and URLs, adds the public key to its key set if it is
 * new, and issues a fresh API key (the old one stops working); a known keyId with another public key is refused.
 *
 * @example
 * const { vendorId, apiKey } = await registerVendor(db, { id: 'daily-planet', name: 'The Daily Planet',
 *   url: 'http://127.0.0.1:4001/', releaseUrl: 'http://127.0.0.1:4001/netpay/release', publicKey });
 */
export async function registerVendor(
  db: BrokerDb,
  input: VendorRegistration,
  now: Date = new Date(),
): Promise<{ vendorId: string; apiKey: string; keyId: string; rotated: boolean }> {
  if (!VENDOR_ID.test(input.id))
    throw new ProtocolError('bad_request', 'vendor id must be a slug [a-z0-9][a-z0-9-]{0,63}');
  if (input.id === BROKER_VENDOR_ID)
    throw new ProtocolError('bad_request', `vendor id '${BROKER_VENDOR_ID}' is reserved`);
  if (typeof input.name !== 'string' || input.name.length < 1 || input.name.length > 200 || input.name.includes('\n')) {
    throw new ProtocolError('bad_request', 'vendor name must be 1-200 characters');
  }
  for (const [name, value] of [
    ['url', input.url],
    ['releaseUrl', input.releaseUrl],
  ] as const) {
    if (typeof value !== 'string' || value.length > 2048 || !URL_RE.test(value)) {
      throw new ProtocolError('bad_request', `${name} must be an http(s) URL`);
    }
  }
  const publicKeyBytes = b64uDecode(input.publicKey, 32);
  const keyId = input.keyId ?? keyIdForPublicKey(publicKeyBytes);
  if (!KEY_ID.test(keyId)) throw new ProtocolError('bad_request', 'keyId must match [A-Za-z0-9._-]{1,64}');
  const apiKey = newSecret('np_vk_');
  const at = rfc3339(now);
  const rotated = await db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('vendors').select('id').where('id', '=', input.id).executeTakeFirst();
    if (existing) {
      await trx
        .updateTable('vendors')
        .set({ name: input.name, url: input.url, release_url: input.releaseUrl, api_key_hash: hashToken(apiKey) })
        .where('id', '=', input.id)
        .execute();
    } else {
      await trx
        .insertInto('vendors')
        .values({
          id: input.id,
          name: input.name,
          url: input.url,
          release_url: input.releaseUrl,
          api_key_hash: hashToken(apiKey),
          created_at: at,
        })
        .execute();
    }
    const key = await trx
      .selectFrom('vendor_keys')
      .select('public_key')
      .where('vendor_id', '=', input.id)
      .where('key_id', '=', keyId)
      .executeTakeFirst();
    if (key && key.public_key !== input.publicKey) {
      throw new ProtocolError('conflict', `vendor ${input.id} already has key ${keyId} with another public key`);
    }
    if (!key) {
      await trx
        .insertInto('vendor_keys')
        .values({ vendor_id: input.id, key_id: keyId, public_key: input.publicKey, created_at: at })
        .execute();
    }
    await ensureVendorAccount(trx, input.id);
    return Boolean(existing);
  });
  return { vendorId: input.id, apiKey, keyId, rotated };
}

/** Seeds the vendor `broker` (the broker's own identity when it claims a chain to refund it). */
export async function ensureBrokerVendor(
  db: Queryable,
  publicUrlOrUndefined: string | undefined,
  now: Date,
): Promise<void> {
  const found = await db.selectFrom('vendors').select('id').where('id', '=', BROKER_VENDOR_ID).executeTakeFirst();
  const at = rfc3339(now);
  // Operator commands pass no URL: they make the row if missing and leave the broker's own URL alone.
  const publicUrl = publicUrlOrUndefined ?? 'http://127.0.0.1:4000';
  if (!found) {
    try {
      await db
        .insertInto('vendors')
        .values({
          id: BROKER_VENDOR_ID,
          name: 'NetPay broker',
          url: `${publicUrl}/`,
          release_url: `${publicUrl}/api/v1/broker/release`,
          // Nobody can authenticate as the broker vendor: its API key is thrown away.
          api_key_hash: hashToken(newSecret()),
          created_at: at,
        })
        .execute();
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
  } else if (publicUrlOrUndefined !== undefined) {
    await db
      .updateTable('vendors')
      .set({ url: `${publicUrl}/`, release_url: `${publicUrl}/api/v1/broker/release` })
      .where('id', '=', BROKER_VENDOR_ID)
      .execute();
  }
  const keys = await db.selectFrom('signing_keys').select(['key_id', 'public_key']).execute();
  const known = new Set(
    (await db.selectFrom('vendor_keys').select('key_id').where('vendor_id', '=', BROKER_VENDOR_ID).execute()).map(
      (k) => k.key_id,
    ),
  );
  for (const key of keys) {
    if (known.has(key.key_id)) continue;
    await db
      .insertInto('vendor_keys')
      .values({ vendor_id: BROKER_VENDOR_ID, key_id: key.key_id, public_key: key.public_key, created_at: at })
      .execute();
  }
  await ensureVendorAccount(db, BROKER_VENDOR_ID);
}

export async function findVendor(db: Queryable, vendorId: string): Promise<VendorRow | undefined> {
  return db
    .selectFrom('vendors')
    .select(['id', 'name', 'url', 'release_url'])
    .where('id', '=', vendorId)
    .executeTakeFirst();
}

/** The vendor an API key belongs to, if any. */
export async function vendorByApiKey(db: Queryable, apiKey: string): Promise<VendorRow | undefined> {
  return vendorByKeyHash.first(db, { hash: hashToken(apiKey) });
}

/** Every vendor call starts here. */
const vendorByKeyHash = new PreparedQuery((db, slot) =>
  db
    .selectFrom('vendors')
    .select(['id', 'name', 'url', 'release_url'])
    .where('api_key_hash', '=', slot('hash'))
    .where('id', '!=', BROKER_VENDOR_ID),
);

export async function vendorKeys(db: Queryable, vendorId: string): Promise<PublicKeyEntry[]> {
  const rows = await db
    .selectFrom('vendor_keys')
    .select(['key_id', 'public_key'])
    .where('vendor_id', '=', vendorId)
    .orderBy('created_at', 'asc')
    .orderBy('key_id', 'asc')
    .execute();
  return rows.map((r) => ({ keyId: r.key_id, alg: 'Ed25519', publicKey: r.public_key }));
}

/** Every vendor with its keys, for `netpay admin vendor list`. */
export async function listVendors(db: Queryable) {
  const vendors = await db
    .selectFrom('vendors')
    .select(['id', 'name', 'url', 'release_url', 'created_at'])
    .orderBy('id')
    .execute();
  const out = [];
  for (const v of vendors) {
    out.push({
      vendorId: v.id,
      name: v.name,
      url: v.url,
      releaseUrl: v.release_url,
      createdAt: v.created_at,
      keys: await vendorKeys(db, v.id),
    });
  }
  return out;
}
