import {
  assertBalanced,
  customerAccount,
  FIXED_ACCOUNTS,
  type LedgerEntry,
  normalBalance,
  vendorAccount,
} from './ledger.ts';
import { newId } from './ids.ts';
import type { BrokerTx, Queryable } from './schema.ts';

/** Writes one balanced entry inside the caller's transaction. */
export async function postEntry(trx: BrokerTx, entry: LedgerEntry, at: string): Promise<string> {
  assertBalanced(entry);
  const id = newId('le');
  await trx
    .insertInto('ledger_entries')
    .values({ id, kind: entry.kind, reference: entry.reference, created_at: at })
    .execute();
  if (entry.postings.length > 0) {
    await trx
      .insertInto('postings')
      .values(entry.postings.map((p) => ({ entry_id: id, account_id: p.accountId, amount: p.amount })))
      .execute();
  }
  return id;
}

/** Creates the fixed accounts once. */
export async function ensureFixedAccounts(db: Queryable): Promise<void> {
  for (const account of FIXED_ACCOUNTS) {
    const found = await db.selectFrom('accounts').select('id').where('id', '=', account.id).executeTakeFirst();
    if (!found) {
      await db.insertInto('accounts').values({ id: account.id, kind: account.kind, floor: account.floor }).execute();
    }
  }
}

/** Creates a vendor's payable account (no floor: a take-back may leave it owing the broker). */
export async function ensureVendorAccount(db: Queryable, vendorId: string): Promise<void> {
  const id = vendorAccount(vendorId);
  const found = await db.selectFrom('accounts').select('id').where('id', '=', id).executeTakeFirst();
  if (!found) await db.insertInto('accounts').values({ id, kind: 'liability', floor: null }).execute();
}

/** Creates a customer's balance account once: a liability that may never go below 0. */
export async function ensureCustomerAccount(db: Queryable, customerId: string): Promise<void> {
  await db
    .insertInto('accounts')
    .values({ id: customerAccount(customerId), kind: 'liability', floor: 0 })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

/** What the broker owes a customer outside any chain (the account's normal balance, ≥ 0). */
export async function customerAccountBalance(db: Queryable, customerId: string): Promise<number> {
  return normalBalance('liability', await accountBalance(db, customerAccount(customerId)));
}

/** The raw (debit-positive) balance of an account. */
export async function accountBalance(db: Queryable, accountId: string): Promise<number> {
  const row = await db
    .selectFrom('postings')
    .select((eb) => eb.fn.sum<number | string | null>('amount').as('total'))
    .where('account_id', '=', accountId)
    .executeTakeFirst();
  return Number(row?.total ?? 0);
}
