import {
  type ErrorCode,
  feeFor,
  Money,
  ProtocolError,
  type RedemptionItem,
  type RedemptionItemResult,
  type RedemptionRequest,
  type RedemptionResponse,
} from '@netpay/protocol';
import { forUpdate, isUniqueViolation, requestFingerprint, rfc3339 } from '@netpay/service-kit';
import { type ChainState, type EpochRow, loadChainState, lowestLaterStart, type RangeRow } from './chain-state.ts';
import { assertConserved, redeemBound, unclaimedValue } from './conservation.ts';
import type { BrokerDeps } from './deps.ts';
import type { HashJob } from './hash-jobs.ts';
import { HashWork, withHashWork } from './hash-work.ts';
import { newId } from './ids.ts';
import { redemptionEntryOf } from './ledger.ts';
import { postEntry } from './ledger-store.ts';
import { insertRange, keptRangeEndsAt, overlappingRange, shownPaidBefore } from './redeemed-ranges.ts';
import type { BrokerTx, Queryable } from './schema.ts';
import { checkRelease, learnRelease } from './take-back.ts';

/** Longest Idempotency-Key accepted. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;

/**
 * §5 redemption. The whole request is one transaction with every chain it names locked (in chainId order, so
 * two requests never wait on each other in a cycle); items are judged in order and later items see earlier
 * ones. The answer is stored with the idempotency key: the same key and body get the same bytes back, the
 * same key with another body is 422.
 *
 * @returns the response JSON text, byte-identical on retries
 */
export async function redeem(
  deps: BrokerDeps,
  vendorId: string,
  idempotencyKey: string,
  request: RedemptionRequest,
): Promise<string> {
  const fingerprint = requestFingerprint(request);
  const stored = await storedAnswer(deps.db, vendorId, idempotencyKey, fingerprint);
  if (stored !== undefined) return stored;
  const ahead = new HashWork(deps.hasher.inlineSteps);
  await verifyRangesAhead(deps, ahead, vendorId, request);
  try {
    return await withHashWork(
      deps.hasher,
      (work) =>
        deps.db
          .transaction()
          .execute((trx) => judgeAll(deps, work, trx, vendorId, idempotencyKey, fingerprint, request)),
      ahead,
    );
  } catch (error) {
    // A concurrent request with the same key committed first: answer what it answered.
    if (!isUniqueViolation(error)) throw error;
    const again = await storedAnswer(deps.db, vendorId, idempotencyKey, fingerprint);
    if (again !== undefined) return again;
    throw error;
  }
}

/**
 * Each item's hash check, before the transaction: whether `to` hashes down to `from` depends on the item alone,
 * so a batch too long for the event loop is checked in the pool with no lock held, and the transaction finds the
 * answers in `work`. Rule 7 (the hashing comes last, so junk costs only cheap checks) holds here too: only items
 * that pass the cheap checks now are hashed (a chain the broker has, an epoch this vendor holds, 0 ≤ from < to ≤
 * length, a place it may start from or a release to check, within the epoch's bound, no overlap with what was
 * paid), so the work is bounded by the ranges the vendor could be paid for, at most MAX_REDEMPTION_ITEMS × the
 * chain length cap. What is read here without a lock only chooses what to hash: an item whose checks pass only
 * later is hashed when the transaction meets it (it stops, the pool hashes, it runs again).
 */
