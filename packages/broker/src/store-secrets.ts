import { newMasterKeyText, SecretBox } from '@netpay/service-kit';
import { type Kysely, SqliteAdapter, sql } from 'kysely';
import type { BrokerSchema, Queryable } from './schema.ts';

/**
 * The secrets the broker keeps in its store, sealed under the master key (service-kit `SecretBox`): its signing
 * seeds, the seeds of the chains it made for server-side wallets, the stored answers of coin purchases (they
 * carry those seeds) and the web pages' HMAC key. Each is sealed with its row's name as context, so a sealed
 * value moved to another row does not open.
 *
 * The key is one per process, set by the composition root (`createBrokerApp`, `netpay admin`): the use cases
 * that sign read the key row inside their own transaction and are given only that transaction.
 */
let processBox: SecretBox | undefined;

/**
 * Sets the master key of this process. Setting another key once one is in use is a bug (rows sealed under the
 * first would no longer open), so it throws.
 */
export function useMasterKey(key: Uint8Array): void {
  const box = SecretBox.fromKey(key);
  if (processBox && processBox.keyId !== box.keyId) {
    throw new Error('this process already seals the broker store with another master key');
  }
  processBox = box;
}

/**
 * The process's box. An embedded broker given no key (tests, the benchmark) gets `NETPAY_MASTER_KEY`, else a
 * random key that lives as long as the process: its store is then unreadable to the next process, which fails
 * loudly on the first signature rather than signing with anything else.
 */
function box(): SecretBox {
  if (!processBox) {
    const text = process.env.NETPAY_MASTER_KEY || newMasterKeyText();
    processBox = SecretBox.fromKey(Buffer.from(text, 'base64url'));
  }
  return processBox;
}

/** The key id (not the key) of the process's box, for logs and checks. */
export function masterKeyId(): string {
  return box().keyId;
}

export const sealSigningSeed = (keyId: string, seed: string) => box().seal(seed, `signing_keys.private_seed:${keyId}`);
export const openSigningSeed = (keyId: string, stored: string) =>
  box().open(stored, `signing_keys.private_seed:${keyId}`);

/** A chain's seed as stored (null stays null: the customer made the chain and kept its seed). */
export const sealChainSeed = (chainId: string, seed: string | null) =>
  seed === null ? null : box().seal(seed, `chains.seed:${chainId}`);
export const openChainSeed = (chainId: string, stored: string) => box().open(stored, `chains.seed:${chainId}`);

// The purchase answer is found by (customer, key), whose reader does not select the chain id: one context for all.
export const sealPurchaseResponse = (text: string) => box().seal(text, 'coin_purchases.response');
export const openPurchaseResponse = (stored: string) => box().open(stored, 'coin_purchases.response');

/** A customer's saved-card token at the bank: it charges the card, so it is sealed like a seed. */
export const sealCardToken = (customerId: string, token: string) =>
  box().seal(token, `customer_settings.card_token:${customerId}`);
export const openCardToken = (customerId: string, stored: string) =>
  box().open(stored, `customer_settings.card_token:${customerId}`);

export const sealWebSecret = (name: string, secret: string) => box().seal(secret, `web_secrets.secret:${name}`);
export const openWebSecret = (name: string, stored: string) => box().open(stored, `web_secrets.secret:${name}`);

/**
 * Seals what an older broker stored in plaintext (called on every start, in the start transaction); the number
 * of rows sealed. Rows already sealed are left alone, whichever key sealed them.
 */
export async function sealPlaintextRows(db: Queryable): Promise<number> {
  let sealed = 0;
  const isPlain = (text: string | null): text is string => text !== null && !SecretBox.isSealed(text);

  for (const row of await db.selectFrom('signing_keys').select(['key_id', 'private_seed']).execute()) {
    if (!isPlain(row.private_seed)) continue;
    await db
      .updateTable('signing_keys')
      .set({ private_seed: sealSigningSeed(row.key_id, row.private_seed) })
      .where('key_id', '=', row.key_id)
      .execute();
    sealed += 1;
  }
  for (const row of await db
    .selectFrom('chains')
    .select(['chain_id', 'seed'])
    .where('seed', 'is not', null)
    .execute()) {
    if (!isPlain(row.seed)) continue;
    await db
      .updateTable('chains')
      .set({ seed: sealChainSeed(row.chain_id, row.seed) })
      .where('chain_id', '=', row.chain_id)
      .execute();
    sealed += 1;
  }
  for (const row of await db
    .selectFrom('coin_purchases')
    .select(['customer_id', 'idempotency_key', 'response'])
    .execute()) {
    if (!isPlain(row.response)) continue;
    await db
      .updateTable('coin_purchases')
      .set({ response: sealPurchaseResponse(row.response) })
      .where('customer_id', '=', row.customer_id)
      .where('idempotency_key', '=', row.idempotency_key)
      .execute();
    sealed += 1;
  }
  const secrets = db as unknown as Kysely<{ web_secrets: { name: string; secret: string } }>;
  for (const row of await secrets.selectFrom('web_secrets').select(['name', 'secret']).execute()) {
    if (!isPlain(row.secret)) continue;
    await secrets
      .updateTable('web_secrets')
      .set({ secret: sealWebSecret(row.name, row.secret) })
      .where('name', '=', row.name)
      .execute();
    sealed += 1;
  }
  return sealed;
}

/**
 * After sealing old plaintext rows on SQLite, rewrites the file so the plaintext is not left behind in free pages
 * or the write-ahead log. PostgreSQL's old row versions go with its own VACUUM; the operator runs that.
 */
export async function scrubFreedPages(db: Kysely<BrokerSchema>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) return;
  await sql`pragma wal_checkpoint(TRUNCATE)`.execute(db);
  await sql`vacuum`.execute(db);
  await sql`pragma wal_checkpoint(TRUNCATE)`.execute(db);
}
