import type { Queryable } from './schema.ts';

/**
 * The customer's history (§7 v1.1) with a running NetPay balance. Rows that move the balance: money added, an
 * allowance given to a site (set aside for it), and an unspent allowance coming back when a site's chain ends.
 * Rows that do not: what a site reports it sold from its allowance (the article, from its notes), and the coins
 * of client-side wallets (bought by card, spent, refunded to the card). The running balance after the last row
 * is the NetPay balance balance.ts shows: top-ups − Σ allowances + Σ returns = account + unallowed parts.
 */

export type HistoryRowKind =
  | 'top_up'
  | 'allowance'
  | 'returned'
  | 'spend'
  | 'coin_purchase'
  | 'coin_spend'
  | 'coin_refund';

export interface HistoryRow {
  at: string;
  kind: HistoryRowKind;
  /** The site's name (never its id), for rows about a site. */
  site?: string;
  /** The article, for a spend the site described. */
  description?: string;
  /** The amount the row is about (positive). */
  amountMinor: number;
  /** What it did to the NetPay balance (signed; 0 for rows that do not move it). */
  effectMinor: number;
  /** The NetPay balance after this row. */
  balanceMinor: number;
  /** For top-ups: the card's last four digits and whether it was automatic. */
  card?: { last4: string; automatic: boolean };
}

// Within one second: money in first, then what comes back, then allowances, then spending.
const ORDER: Record<HistoryRowKind, number> = {
  top_up: 0,
  returned: 1,
  coin_purchase: 2,
  allowance: 3,
  spend: 4,
  coin_spend: 5,
  coin_refund: 6,
};

/** Every row of the customer's history, oldest first, each with the balance after it. */
export async function balanceHistory(db: Queryable, customerId: string): Promise<HistoryRow[]> {
  const rows: Array<Omit<HistoryRow, 'balanceMinor'>> = [];
  const names = new Map(
    (await db.selectFrom('vendors').select(['id', 'name']).execute()).map((v) => [v.id, v.name] as const),
  );
  const nameOf = (vendorId: string) => names.get(vendorId) ?? vendorId;

  for (const t of await db
    .selectFrom('top_ups')
    .selectAll()
    .where('customer_id', '=', customerId)
    .where('status', '=', 'completed')
    .execute()) {
    rows.push({
      at: t.updated_at,
      kind: 'top_up',
      amountMinor: Number(t.amount),
      effectMinor: Number(t.amount),
      card: { last4: t.card_last4, automatic: t.automatic === 1 },
    });
  }

  const connections = new Map(
    (
      await db.selectFrom('connections').select(['id', 'vendor_id']).where('customer_id', '=', customerId).execute()
    ).map((c) => [c.id, c.vendor_id] as const),
  );
  const grants = await db
    .selectFrom('allowances')
    .selectAll()
    .where('customer_id', '=', customerId)
    .where('kind', '=', 'grant')
    .orderBy('created_at')
    .execute();
  const allowanceOf = new Map<string, number>();
  for (const g of grants) {
    allowanceOf.set(g.chain_id, Math.max(allowanceOf.get(g.chain_id) ?? 0, g.allowance_index));
    if (Number(g.amount) <= 0) continue;
    rows.push({
      at: g.created_at,
      kind: 'allowance',
      site: nameOf(connections.get(g.connection_id) ?? ''),
      amountMinor: Number(g.amount),
      effectMinor: -Number(g.amount),
    });
  }

  const chains = await db.selectFrom('chains').selectAll().where('customer_id', '=', customerId).execute();
  for (const chain of chains) {
    if (chain.connection_id === null) {
      rows.push({ at: chain.issued_at, kind: 'coin_purchase', amountMinor: Number(chain.amount), effectMinor: 0 });
      continue;
    }
    // An ended connection chain gave back what its site was allowed and had not spent.
    if (chain.status !== 'refunded' || chain.refunded_at === null) continue;
    const returned = Math.max(0, (allowanceOf.get(chain.chain_id) ?? 0) - (chain.refund_index ?? 0)) * chain.unit;
    if (returned === 0) continue;
    rows.push({
      at: chain.refunded_at,
      kind: 'returned',
      site: nameOf(connections.get(chain.connection_id) ?? ''),
      amountMinor: returned,
      effectMinor: returned,
    });
  }

  for (const n of await db.selectFrom('spend_notes').selectAll().where('customer_id', '=', customerId).execute()) {
    rows.push({
      at: n.created_at,
      kind: 'spend',
      site: nameOf(n.vendor_id),
      description: n.description,
      amountMinor: Number(n.amount),
      effectMinor: 0,
    });
  }

  // Coins of client-side wallets: spending as the broker learns it (redemptions), and refunds to the card.
  const coinIds = chains.filter((c) => c.connection_id === null).map((c) => c.chain_id);
  if (coinIds.length > 0) {
    for (const r of await db.selectFrom('redeemed_ranges').selectAll().where('chain_id', 'in', coinIds).execute()) {
      const amount = Number(r.gross) - Number(r.taken_back_gross);
      if (amount <= 0) continue;
      rows.push({
        at: r.created_at,
        kind: 'coin_spend',
        site: nameOf(r.vendor_id),
        amountMinor: amount,
        effectMinor: 0,
      });
    }
  }
  for (const c of chains) {
    if (c.connection_id !== null || c.status !== 'refunded' || c.refunded_at === null) continue;
    rows.push({ at: c.refunded_at, kind: 'coin_refund', amountMinor: Number(c.refunded_amount), effectMinor: 0 });
  }

  rows.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : ORDER[a.kind] - ORDER[b.kind]));
  let balance = 0;
  return rows.map((row) => {
    balance += row.effectMinor;
    return { ...row, balanceMinor: balance };
  });
}
