import { type DatabaseEngine, forUpdate, hashToken } from '@netpay/service-kit';
import { type Kysely, sql } from 'kysely';
import { merchantAccount, type Posting } from './postings.ts';

// Repository functions: the only code that knows table and column names.

export interface MerchantTable {
  id: string;
  api_key_hash: string;
  created_at: string;
}

export type ChargeStatus = 'succeeded' | 'declined';

export interface ChargeTable {
  id: string;
  merchant_id: string;
  status: ChargeStatus;
  decline_code: string | null;
  amount: number;
  currency: string;
  /** Only the last four digits are ever stored: never the number or the cvc. */
  card_last4: string;
  description: string | null;
  created_at: string;
}

export interface RefundTable {
  id: string;
  merchant_id: string;
  charge_id: string;
  amount: number;
  currency: string;
  created_at: string;
}

export interface PayoutTable {
  id: string;
  merchant_id: string;
  amount: number;
  currency: string;
  destination: string;
  created_at: string;
}

export interface PostingTable {
  entry_id: string;
  account: string;
  currency: string;
  amount: number;
}

export interface IdempotencyKeyTable {
  merchant_id: string;
  idempotency_key: string;
  fingerprint: string;
  status_code: number;
  response_body: string;
  created_at: string;
}

/**
 * A card saved for charges by token (`POST /v1/cards`). The token is kept only as its SHA-256 hash, the card
 * only as its last four digits and expiry; `outcome` is what the sandbox's card network answers for it.
 */
export interface SavedCardTable {
  token_hash: string;
  merchant_id: string;
  card_last4: string;
  card_expiry: string;
  outcome: string;
  created_at: string;
}

export interface BankSchema {
  saved_cards: SavedCardTable;
  merchants: MerchantTable;
  charges: ChargeTable;
  refunds: RefundTable;
  payouts: PayoutTable;
  postings: PostingTable;
  idempotency_keys: IdempotencyKeyTable;
}

export type BankDb = Kysely<BankSchema>;

const MERCHANT_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/**
 * Registers (or re-keys) a merchant so that `Authorization: Bearer <apiKey>` authenticates as it. Idempotent:
 * calling it again with the same key changes nothing; with another key it replaces the old one.
 *
 * @example
 * await ensureMerchant(db, 'broker', readOrCreateBankApiKey('./data'));
 */
export async function ensureMerchant(db: BankDb, id: string, apiKey: string): Promise<void> {
  if (apiKey.length < 16) throw new Error('a merchant API key must be at least 16 characters');
  await ensureMerchantKeyHash(db, id, hashToken(apiKey));
}

/** Like `ensureMerchant` for a caller that holds only the key's hash. */
export async function ensureMerchantKeyHash(
  db: BankDb,
  id: string,
  apiKeyHash: string,
  at = new Date(),
): Promise<void> {
  if (!MERCHANT_ID.test(id)) throw new Error(`invalid merchant id: ${id}`);
  await db
    .insertInto('merchants')
    .values({ id, api_key_hash: apiKeyHash, created_at: at.toISOString() })
    .onConflict((oc) => oc.column('id').doUpdateSet({ api_key_hash: apiKeyHash }))
    .execute();
}

/** The merchant whose key hashes to `apiKeyHash`; the lookup by hash is the comparison. */
export async function findMerchantByKeyHash(db: BankDb, apiKeyHash: string): Promise<string | undefined> {
  const row = await db.selectFrom('merchants').select('id').where('api_key_hash', '=', apiKeyHash).executeTakeFirst();
  return row?.id;
}

/**
 * Takes the merchant's row lock (PostgreSQL) so balance checks and the writes after them are serialised.
 * FOR NO KEY UPDATE, not FOR UPDATE: the transaction has already inserted rows whose foreign keys hold a KEY
 * SHARE lock on this merchant, and FOR UPDATE would deadlock two such transactions against each other.
 */
export async function lockMerchant(db: BankDb, engine: DatabaseEngine, merchantId: string): Promise<void> {
  await db
    .selectFrom('merchants')
    .select('id')
    .where('id', '=', merchantId)
    .$if(forUpdate(engine), (q) => q.forNoKeyUpdate())
    .executeTakeFirstOrThrow();
}

export async function findIdempotencyKey(
  db: BankDb,
  merchantId: string,
  key: string,
): Promise<IdempotencyKeyTable | undefined> {
  return db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('merchant_id', '=', merchantId)
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
}

export async function insertIdempotencyKey(db: BankDb, row: IdempotencyKeyTable): Promise<void> {
  await db.insertInto('idempotency_keys').values(row).execute();
}

export async function completeIdempotencyKey(
  db: BankDb,
  merchantId: string,
  key: string,
  statusCode: number,
  responseBody: string,
): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set({ status_code: statusCode, response_body: responseBody })
    .where('merchant_id', '=', merchantId)
    .where('idempotency_key', '=', key)
    .execute();
}

export async function insertSavedCard(db: BankDb, card: SavedCardTable): Promise<void> {
  await db.insertInto('saved_cards').values(card).execute();
}

