import { b64uDecode, b64uEncode, generateSigningKey, type PublicKeyEntry } from '@netpay/protocol';
import { rfc3339 } from '@netpay/service-kit';
import { PreparedQuery } from './prepared-query.ts';
import type { Queryable } from './schema.ts';
import { openSigningSeed, sealSigningSeed } from './store-secrets.ts';

/**
 * The broker's active Ed25519 key: it signs touchstones and holder certificates. Its private seed is stored sealed
 * under the master key (store-secrets.ts) and opened only when it is about to sign.
 */
export interface BrokerSigningKey {
  keyId: string;
  /** Shared by every caller (opened once per sealed value): read it, never write to it. */
  privateSeed: Uint8Array;
  publicKey: string;
}

/** Key ids are `bk1`, `bk2`, … in the order the keys were made. */
function keyIdFor(seq: number): string {
  return `bk${seq}`;
}

/** Makes the first key on the broker's first start; later starts find it in the database. */
export async function ensureSigningKey(db: Queryable, now: Date): Promise<void> {
  const found = await db.selectFrom('signing_keys').select('key_id').executeTakeFirst();
  if (!found) await addKey(db, 1, now);
}

/**
 * Makes a new active key (`netpay admin rotate-key`). Old keys stay in the published key set, so
 * touchstones and certificates they signed keep verifying.
 */
export async function rotateSigningKey(db: Queryable, now: Date): Promise<string> {
  const last = await db.selectFrom('signing_keys').select('seq').orderBy('seq', 'desc').executeTakeFirst();
  return addKey(db, (last?.seq ?? 0) + 1, now);
}

async function addKey(db: Queryable, seq: number, now: Date): Promise<string> {
  const key = generateSigningKey();
  const keyId = keyIdFor(seq);
  const publicKey = b64uEncode(key.publicKey);
  await db
    .insertInto('signing_keys')
    .values({
      key_id: keyId,
      seq,
      private_seed: sealSigningSeed(keyId, b64uEncode(key.privateSeed)),
      public_key: publicKey,
      created_at: rfc3339(now),
      retired_at: null,
    })
    .execute();
  // The broker acts as the vendor `broker` when it takes a chain back for a refund; its keys are the broker's.
  const brokerVendor = await db.selectFrom('vendors').select('id').where('id', '=', 'broker').executeTakeFirst();
  if (brokerVendor) {
    await db
      .insertInto('vendor_keys')
      .values({ vendor_id: 'broker', key_id: keyId, public_key: publicKey, created_at: rfc3339(now) })
      .execute();
  }
  return keyId;
}

/** The newest key that is not retired. */
export async function activeSigningKey(db: Queryable): Promise<BrokerSigningKey> {
  const row = await newestKey.first(db, {});
  if (!row) throw new Error('the broker has no signing key');
  // Every claim signs a holder certificate: the seed is opened once per sealed value, not once per claim.
  const sealed = `${row.key_id} ${row.private_seed}`;
  let privateSeed = openedSeeds.get(sealed);
  if (!privateSeed) {
    privateSeed = b64uDecode(openSigningSeed(row.key_id, row.private_seed), 32);
    if (openedSeeds.size >= 16) openedSeeds.clear();
    openedSeeds.set(sealed, privateSeed);
  }
  // The opened seed itself, not a copy: the Ed25519 backend keeps the OpenSSL key made from a seed per array, so a
  // fresh copy per claim made it build a new private key every time (about half a millisecond of every claim).
  // Nothing writes to it.
  return { keyId: row.key_id, privateSeed, publicKey: row.public_key };
}

const newestKey = new PreparedQuery((db) =>
  db.selectFrom('signing_keys').selectAll().where('retired_at', 'is', null).orderBy('seq', 'desc').limit(1),
);
/** Opened signing seeds by key and sealed value (a rotation or a new master key makes a new entry). */
const openedSeeds = new Map<string, Uint8Array>();

/** The key set published in discovery: every key not retired, oldest first. */
export async function publishedKeys(db: Queryable): Promise<PublicKeyEntry[]> {
  const rows = await db
    .selectFrom('signing_keys')
    .select(['key_id', 'public_key'])
    .where('retired_at', 'is', null)
    .orderBy('seq', 'asc')
    .execute();
  return rows.map((r) => ({ keyId: r.key_id, alg: 'Ed25519', publicKey: r.public_key }));
}
