import type { ChainState, EpochRow, Point, RangeRow } from './chain-state.ts';
import { heldBefore, updateEpoch } from './chain-state.ts';
import { PreparedQuery } from './prepared-query.ts';
import type { BrokerTx, Queryable } from './schema.ts';

/**
 * The redeemed ranges a redemption or take-back must see, read one question at a time under the chain's lock
 * (never all of a chain's ranges), through the `(chain_id, kept_to)` index: ranges are found by where what they
 * keep ends. Each write keeps its epoch's summary (kept gross, highest end) in step, in the same transaction.
 */

/**
 * A range anyone kept on the chain that overlaps [from, to), if there is one: the same rule as before ranges were
 * read one by one (a range kept to its own start keeps nothing and overlaps nothing).
 */
export async function overlappingRange(
  db: Queryable,
  chainId: string,
  from: number,
  to: number,
): Promise<RangeRow | undefined> {
  return overlapping.first(db, { chainId, from, to });
}

const overlapping = new PreparedQuery((db, slot) =>
  db
    .selectFrom('redeemed_ranges')
    .selectAll()
    .where('chain_id', '=', slot('chainId'))
    .where('kept_to', '>', slot('from'))
    .where('from_index', '<', slot('to'))
    .whereRef('kept_to', '>', 'from_index')
    .limit(1),
);

/** Whether this vendor has a range of this epoch, kept whole, that ends at exactly `point`: a place to go on from. */
export async function keptRangeEndsAt(
  db: Queryable,
  chainId: string,
  vendorId: string,
  epoch: number,
  point: Point,
): Promise<boolean> {
  const row = await keptEndingAt.first(db, { chainId, index: point.index, payword: point.payword, vendorId, epoch });
  return row !== undefined;
}

const keptEndingAt = new PreparedQuery((db, slot) =>
  db
    .selectFrom('redeemed_ranges')
    .select('id')
    .where('chain_id', '=', slot('chainId'))
    .where('kept_to', '=', slot('index'))
    .where('to_index', '=', slot('index'))
    .where('to_payword', '=', slot('payword'))
    .where('vendor_id', '=', slot('vendorId'))
    .where('epoch', '=', slot('epoch'))
    .limit(1),
);

/** The epoch holder's ranges that still keep something at or beyond `bound` (what a release takes back). */
export async function rangesKeptBeyond(trx: BrokerTx, epoch: EpochRow, bound: number): Promise<RangeRow[]> {
  return trx
    .selectFrom('redeemed_ranges')
    .selectAll()
    .where('chain_id', '=', epoch.chain_id)
    .where('kept_to', '>', bound)
    .whereRef('kept_to', '>', 'from_index')
    .where('vendor_id', '=', epoch.vendor_id)
    .where('epoch', '=', epoch.epoch)
    .orderBy('from_index')
    .execute();
}

/** Writes a new range and adds it to its epoch's summary. */
export async function insertRange(trx: BrokerTx, state: ChainState, epoch: EpochRow, range: RangeRow): Promise<void> {
  await trx.insertInto('redeemed_ranges').values(range).execute();
  const higher = epoch.redeemed_index === null || range.to_index > epoch.redeemed_index;
  await updateEpoch(trx, state, epoch, {
    kept_gross: epoch.kept_gross + range.gross - range.taken_back_gross,
    ...(higher ? { redeemed_index: range.to_index, redeemed_payword: range.to_payword } : {}),
  });
}

/**
 * `heldBefore` with the redeemed ends it needs read: for each earlier epoch whose highest redeemed end reaches the
 * next holder's claim (rare: a double spend handed to its holder, or a race), its highest range end below that claim,
 * which was its holder's whatever comes later.
 */
export async function shownPaidBefore(db: Queryable, state: ChainState, beforeEpoch: number): Promise<Point> {
  const below = new Map<number, Point>();
  for (const e of state.epochs.values()) {
    if (e.epoch >= beforeEpoch || e.redeemed_index === null) continue;
    const nextClaim = state.epochs.get(e.epoch + 1)?.claim_index ?? null;
    if (nextClaim === null || e.redeemed_index < nextClaim) continue;
    const row = await db
      .selectFrom('redeemed_ranges')
      .select(['to_index', 'to_payword'])
      .where('chain_id', '=', e.chain_id)
      .where('epoch', '=', e.epoch)
      .where('to_index', '<', nextClaim)
      .orderBy('to_index', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (row) below.set(e.epoch, { index: Number(row.to_index), payword: row.to_payword });
  }
  return heldBefore(state, beforeEpoch, below);
}
