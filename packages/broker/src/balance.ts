import { type ChainRow, type ChainState, highestKnownIndex } from './chain-state.ts';
import { customerAccountBalance } from './ledger-store.ts';
import type { Queryable } from './schema.ts';
import { monthStart } from './top-up.ts';

/**
 * The figures a customer sees (§7 v1.1), computed from what the broker knows now, in one place so every page and
 * every answer to a vendor shows the same numbers:
 * - NetPay balance = the customer's account + Σ over its connection chains still open of the part no site has
 *   been allowed yet and the chain still holds, (length − tail given back − allowance index) × unit;
 * - allowance left at a site = (allowance index − the last point the broker knows spent) × unit.
 * A chain being ended after a revoke counts only its unallowed part until its end is fixed; then the money is
 * back in the account.
 */

/** Chains whose unallowed part still belongs in the balance (not yet returned to the account). */
const OPEN_STATUSES = ['active', 'refund_pending', 'refunding'];

export async function netPayBalance(db: Queryable, customerId: string): Promise<number> {
  const account = await customerAccountBalance(db, customerId);
  const chains = await db
    .selectFrom('chains')
    .select(['chain_id', 'length', 'unit', 'refunded_units'])
    .where('customer_id', '=', customerId)
    .where('connection_id', 'is not', null)
    .where('status', 'in', OPEN_STATUSES)
    .execute();
  if (chains.length === 0) return account;
  const allowed = await allowanceIndexes(db, customerId);
  let unallowed = 0;
  // A tail given back early (refunded_units of a chain not ended yet) is in the account already.
  for (const c of chains) {
    unallowed += Math.max(0, c.length - c.refunded_units - (allowed.get(c.chain_id) ?? 0)) * c.unit;
  }
  return account + unallowed;
}

/** Each connection chain's allowance index: the highest it was granted. */
async function allowanceIndexes(db: Queryable, customerId: string): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('allowances')
    .select(['chain_id', (eb) => eb.fn.max<number>('allowance_index').as('index')])
    .where('customer_id', '=', customerId)
    .where('kind', '=', 'grant')
    .groupBy('chain_id')
    .execute();
  return new Map(rows.map((r) => [r.chain_id, Number(r.index)]));
}

export interface SiteSummary {
  connectionId: string;
  vendorId: string;
  /** The site's name as registered: pages show it, never the id. */
  name: string;
  connectedAt: string;
  revokedAt: string | null;
  siteCapMinor: number;
  /** What the site spent this calendar month (UTC), as far as the broker knows. */
  spentThisMonthMinor: number;
  /** What the site may still take of its current allowance. */
  allowanceLeftMinor: number;
  /**
   * For a revoked site whose chain is not ended yet: what comes back to the balance once it is (the allowance
   * left), and until when the site may hold on to it (its lease).
   */
  returning: { amountMinor: number; byAt: string } | null;
}

/** The customer's sites, live ones first (newest first), then revoked ones still returning money. */
export async function siteSummaries(db: Queryable, customerId: string, now: Date): Promise<SiteSummary[]> {
  const connections = await db
    .selectFrom('connections')
    .innerJoin('vendors', 'vendors.id', 'connections.vendor_id')
    .select([
      'connections.id',
      'connections.vendor_id',
      'connections.created_at',
      'connections.revoked_at',
      'connections.site_cap_minor',
      'vendors.name',
    ])
    .where('connections.customer_id', '=', customerId)
    .orderBy('connections.created_at', 'desc')
    .execute();
  const since = monthStart(now);
  const out: SiteSummary[] = [];
  for (const c of connections) {
    const chains = await db.selectFrom('chains').selectAll().where('connection_id', '=', c.id).execute();
    let spentThisMonth = 0;
    let allowanceLeft = 0;
    let returning: SiteSummary['returning'] = null;
    for (const chain of chains) {
      const state = await stateWithoutLock(db, chain);
      const known = chain.status === 'refunded' ? (chain.refund_index ?? 0) : highestKnownIndex(state);
      const grants = await db
        .selectFrom('allowances')
        .select(['allowance_index', 'spent_index', 'created_at'])
        .where('chain_id', '=', chain.chain_id)
        .where('kind', '=', 'grant')
        .orderBy('created_at')
        .execute();
      const allowance = grants.reduce((a, g) => Math.max(a, g.allowance_index), 0);
      const before = grants.filter((g) => g.created_at < since).reduce((a, g) => Math.max(a, g.spent_index), 0);
      spentThisMonth += Math.max(0, known - before) * chain.unit;
      if (chain.status === 'refunded') continue;
      const left = Math.max(0, allowance - known) * chain.unit;
      if (c.revoked_at === null) allowanceLeft += left;
      else {
        const vendorEpoch = [...state.epochs.values()].find((e) => e.vendor_id === c.vendor_id);
        returning = { amountMinor: left, byAt: vendorEpoch?.lease_expires_at ?? c.revoked_at };
      }
    }
    if (c.revoked_at !== null && returning === null) continue;
    out.push({
      connectionId: c.id,
      vendorId: c.vendor_id,
      name: c.name,
      connectedAt: c.created_at,
      revokedAt: c.revoked_at,
      siteCapMinor: Number(c.site_cap_minor),
      spentThisMonthMinor: spentThisMonth,
      allowanceLeftMinor: allowanceLeft,
      returning,
    });
  }
  return out.sort((a, b) => Number(a.revokedAt !== null) - Number(b.revokedAt !== null));
}

async function stateWithoutLock(db: Queryable, chain: ChainRow): Promise<ChainState> {
  const epochs = await db.selectFrom('epochs').selectAll().where('chain_id', '=', chain.chain_id).execute();
  return { chain, epochs: new Map(epochs.map((e) => [e.epoch, e])) };
}