/** A merchant's saved card by its token's hash (a token saved by another merchant is not found). */
export async function findSavedCard(
  db: BankDb,
  merchantId: string,
  tokenHash: string,
): Promise<SavedCardTable | undefined> {
  return db
    .selectFrom('saved_cards')
    .selectAll()
    .where('token_hash', '=', tokenHash)
    .where('merchant_id', '=', merchantId)
    .executeTakeFirst();
}

export async function insertCharge(db: BankDb, charge: ChargeTable): Promise<void> {
  await db.insertInto('charges').values(charge).execute();
}

/** A merchant's charge, row-locked on PostgreSQL so concurrent refunds of it are serialised (see lockMerchant). */
export async function findChargeForUpdate(
  db: BankDb,
  engine: DatabaseEngine,
  merchantId: string,
  chargeId: string,
): Promise<ChargeTable | undefined> {
  return db
    .selectFrom('charges')
    .selectAll()
    .where('id', '=', chargeId)
    .where('merchant_id', '=', merchantId)
    .$if(forUpdate(engine), (q) => q.forNoKeyUpdate())
    .executeTakeFirst();
}

export async function refundedAmount(db: BankDb, chargeId: string): Promise<number> {
  const row = await db
    .selectFrom('refunds')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number | string>('amount'), sql<number>`0`).as('total'))
    .where('charge_id', '=', chargeId)
    .executeTakeFirstOrThrow();
  return toSafeInteger(row.total);
}

export async function insertRefund(db: BankDb, refund: RefundTable): Promise<void> {
  await db.insertInto('refunds').values(refund).execute();
}

export async function insertPayout(db: BankDb, payout: PayoutTable): Promise<void> {
  await db.insertInto('payouts').values(payout).execute();
}

export async function insertPostings(
  db: BankDb,
  entryId: string,
  currency: string,
  postings: Posting[],
): Promise<void> {
  await db
    .insertInto('postings')
    .values(postings.map((p) => ({ entry_id: entryId, account: p.account, currency, amount: p.amount })))
    .execute();
}

/** Sum of the postings on an account in one currency. */
export async function accountBalance(db: BankDb, account: string, currency: string): Promise<number> {
  const row = await db
    .selectFrom('postings')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number | string>('amount'), sql<number>`0`).as('total'))
    .where('account', '=', account)
    .where('currency', '=', currency)
    .executeTakeFirstOrThrow();
  return toSafeInteger(row.total);
}

export function merchantBalance(db: BankDb, merchantId: string, currency: string): Promise<number> {
  return accountBalance(db, merchantAccount(merchantId), currency);
}

/** Sum of every posting ever written: zero unless the double entry is broken. */
export async function postingsTotal(db: BankDb): Promise<number> {
  const row = await db
    .selectFrom('postings')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number | string>('amount'), sql<number>`0`).as('total'))
    .executeTakeFirstOrThrow();
  return toSafeInteger(row.total);
}

export interface StatementLine {
  id: string;
  kind: 'charge' | 'refund' | 'payout';
  /** Signed: the line's effect on the merchant's available balance. */
  amount: number;
  at: string;
  reference: string;
}

/** Every money movement of a merchant in one currency, oldest first. Declined charges moved nothing. */
export async function statementLines(db: BankDb, merchantId: string, currency: string): Promise<StatementLine[]> {
  const [charges, refunds, payouts] = await Promise.all([
    db
      .selectFrom('charges')
      .select(['id', 'amount', 'created_at', 'description', 'card_last4'])
      .where('merchant_id', '=', merchantId)
      .where('currency', '=', currency)
      .where('status', '=', 'succeeded')
      .execute(),
    db
      .selectFrom('refunds')
      .select(['id', 'amount', 'created_at', 'charge_id'])
      .where('merchant_id', '=', merchantId)
      .where('currency', '=', currency)
      .execute(),
    payoutsOf(db, merchantId, currency),
  ]);
  const lines: StatementLine[] = [
    ...charges.map((c) => ({
      id: c.id,
      kind: 'charge' as const,
      amount: toSafeInteger(c.amount),
      at: c.created_at,
      reference: c.description ?? `card ending ${c.card_last4}`,
    })),
    ...refunds.map((r) => ({
      id: r.id,
      kind: 'refund' as const,
      amount: -toSafeInteger(r.amount),
      at: r.created_at,
      reference: r.charge_id,
    })),
    ...payouts.map((p) => ({
      id: p.id,
      kind: 'payout' as const,
      amount: -toSafeInteger(p.amount),
      at: p.created_at,
      reference: p.destination,
    })),
  ];
  return lines.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A merchant's payouts in one currency, optionally only those to one destination, oldest first. */
export async function payoutsOf(
  db: BankDb,
  merchantId: string,
  currency: string,
  destination?: string,
): Promise<PayoutTable[]> {
  const rows = await db
    .selectFrom('payouts')
    .selectAll()
    .where('merchant_id', '=', merchantId)
    .where('currency', '=', currency)
    .$if(destination !== undefined, (q) => q.where('destination', '=', destination as string))
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  return rows.map((r) => ({ ...r, amount: toSafeInteger(r.amount) }));
}

// PostgreSQL returns SUM(bigint) as NUMERIC text; both engines' values must be safe integers.
function toSafeInteger(value: number | string | bigint): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`amount out of safe range: ${String(value)}`);
  return n;
}
