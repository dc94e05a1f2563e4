import { type AuditResult, type AuditRows, auditRows } from './audit-rules.ts';
import type { Queryable } from './schema.ts';

export type { AuditResult } from './audit-rules.ts';

/**
 * Checks the ledger against itself and every chain against its own entries, ranges and releases (the rules are
 * in `audit-rules.ts`). Reads each table once, in one snapshot, so it costs the same number of queries for ten
 * chains as for a million and a write landing mid-audit cannot look like a discrepancy.
 *
 * @example
 * const { ok, discrepancies } = await audit(db);
 */
export async function audit(db: Queryable): Promise<AuditResult> {
  const rows = db.isTransaction
    ? await loadAuditRows(db)
    : await db.transaction().setIsolationLevel('repeatable read').execute(loadAuditRows);
  return auditRows(rows);
}

/** One query per table; nothing per chain. */
export async function loadAuditRows(db: Queryable): Promise<AuditRows> {
  const chains = await db
    .selectFrom('chains')
    .select([
      'chain_id',
      'length',
      'unit',
      'amount',
      'status',
      'refund_index',
      'refunded_amount',
      'customer_id',
      'connection_id',
    ])
    .execute();
  const epochs = await db
    .selectFrom('epochs')
    .select([
      'chain_id',
      'epoch',
      'vendor_id',
      'start_index',
      'release_index',
      'release',
      'forced_bound',
      'kept_gross',
      'redeemed_index',
      'redeemed_payword',
      'claim_index',
      'checkpoint_index',
    ])
    .execute();
  const ranges = await db
    .selectFrom('redeemed_ranges')
    .select([
      'id',
      'chain_id',
      'epoch',
      'vendor_id',
      'from_index',
      'to_index',
      'to_payword',
      'kept_to',
      'gross',
      'fee',
      'taken_back_gross',
      'taken_back_fee',
    ])
    .execute();
  const entries = await db.selectFrom('ledger_entries').select(['id', 'kind', 'reference']).execute();
  const postings = await db.selectFrom('postings').select(['entry_id', 'account_id', 'amount']).execute();
  const accounts = await db.selectFrom('accounts').select(['id', 'kind', 'floor']).execute();
  const topUps = await db.selectFrom('top_ups').select(['id', 'customer_id', 'amount', 'status']).execute();
  return { chains, epochs, ranges, entries, postings, accounts, topUps };
}

/** How many discrepancies `netpay admin audit` lists on stderr; the JSON on stdout has them all. */
export const LISTED_DISCREPANCIES = 20;

/** The operator's summary of a failed audit: the count, then the first few, each naming its chain. */
export function auditFailure(result: AuditResult, listed = LISTED_DISCREPANCIES): string {
  const { discrepancies } = result;
  const lines = discrepancies.slice(0, listed).map((d) => `  ${d}\n`);
  const more = discrepancies.length > listed ? `  … and ${discrepancies.length - listed} more\n` : '';
  return `audit failed: ${discrepancies.length} discrepanc${discrepancies.length === 1 ? 'y' : 'ies'}\n${lines.join('')}${more}`;
}