async function verifyRangesAhead(
  deps: BrokerDeps,
  work: HashWork,
  vendorId: string,
  request: RedemptionRequest,
): Promise<void> {
  const claimed = request.items.reduce((sum, i) => sum + Math.max(0, i.to.index - i.from.index), 0);
  if (claimed <= work.inlineSteps) return;
  const chainIds = [...new Set(request.items.map((i) => i.chainId))];
  const chains = await deps.db.selectFrom('chains').selectAll().where('chain_id', 'in', chainIds).execute();
  const epochs = await deps.db.selectFrom('epochs').selectAll().where('chain_id', 'in', chainIds).execute();
  const states = new Map<string, ChainState>(chains.map((c) => [c.chain_id, { chain: c, epochs: new Map() }]));
  for (const e of epochs) states.get(e.chain_id)?.epochs.set(e.epoch, e);
  const jobs: HashJob[] = [];
  // Where the batch's own items end: a later item may go on from one of them (items are judged in order).
  const ends = new Set<string>();
  // The ranges hashed ahead, per epoch: an item over one of them is not hashed ahead. An honest batch never
  // overlaps itself (only one of two such items can be paid), while a forged batch of one range repeated would
  // otherwise cost items × chain length in the pool; the transaction hashes such an item only if it meets it, and
  // gives up after a few of those (HASH_WORK_ATTEMPTS).
  const hashed = new Map<string, Array<[number, number]>>();
  const at = (item: RedemptionItem, p: { index: number; payword: string }) =>
    `${item.chainId} ${item.epoch} ${p.index} ${p.payword}`;
  for (const item of request.items) {
    const state = states.get(item.chainId);
    const epoch = state?.epochs.get(item.epoch);
    if (!state || !epoch || epoch.vendor_id !== vendorId) continue;
    if (item.from.index < 0 || item.to.index <= item.from.index || item.to.index > state.chain.length) continue;
    const from = { index: item.from.index, payword: item.from.payword };
    const start =
      item.from.release !== undefined ||
      ends.has(at(item, from)) ||
      (await isValidStart(deps.db, state, vendorId, item.epoch, from));
    if (!start) continue;
    if (!item.to.release && item.to.index > redeemBound(state.chain, epoch).index) continue;
    const epochKey = `${item.chainId} ${item.epoch}`;
    const ranges = hashed.get(epochKey) ?? [];
    if (ranges.some(([from, to]) => item.from.index < to && from < item.to.index)) continue;
    if (await overlappingRange(deps.db, item.chainId, item.from.index, item.to.index)) continue;
    ranges.push([item.from.index, item.to.index]);
    hashed.set(epochKey, ranges);
    jobs.push({
      kind: 'verify',
      chainId: item.chainId,
      known: from,
      presented: { index: item.to.index, payword: item.to.payword },
    });
    ends.add(at(item, item.to));
  }
  work.learn(jobs, await deps.hasher.run(jobs));
}

async function storedAnswer(
  db: Queryable,
  vendorId: string,
  idempotencyKey: string,
  fingerprint: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('redemptions')
    .select(['fingerprint', 'response'])
    .where('vendor_id', '=', vendorId)
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst();
  if (!row) return undefined;
  if (row.fingerprint !== fingerprint) {
    throw new ProtocolError('idempotency_conflict', 'this Idempotency-Key was used with another request body');
  }
  if (row.response === null) throw new Error('redemption stored without an answer');
  return row.response;
}

async function judgeAll(
  deps: BrokerDeps,
  work: HashWork,
  trx: BrokerTx,
  vendorId: string,
  idempotencyKey: string,
  fingerprint: string,
  request: RedemptionRequest,
): Promise<string> {
  const at = rfc3339(deps.clock.now());
  const redemptionId = newId('red');
  // Claim the key first: a concurrent twin blocks here (PostgreSQL) and then fails on the unique key.
  await trx
    .insertInto('redemptions')
    .values({
      id: redemptionId,
      vendor_id: vendorId,
      idempotency_key: idempotencyKey,
      fingerprint,
      response: null,
      created_at: at,
    })
    .execute();

  const chainIds = [...new Set(request.items.map((i) => i.chainId))].sort();
  const states = new Map<string, ChainState>();
  for (const chainId of chainIds) {
    const state = await loadChainState(trx, deps.engine, chainId);
    if (state) states.set(chainId, state);
  }

  const fees = await lockVendorFees(deps, trx, vendorId);
  const items: RedemptionItemResult[] = [];
  let credited = 0;
  for (const item of request.items) {
    const state = states.get(item.chainId);
    const outcome = state
      ? await judgeItem(deps, work, trx, state, vendorId, item, redemptionId, at, fees)
      : ({ code: 'unknown_chain' } as const);
    if ('code' in outcome) {
      items.push({
        chainId: item.chainId,
        epoch: item.epoch,
        status: 'rejected',
        amount: 0,
        fee: 0,
        code: outcome.code,
      });
    } else {
      items.push({
        chainId: item.chainId,
        epoch: item.epoch,
        status: 'accepted',
        amount: outcome.gross,
        fee: outcome.fee,
      });
      credited += outcome.gross - outcome.fee;
    }
  }
  await trx
    .updateTable('vendor_fees')
    .set({ gross: fees.gross, fee: fees.fee })
    .where('vendor_id', '=', vendorId)
    .execute();
  const response: RedemptionResponse = { redemptionId, items, credited };
  const text = JSON.stringify(response);
  await trx.updateTable('redemptions').set({ response: text }).where('id', '=', redemptionId).execute();
  return text;
}

