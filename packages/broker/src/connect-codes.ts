import { ProtocolError } from '@netpay/protocol';
import { hashToken, newSecret, rfc3339 } from '@netpay/service-kit';
import type { Kysely, Transaction } from 'kysely';
import type { BrokerDeps } from './deps.ts';
import type { BrokerSchema, BrokerTx } from './schema.ts';
import { BROKER_VENDOR_ID, findVendor } from './vendor-registry.ts';

/**
 * One-time connect codes (§7): the customer's consent to connect a site, carried in the redirect back to it and
 * exchanged by that site within `grantTtlSeconds`. Stored as SHA-256 hashes in the `wallet_grants` table (its
 * `chain_id` is '' now: a code names a customer and a site, never a coin); `used_at` is set by the one exchange
 * that wins.
 */
export interface ConnectCodeTable {
  code_hash: string;
  vendor_id: string;
  chain_id: string;
  customer_id: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

type CodeSchema = BrokerSchema & { wallet_grants: ConnectCodeTable };

const CODE_PREFIX = 'np_wg_';
const CODE_RE = /^np_wg_[A-Za-z0-9_-]{43}$/;

function codeDb(db: Kysely<BrokerSchema> | BrokerTx): Kysely<CodeSchema> {
  return db as unknown as Kysely<CodeSchema>;
}

/** Makes a code that lets `vendorId` connect to the customer's balance; returned once, stored as a hash. */
export async function issueConnectCode(
  deps: BrokerDeps,
  customerId: string,
  vendorId: string,
): Promise<{ code: string; expiresAt: string }> {
  const vendor = vendorId === BROKER_VENDOR_ID ? undefined : await findVendor(deps.db, vendorId);
  if (!vendor) throw new ProtocolError('unknown_vendor', `no vendor ${vendorId}`);
  const code = newSecret(CODE_PREFIX);
  const now = deps.clock.now();
  const expiresAt = rfc3339(new Date(now.getTime() + deps.config.grantTtlSeconds * 1000));
  const db = codeDb(deps.db);
  // Old codes are worthless after their minute; keep the table small.
  await db
    .deleteFrom('wallet_grants')
    .where('expires_at', '<', rfc3339(new Date(now.getTime() - 3600_000)))
    .execute();
  await db
    .insertInto('wallet_grants')
    .values({
      code_hash: hashToken(code),
      vendor_id: vendor.id,
      chain_id: '',
      customer_id: customerId,
      created_at: rfc3339(now),
      expires_at: expiresAt,
      used_at: null,
    })
    .execute();
  return { code, expiresAt };
}

const invalid = () => new ProtocolError('grant_invalid', 'the code is unknown, expired, already used or not yours');

/**
 * Consumes a code inside the caller's transaction (a conditional update, so of concurrent exchanges exactly one
 * wins) and names the customer who consented. A wrong vendor, an expired, used or unknown code is
 * `grant_invalid`; if the caller's transaction rolls back, the code is unused again.
 */
export async function consumeConnectCode(
  trx: BrokerTx,
  vendorId: string,
  code: string,
  now: Date,
): Promise<{ customerId: string; codeHash: string }> {
  if (!CODE_RE.test(code)) throw invalid();
  const codeHash = hashToken(code);
  const db = trx as unknown as Transaction<CodeSchema>;
  const grant = await db.selectFrom('wallet_grants').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
  if (!grant || grant.used_at !== null || grant.vendor_id !== vendorId) throw invalid();
  if (now.getTime() >= Date.parse(grant.expires_at)) throw invalid();
  const consumed = await db
    .updateTable('wallet_grants')
    .set({ used_at: rfc3339(now) })
    .where('code_hash', '=', codeHash)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  if (Number(consumed.numUpdatedRows) !== 1) throw invalid();
  return { customerId: grant.customer_id, codeHash };
}
