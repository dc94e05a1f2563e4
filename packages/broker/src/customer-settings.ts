import { ProtocolError } from '@netpay/protocol';
import { type DatabaseEngine, forUpdate, rfc3339 } from '@netpay/service-kit';
import { ensureCustomerAccount } from './ledger-store.ts';
import type { BrokerSchema, BrokerTx, Queryable } from './schema.ts';
import { sealCardToken } from './store-secrets.ts';

export type CustomerSettings = BrokerSchema['customer_settings'];

/** What a new customer starts with (§7 v1.1): the customer changes them on the connected sites page. */
export const DEFAULT_LIMITS = {
  /** Sites pay without asking up to 10c per article. */
  autoPayMaxMinor: 10,
  /** All sites together may be allowed NZ$2.00 a day. */
  dailyCapMinor: 200,
  /** One site may be allowed NZ$5.00 a month. */
  siteCapMinor: 500,
} as const;

/** The most any limit may be set to: NZ$1,000. */
export const MAX_LIMIT_MINOR = 100_000;

/**
 * Makes the customer's settings row (with the defaults) and balance account if they are missing. Idempotent
 * and safe under concurrency: a twin's insert wins and this one changes nothing.
 */
export async function ensureCustomerSettings(db: Queryable, customerId: string, now: Date): Promise<void> {
  await db
    .insertInto('customer_settings')
    .values({
      customer_id: customerId,
      auto_pay_max_minor: DEFAULT_LIMITS.autoPayMaxMinor,
      daily_cap_minor: DEFAULT_LIMITS.dailyCapMinor,
      ask_each_site: 0,
      connected_once: 0,
      card_token: null,
      card_last4: null,
      auto_top_up_minor: null,
      auto_top_up_ceiling_minor: null,
      updated_at: rfc3339(now),
    })
    .onConflict((oc) => oc.column('customer_id').doNothing())
    .execute();
  await ensureCustomerAccount(db, customerId);
}

/** The customer's settings (defaults if the row is missing: nothing was ever set). */
export async function readSettings(db: Queryable, customerId: string): Promise<CustomerSettings> {
  const row = await db
    .selectFrom('customer_settings')
    .selectAll()
    .where('customer_id', '=', customerId)
    .executeTakeFirst();
  return (
    row ?? {
      customer_id: customerId,
      auto_pay_max_minor: DEFAULT_LIMITS.autoPayMaxMinor,
      daily_cap_minor: DEFAULT_LIMITS.dailyCapMinor,
      ask_each_site: 0,
      connected_once: 0,
      card_token: null,
      card_last4: null,
      auto_top_up_minor: null,
      auto_top_up_ceiling_minor: null,
      updated_at: '',
    }
  );
}

/**
 * Locks the customer for the rest of the transaction (PostgreSQL; SQLite transactions are serial) and reads
 * the settings. Everything that takes money out of the customer's balance or counts against a cap across sites
 * holds this lock first, then a chain's: so two sites' requests cannot both spend the last cent or the last of
 * the daily cap. The row must exist (ensureCustomerSettings, outside the transaction).
 */
export async function lockCustomer(
  trx: BrokerTx,
  engine: DatabaseEngine,
  customerId: string,
): Promise<CustomerSettings> {
  let query = trx.selectFrom('customer_settings').selectAll().where('customer_id', '=', customerId);
  if (forUpdate(engine)) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) throw new Error(`customer ${customerId} has no settings row`);
  return row;
}

/** A limit as the customer typed it, checked: a whole number of minor units in 0..MAX_LIMIT_MINOR. */
export function checkLimit(name: string, minor: number): number {
  if (!Number.isSafeInteger(minor) || minor < 0 || minor > MAX_LIMIT_MINOR) {
    throw new ProtocolError('bad_request', `${name} must be between 0 and ${MAX_LIMIT_MINOR} minor units`);
  }
  return minor;
}

export interface LimitsUpdate {
  autoPayMaxMinor?: number;
  dailyCapMinor?: number;
  askEachSite?: boolean;
}

export async function updateLimits(db: Queryable, customerId: string, update: LimitsUpdate, now: Date): Promise<void> {
  await ensureCustomerSettings(db, customerId, now);
  await db
    .updateTable('customer_settings')
    .set({
      ...(update.autoPayMaxMinor !== undefined
        ? { auto_pay_max_minor: checkLimit('autoPayMaxMinor', update.autoPayMaxMinor) }
        : {}),
      ...(update.dailyCapMinor !== undefined
        ? { daily_cap_minor: checkLimit('dailyCapMinor', update.dailyCapMinor) }
        : {}),
      ...(update.askEachSite !== undefined ? { ask_each_site: update.askEachSite ? 1 : 0 } : {}),
      updated_at: rfc3339(now),
    })
    .where('customer_id', '=', customerId)
    .execute();
}

/** Automatic top-up: charge the saved card `amountMinor` when a site needs more, at most `ceilingMinor` a month. */
export async function updateAutoTopUp(
  db: Queryable,
  customerId: string,
  setting: { amountMinor: number; ceilingMinor: number } | null,
  now: Date,
): Promise<void> {
  await ensureCustomerSettings(db, customerId, now);
  if (setting) {
    if (setting.amountMinor < 1) throw new ProtocolError('bad_request', 'the top-up amount must be at least 1');
    checkLimit('amountMinor', setting.amountMinor);
    checkLimit('ceilingMinor', setting.ceilingMinor);
    if (setting.ceilingMinor < setting.amountMinor) {
      throw new ProtocolError('bad_request', 'the monthly ceiling must be at least the top-up amount');
    }
  }
  await db
    .updateTable('customer_settings')
    .set({
      auto_top_up_minor: setting?.amountMinor ?? null,
      auto_top_up_ceiling_minor: setting?.ceilingMinor ?? null,
      updated_at: rfc3339(now),
    })
    .where('customer_id', '=', customerId)
    .execute();
}

/** Keeps the bank's token of a saved card (sealed) and its last four digits; replaces an earlier card. */
export async function saveCardToken(
  db: Queryable,
  customerId: string,
  token: string,
  last4: string,
  now: Date,
): Promise<void> {
  await ensureCustomerSettings(db, customerId, now);
  await db
    .updateTable('customer_settings')
    .set({ card_token: sealCardToken(customerId, token), card_last4: last4, updated_at: rfc3339(now) })
    .where('customer_id', '=', customerId)
    .execute();
}

/** Forgets the saved card; automatic top-up stops with it. */
export async function forgetCard(db: Queryable, customerId: string, now: Date): Promise<void> {
  await db
    .updateTable('customer_settings')
    .set({
      card_token: null,
      card_last4: null,
      auto_top_up_minor: null,
      auto_top_up_ceiling_minor: null,
      updated_at: rfc3339(now),
    })
    .where('customer_id', '=', customerId)
    .execute();
}

/** Records that the customer consented to connecting sites (the first consent page). */
export async function markConnected(db: Queryable, customerId: string, now: Date): Promise<void> {
  await ensureCustomerSettings(db, customerId, now);
  await db
    .updateTable('customer_settings')
    .set({ connected_once: 1, updated_at: rfc3339(now) })
    .where('customer_id', '=', customerId)
    .execute();
}