type ItemOutcome = { code: ErrorCode } | { gross: number; fee: number };

/** A vendor's running redemption totals, locked for the request so concurrent redemptions carry one remainder. */
interface VendorFees {
  gross: number;
  fee: number;
}

async function lockVendorFees(deps: BrokerDeps, trx: BrokerTx, vendorId: string): Promise<VendorFees> {
  let query = trx.selectFrom('vendor_fees').select(['gross', 'fee']).where('vendor_id', '=', vendorId);
  if (forUpdate(deps.engine)) query = query.forUpdate();
  let row = await query.executeTakeFirst();
  if (!row) {
    await trx
      .insertInto('vendor_fees')
      .values({ vendor_id: vendorId, gross: 0, fee: 0 })
      .onConflict((oc) => oc.column('vendor_id').doNothing())
      .execute();
    row = await query.executeTakeFirst();
  }
  if (!row) throw new Error('vendor_fees row missing');
  return { gross: Number(row.gross), fee: Number(row.fee) };
}

/**
 * v1.1 fee rule: the fee on a vendor's redemptions is floor(total gross × bps / 10000) over all it has
 * redeemed, so each item pays the growth of that floor (the remainder is carried, never lost per item).
 */
export function carriedFee(totals: VendorFees, gross: number, feeBps: number): number {
  return feeFor(totals.gross + gross, feeBps) - feeFor(totals.gross, feeBps);
}

