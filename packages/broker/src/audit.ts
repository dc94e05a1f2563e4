import { normalBalance } from './ledger.ts';
import { COINS_OUTSTANDING } from './ledger.ts';
import type { Queryable } from './schema.ts';

export interface AuditResult {
  ok: boolean;
  discrepancies: string[];
  totals: {
    accounts: Record<string, number>;
    entries: number;
    postings: number;
    chains: number;
    ranges: number;
    redeemedGross: number;
    refunded: number;
    expectedCoinsOutstanding: number;
  };
}

/**
 * Checks the ledger against itself and against the chains, independently of how it was written:
 * all postings sum to zero, every entry sums to zero, no account is past its floor, coins outstanding equal
 * Σ over chains of (value − redeemed gross not taken back − refunded), and no two kept ranges on a chain overlap.
 *
 * @example
 * const { ok, discrepancies } = await audit(db);
 */
export async function audit(db: Queryable): Promise<AuditResult> {
  const discrepancies: string[] = [];

  const postings = await db.selectFrom('postings').select(['entry_id', 'account_id', 'amount']).execute();
  const entries = await db.selectFrom('ledger_entries').select(['id', 'kind']).execute();
  const accounts = await db.selectFrom('accounts').selectAll().execute();

  const byAccount: Record<string, number> = {};
  const byEntry = new Map<string, number>();
  let total = 0;
  for (const p of postings) {
    const amount = Number(p.amount);
    total += amount;
    byAccount[p.account_id] = (byAccount[p.account_id] ?? 0) + amount;
    byEntry.set(p.entry_id, (byEntry.get(p.entry_id) ?? 0) + amount);
  }
  if (total !== 0) discrepancies.push(`postings sum to ${total}, not 0`);
  const entryIds = new Set(entries.map((e) => e.id));
  for (const [entryId, sum] of byEntry) {
    if (sum !== 0) discrepancies.push(`entry ${entryId} sums to ${sum}`);
    if (!entryIds.has(entryId)) discrepancies.push(`postings of unknown entry ${entryId}`);
  }
  const accountIds = new Set(accounts.map((a) => a.id));
  for (const id of Object.keys(byAccount)) {
    if (!accountIds.has(id)) discrepancies.push(`postings on unknown account ${id}`);
  }
  for (const account of accounts) {
    byAccount[account.id] ??= 0;
    if (account.floor === null) continue;
    const normal = normalBalance(account.kind, byAccount[account.id] ?? 0);
    if (normal < Number(account.floor)) {
      discrepancies.push(`account ${account.id} is at ${normal}, below its floor ${account.floor}`);
    }
  }

  const chains = await db.selectFrom('chains').select(['chain_id', 'length', 'unit', 'refunded_amount']).execute();
  const ranges = await db
    .selectFrom('redeemed_ranges')
    .select(['chain_id', 'from_index', 'kept_to', 'gross', 'taken_back_gross', 'fee', 'taken_back_fee'])
    .execute();
  const keptByChain = new Map<string, Array<{ from: number; to: number }>>();
  let redeemedGross = 0;
  for (const r of ranges) {
    const gross = Number(r.gross) - Number(r.taken_back_gross);
    redeemedGross += gross;
    if (Number(r.fee) - Number(r.taken_back_fee) > gross)
      discrepancies.push(`range on ${r.chain_id} keeps a fee above its gross`);
    if (r.kept_to > r.from_index) {
      const list = keptByChain.get(r.chain_id) ?? [];
      list.push({ from: r.from_index, to: r.kept_to });
      keptByChain.set(r.chain_id, list);
    }
  }
  let expected = 0;
  let refunded = 0;
  const chainValue = new Map<string, number>();
  for (const c of chains) {
    chainValue.set(c.chain_id, Number(c.length) * Number(c.unit));
    expected += Number(c.length) * Number(c.unit) - Number(c.refunded_amount);
    refunded += Number(c.refunded_amount);
  }
  expected -= redeemedGross;
  const coinsOutstanding = -(byAccount[COINS_OUTSTANDING] ?? 0);
  if (coinsOutstanding !== expected) {
    discrepancies.push(`coins outstanding ${coinsOutstanding} != unredeemed value of chains ${expected}`);
  }
  for (const [chainId, list] of keptByChain) {
    if (!chainValue.has(chainId)) discrepancies.push(`ranges on unknown chain ${chainId}`);
    list.sort((a, b) => a.from - b.from);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1] as { from: number; to: number };
      const cur = list[i] as { from: number; to: number };
      if (cur.from < prev.to)
        discrepancies.push(`chain ${chainId}: ranges [${prev.from},${prev.to}) and [${cur.from},${cur.to}) overlap`);
    }
  }

  return {
    ok: discrepancies.length === 0,
    discrepancies,
    totals: {
      accounts: byAccount,
      entries: entries.length,
      postings: postings.length,
      chains: chains.length,
      ranges: ranges.length,
      redeemedGross,
      refunded,
      expectedCoinsOutstanding: expected,
    },
  };
}
