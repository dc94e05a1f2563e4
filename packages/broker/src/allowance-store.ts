import type { SpendNote } from '@netpay/protocol';
import type { CapUsage } from './allowances.ts';
import { newId } from './ids.ts';
import type { BrokerSchema, Queryable } from './schema.ts';
import { dayStart, monthStart } from './top-up.ts';

export type AllowanceRow = BrokerSchema['allowances'];

/** The chain's latest grant (its current allowance index is the highest, since an allowance never goes down). */
export async function latestGrant(db: Queryable, chainId: string): Promise<AllowanceRow | undefined> {
  return db
    .selectFrom('allowances')
    .selectAll()
    .where('chain_id', '=', chainId)
    .where('kind', '=', 'grant')
    .orderBy('allowance_index', 'desc')
    .orderBy('spent_index', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** Writes a grant: the allowance index it raised the chain to, and by how much money (the cap's measure). */
export async function recordGrant(db: Queryable, row: Omit<AllowanceRow, 'id' | 'kind'>): Promise<AllowanceRow> {
  const full: AllowanceRow = { id: newId('al'), kind: 'grant', ...row };
  await db.insertInto('allowances').values(full).execute();
  return full;
}

/**
 * Writes what came back when a connection chain ended at `spentIndex`: the vendor's unspent allowance, which
 * the caps no longer count. Once per chain; a second call changes nothing.
 */
export async function recordReturn(
  db: Queryable,
  row: { connectionId: string; customerId: string; chainId: string; spentIndex: number; at: string },
  unit: number,
): Promise<number> {
  const grant = await latestGrant(db, row.chainId);
  if (!grant) return 0;
  const returned = Math.max(0, grant.allowance_index - row.spentIndex) * unit;
  await db
    .insertInto('allowances')
    .values({
      // One per chain: its id is the chain's, so a second call hits the primary key and changes nothing.
      id: `ret_${row.chainId}`,
      connection_id: row.connectionId,
      customer_id: row.customerId,
      chain_id: row.chainId,
      kind: 'return',
      spent_index: row.spentIndex,
      allowance_index: grant.allowance_index,
      amount: -returned,
      expires_at: grant.expires_at,
      created_at: row.at,
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  return returned;
}

/** Net grants of the connection this calendar month and of the customer today (UTC), for the caps. */
export async function capUsage(db: Queryable, connectionId: string, customerId: string, now: Date): Promise<CapUsage> {
  const sum = async (column: 'connection_id' | 'customer_id', id: string, since: string) => {
    const row = await db
      .selectFrom('allowances')
      .select((eb) => eb.fn.sum<number | string | null>('amount').as('total'))
      .where(column, '=', id)
      .where('created_at', '>=', since)
      .executeTakeFirst();
    return Number(row?.total ?? 0);
  };
  return {
    siteMonthMinor: await sum('connection_id', connectionId, monthStart(now)),
    dailyMinor: await sum('customer_id', customerId, dayStart(now)),
  };
}

/**
 * Keeps what the site says it sold up to `spentIndex`, for the customer's history; a note repeated by a retried
 * request, or beyond the reported point, is ignored.
 */
export async function recordNotes(
  db: Queryable,
  notes: SpendNote[] | undefined,
  at: { chainId: string; connectionId: string; customerId: string; vendorId: string; spentIndex: number; now: string },
): Promise<void> {
  for (const note of notes ?? []) {
    if (note.index > at.spentIndex) continue;
    await db
      .insertInto('spend_notes')
      .values({
        chain_id: at.chainId,
        idx: note.index,
        connection_id: at.connectionId,
        customer_id: at.customerId,
        vendor_id: at.vendorId,
        amount: note.amount,
        description: note.description,
        created_at: at.now,
      })
      .onConflict((oc) => oc.columns(['chain_id', 'idx']).doNothing())
      .execute();
  }
}