/** Judges one item against the chain's state, writing the range and ledger entry when it is accepted. */
async function judgeItem(
  deps: BrokerDeps,
  work: HashWork,
  trx: BrokerTx,
  state: ChainState,
  vendorId: string,
  item: RedemptionItem,
  redemptionId: string,
  at: string,
  fees: VendorFees,
): Promise<ItemOutcome> {
  const { chain } = state;
  const epoch = state.epochs.get(item.epoch);
  if (!epoch || epoch.vendor_id !== vendorId) return { code: 'not_holder' };
  const from = { index: item.from.index, payword: item.from.payword };
  const to = { index: item.to.index, payword: item.to.payword };

  let fromOk = false;
  if (item.from.release) {
    const release = item.from.release;
    if (release.index !== from.index || release.payword !== from.payword) return { code: 'invalid_payword' };
    const problem = await checkRelease(work, trx, state, release, vendorId, item.epoch);
    if (problem) return { code: problem };
    const previous = state.epochs.get(item.epoch - 1);
    if (previous) await learnRelease(trx, state, previous, release, at, 'next holder');
    // Never below the epoch's start (learned just now when it was unknown; a known one is never lowered).
    fromOk = await atOrAboveStart(trx, state, epoch, from.index);
  } else {
    fromOk = await isValidStart(trx, state, vendorId, item.epoch, from);
  }
  if (!fromOk) return { code: 'invalid_payword' };

  if (to.index <= from.index || to.index > chain.length) return { code: 'invalid_payword' };
  if (item.to.release) {
    // The redeemer's own release of a superseded epoch: it ends the epoch at its index (evidence against itself).
    const release = item.to.release;
    if (release.index !== to.index || release.payword !== to.payword) return { code: 'invalid_payword' };
    const next = state.epochs.get(item.epoch + 1);
    if (!next) return { code: 'invalid_payword' };
    const problem = await checkRelease(work, trx, state, release, next.vendor_id, next.epoch);
    if (problem) return { code: problem };
    await learnRelease(trx, state, epoch, release, at, 'signer');
  }
  const bound = redeemBound(chain, epoch);
  if (to.index > bound.index) return { code: bound.kind === 'end_unknown' ? 'end_unknown' : 'beyond_release' };
  // No epoch ends above a later one's start, whatever release it showed: past it the units were paid to the later
  // holder, whose start the broker gave it (a forced start) or learned from its predecessor's release.
  const laterStart = lowestLaterStart(state, item.epoch);
  if (laterStart !== null && to.index > laterStart) return { code: 'beyond_release' };
  if (await overlappingRange(trx, chain.chain_id, from.index, to.index)) return { code: 'overlap' };
  const units = to.index - from.index;
  const gross = units * chain.unit;
  if (!Number.isSafeInteger(gross)) return { code: 'bad_request' };
  // Conservation, checked before the write: never credit more than the chain has left (a refund included).
  if (gross > unclaimedValue(state)) return { code: 'overlap' };
  // The hashing (up to `length` SHA-256 steps) comes last, so a batch of junk items costs only cheap checks here;
  // a long batch was hashed before the transaction (verifyRangesAhead) and is answered from `work`.
  if (!work.verify(chain.chain_id, from, to)) return { code: 'invalid_payword' };

  const fee = carriedFee(fees, gross, deps.config.feeBps);
  fees.gross += gross;
  fees.fee += fee;
  const range: RangeRow = {
    id: newId('rr'),
    chain_id: chain.chain_id,
    from_index: from.index,
    from_payword: from.payword,
    to_index: to.index,
    to_payword: to.payword,
    kept_to: to.index,
    vendor_id: vendorId,
    epoch: item.epoch,
    redemption_id: redemptionId,
    gross,
    fee,
    taken_back_gross: 0,
    taken_back_fee: 0,
    created_at: at,
  };
  await insertRange(trx, state, epoch, range);
  await postEntry(
    trx,
    redemptionEntryOf(range.id, vendorId, Money.of(gross, chain.currency), Money.of(fee, chain.currency)),
    at,
  );
  assertConserved(state);
  return { gross, fee };
}

/**
 * Where a vendor may start redeeming in an epoch without carrying a release: the epoch's start (the anchor for
 * epoch 1, a release the broker already learned, or a forced start), or the end of a range it already redeemed.
 */
async function isValidStart(
  db: Queryable,
  state: ChainState,
  vendorId: string,
  epochNumber: number,
  from: { index: number; payword: string },
): Promise<boolean> {
  const epoch = state.epochs.get(epochNumber);
  if (!epoch) return false;
  if (epoch.start_index === from.index && epoch.start_payword === from.payword) {
    // The start and what the holders before showed they were paid to (which may have risen since it was set).
    return atOrAboveStart(db, state, epoch, from.index);
  }
  const previous = state.epochs.get(epochNumber - 1);
  if (
    previous &&
    previous.release_index === from.index &&
    previous.release_payword === from.payword &&
    (await atOrAboveStart(db, state, epoch, from.index))
  ) {
    return true;
  }
  return keptRangeEndsAt(db, state.chain.chain_id, vendorId, epochNumber, from);
}

/**
 * Whether a range may start at `index` in the epoch: at or above its start when the broker knows it (the first
 * release it learned, or a forced start), and never below what the holders before it said they had been paid to
 * (their claims' proofs and checkpoints: `heldBefore`). Below, the units belong to the epoch before, which
 * may have been credited and paid out for them already.
 */
async function atOrAboveStart(db: Queryable, state: ChainState, epoch: EpochRow, index: number): Promise<boolean> {
  if (epoch.start_index !== null && index < epoch.start_index) return false;
  return index >= (await shownPaidBefore(db, state, epoch.epoch)).index;
}
