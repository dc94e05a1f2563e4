import { randomUUID } from 'node:crypto';
import { b64uDecode, type RedemptionItem, type RedemptionRequest, type RedemptionResponse } from '@netpay/protocol';
import { type BrokerClient, RemoteError } from './broker-client.ts';
import { type ClippedAnswer, redeemUpToBound } from './redemption-bound.ts';
import type { ChainRecord, EpochRecord, RedeemedItem, SpendStore } from './spend-store.ts';

/** Most items sent in one redemption request. */
export const REDEMPTION_BATCH_SIZE = 500;

/** Progress of a redemption run, after each batch. */
export interface RedemptionProgress {
  batch: number;
  batches: number;
  accepted: number;
  rejected: number;
  credited: number;
}

/**
 * What `redeemNow()` did. `error` is set when a batch could not be sent; re-run to resume. `deferred` counts items
 * the broker could not decide yet (`end_unknown`: a superseded epoch whose end it does not know); they are sent
 * again on a later run.
 */
export interface RedemptionReport {
  batches: number;
  accepted: number;
  rejected: number;
  credited: number;
  deferred?: number;
  error?: string;
  /** Another process of this vendor (a fleet on one store) is redeeming now: this run sent nothing. */
  busy?: boolean;
}

/**
 * One process of a vendor fleet redeems at a time: two runs planning the same epochs from one store each recorded
 * the ranges the other had just redeemed as refused (the broker paid each unit once; the vendor's own books were
 * wrong). The run holds a lock in the store, renewed before every request, for at most this long without renewal
 * (a process that died holding it frees it then).
 */
export const REDEMPTION_LOCK_MS = 120_000;

/** The report's error when the lock ran out under a run (a request outlived it) and another process took it. */
export const TAKEN_OVER = 'another process of this vendor took the redemption run over';

/**
 * The redemption item for an epoch: from the epoch start (carrying the release it came from) or the point already
 * redeemed up to, to its last index. Undefined when nothing is left to redeem.
 *
 * An epoch this vendor released is superseded, and its end is the release: the item runs to the release point and
 * carries the release as `to.release` (§5 v1.1), so the broker knows the end even if the next holder never reported
 * it.
 *
 * @example
 * const item = redemptionItem(epochRecord);
 */
export function redemptionItem(epoch: EpochRecord): RedemptionItem | undefined {
  if (!epoch.start || !epoch.last) return undefined;
  const fromRedeemed = epoch.redeemed !== null;
  const from = epoch.redeemed ?? epoch.start;
  const to = epoch.release ? { index: epoch.release.index, payword: epoch.release.payword } : epoch.last;
  if (to.index <= from.index) return undefined;
  const item: RedemptionItem = {
    chainId: epoch.chainId,
    epoch: epoch.epoch,
    from: { index: from.index, payword: from.payword },
    to: { index: to.index, payword: to.payword },
  };
  if (!fromRedeemed && epoch.startRelease) item.from.release = epoch.startRelease;
  if (epoch.release) item.to.release = epoch.release;
  return item;
}

/** Splits items into batches of at most `size`. */
export function batches<T>(items: readonly T[], size = REDEMPTION_BATCH_SIZE): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

interface JobDeps {
  store: SpendStore;
  broker: BrokerClient;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** The statuses of a batch the broker will never take (its body refused): only these give a batch up. */
const NEVER_TAKEN: ReadonlySet<number> = new Set([400, 422]);

/**
 * Redeems everything spent and not yet redeemed. Each batch's idempotency key and body are stored before they are
 * sent, so a run interrupted anywhere re-sends the same key and body on the next run, and the broker answers the
 * same; results are written with the batch's completion in one transaction.
 */
export async function runRedemption(
  deps: JobDeps,
  onProgress?: (progress: RedemptionProgress) => void,
): Promise<RedemptionReport> {
  const report: RedemptionReport = { batches: 0, accepted: 0, rejected: 0, credited: 0 };
  const holder = randomUUID();
  const hold = () => deps.store.claimJob('redemption', holder, Date.now(), Date.now() + REDEMPTION_LOCK_MS);
  if (!(await hold())) return { ...report, busy: true };
  const units = new Map<string, number>();
  const unitOf = async (chainId: string): Promise<number> => {
    const known = units.get(chainId);
    if (known !== undefined) return known;
    const loaded = await deps.store.loadChain(chainId);
    const unit = loaded?.chain.unit ?? 0;
    units.set(chainId, unit);
    return unit;
  };

  const plan = async () => {
    const rows: { chain: ChainRecord; epoch: EpochRecord }[] = await deps.store.redeemable();
    const items: RedemptionItem[] = [];
    for (const { chain, epoch } of rows) {
      units.set(chain.chainId, chain.unit);
      const item = redemptionItem(epoch);
      if (item) items.push(item);
    }
    const out: { key: string; body: string }[] = [];
    for (const group of batches(items)) {
      const key = `np-redeem-${randomUUID()}`;
      const body = JSON.stringify({ items: group } satisfies RedemptionRequest);
      await deps.store.createBatch(key, body);
      out.push({ key, body });
    }
    return out;
  };

  /**
   * Sends a stored batch. A body the broker will never take (422 with another body, 400) is given up, its ranges
   * planned again in a fresh batch; a batch that was not answered stays pending, re-sent with the same key later.
   * Any other refusal (401, 403, 404, 408, a proxy's) may come after the broker committed the batch, so it is not
   * an answer: given up, an accepted range would be planned again from behind the broker and refused as an overlap.
   */
  const post = async (
    key: string,
    request: RedemptionRequest,
  ): Promise<{ response: RedemptionResponse } | 'refused' | 'unreachable'> => {
    if (!(await hold())) {
      // The lock ran out (a request outlived it) and another process took the run over: stop, it goes on.
      report.error = TAKEN_OVER;
      return 'unreachable';
    }
    try {
      return { response: await deps.broker.redeem(key, request) };
    } catch (error) {
      if (error instanceof RemoteError && error.kind === 'refused' && NEVER_TAKEN.has(error.status)) {
        await deps.store.failBatch(key, JSON.stringify(error.body ?? { message: error.message }));
        deps.log?.('redemption batch refused', { key, status: error.status, code: error.code });
        return 'refused';
      }
      report.error = (error as Error).message;
      deps.log?.('redemption batch not sent; will resend with the same key', { key, error: report.error });
      return 'unreachable';
    }
  };

  /** Sends one stored batch; false when the broker could not be reached (stop and resume next run). */
  const send = async (key: string, body: string, n: number, total: number): Promise<boolean> => {
    const request = JSON.parse(body) as RedemptionRequest;
    const sent = await post(key, request);
    if (sent === 'refused') return true;
    if (sent === 'unreachable') return false;
    const { response } = sent;
    const results: RedeemedItem[] = [];
    const pastEnd: RedemptionItem[] = [];
    for (let j = 0; j < request.items.length; j++) {
      const item = request.items[j] as RedemptionItem;
      const same = response.items[j];
      const result =
        same?.chainId === item.chainId && same.epoch === item.epoch
          ? same
          : response.items.find((r) => r.chainId === item.chainId && r.epoch === item.epoch);
      if (result?.status === 'rejected' && result.code === 'end_unknown') {
        // Not a no: the broker cannot bound this superseded epoch yet. The redeemed point stays where it was, so
        // a later run plans the same range again (in a new batch).
        report.deferred = (report.deferred ?? 0) + 1;
        continue;
      }
      if (result?.status === 'rejected' && result.code === 'beyond_release') {
        // Past the epoch's end, not wrong as a whole: the part below the end is redeemed by the search that follows
        // this batch (redemption-bound.ts); until it has run, the redeemed point stays where it was.
        pastEnd.push(item);
        continue;
      }
      const status = result?.status === 'accepted' ? 'accepted' : 'rejected';
      results.push(await redeemed(item, status));
    }
    await deps.store.completeBatch(key, JSON.stringify(response), results);
    report.batches += 1;
    report.credited += response.credited;
    for (const item of pastEnd) {
      if (!(await redeemBelowEnd(item))) return false;
    }
    onProgress?.({
      batch: n,
      batches: total,
      accepted: report.accepted,
      rejected: report.rejected,
      credited: report.credited,
    });
    deps.log?.('redemption batch done', { key, batch: n, of: total, credited: response.credited });
    return true;
  };

  /** The durable record of one item's answer: the redeemed point moves to its end, accepted or not. */
  const redeemed = async (item: RedemptionItem, status: 'accepted' | 'rejected'): Promise<RedeemedItem> => {
    const gross = (item.to.index - item.from.index) * (await unitOf(item.chainId));
    if (status === 'accepted') report.accepted += 1;
    else report.rejected += 1;
    const to = { index: item.to.index, payword: item.to.payword };
    return { chainId: item.chainId, epoch: item.epoch, to, status, amountMinor: gross };
  };

  /**
   * One range alone, stored before it is sent like any batch. `final` records a `beyond_release` as the range's
   * answer (the search is over); otherwise that answer leaves the redeemed point where it was.
   */
  const redeemOne = async (item: RedemptionItem, final: boolean): Promise<ClippedAnswer> => {
    const key = `np-redeem-${randomUUID()}`;
    const request: RedemptionRequest = { items: [item] };
    await deps.store.createBatch(key, JSON.stringify(request));
    const sent = await post(key, request);
    // Not answered: left pending, the next run re-sends it with the same key and the search resumes from its answer.
    if (sent === 'unreachable') return 'unreachable';
    if (sent === 'refused') {
      // The request itself was refused (a 4xx, the batch given up): the broker said nothing of the range. A probe's
      // refusal must not end the search as if it were the range's answer, or the rest would be recorded as refused
      // from the last accepted point, the units below the end with it. The run stops; the next one searches again.
      if (final) return 'rejected';
      report.error ??= 'a redemption probe was refused; the next run searches for the epoch end again';
      return 'unreachable';
    }
    const { response } = sent;
    const result = response.items[0];
    let answer: ClippedAnswer =
      result?.status === 'accepted' ? 'accepted' : result?.code === 'beyond_release' ? 'beyond_release' : 'rejected';
    // A probe refused as an overlap (the broker is ahead of this store) or `end_unknown` says nothing of where the
    // end is: taken as the search's answer, the rest would be recorded as refused from the last accepted point, the
    // units below the end with it. The run stops there instead, with nothing recorded, and the next one plans again.
    if (!final && answer === 'rejected' && (result?.code === 'overlap' || result?.code === 'end_unknown')) {
      report.error ??= `a redemption probe was refused (${result.code}); the next run searches again`;
      answer = 'unreachable';
    }
    // A probe's refusal is not the range's answer (only the final request's is), and `end_unknown` never is one.
    const recorded =
      answer === 'accepted'
        ? [await redeemed(item, 'accepted')]
        : final && result?.code !== 'end_unknown'
          ? [await redeemed(item, 'rejected')]
          : [];
    await deps.store.completeBatch(key, JSON.stringify(response), recorded);
    report.batches += 1;
    report.credited += response.credited;
    return answer;
  };

  /**
   * A range refused `beyond_release`: redeems the part below the epoch's end, then records the rest as refused
   * (one more request, so that what is recorded is the broker's own answer). False when the broker stopped
   * answering (stop the run; the next one starts over from the durable state).
   */
  const redeemBelowEnd = async (item: RedemptionItem): Promise<boolean> => {
    // An interrupted earlier search may have moved the redeemed point: start from where the epoch is now.
    const epoch = await deps.store.getEpoch(item.chainId, item.epoch);
    const range: RedemptionItem =
      epoch?.redeemed && epoch.redeemed.index > item.from.index
        ? { ...item, from: { index: epoch.redeemed.index, payword: epoch.redeemed.payword } }
        : item;
    if (range.from.index >= range.to.index) return true;
    const search = await redeemUpToBound(range, b64uDecode(item.chainId, 16), (probe) => redeemOne(probe, false));
    if (!search.answered) return false;
    if (search.redeemedTo.index >= range.to.index) return true;
    const rest: RedemptionItem = {
      chainId: item.chainId,
      epoch: item.epoch,
      from: search.redeemedTo.index === range.from.index ? range.from : search.redeemedTo,
      to: range.to,
    };
    deps.log?.('redemption range passed the epoch end: redeemed below it, the rest given up', {
      chainId: item.chainId,
      epoch: item.epoch,
      from: range.from.index,
      redeemedTo: search.redeemedTo.index,
      to: item.to.index,
    });
    return (await redeemOne(rest, true)) !== 'unreachable';
  };

  // Batches stored by an earlier, interrupted run go first, with their original key and body; only then is the
  // rest planned from the durable state, so no range is ever in two batches.
  const run = async (): Promise<void> => {
    const leftovers = await deps.store.pendingBatches();
    for (let i = 0; i < leftovers.length; i++) {
      const b = leftovers[i] as { key: string; body: string };
      if (!(await send(b.key, b.body, i + 1, leftovers.length))) return;
    }
    // The lock again before planning: a run whose request outlived it may have been taken over meanwhile, and the
    // process that took it plans from the same durable state (two plans of one range, each recording the other's).
    if (!(await hold())) {
      report.error = TAKEN_OVER;
      return;
    }
    const fresh = await plan();
    for (let i = 0; i < fresh.length; i++) {
      const b = fresh[i] as { key: string; body: string };
      if (!(await send(b.key, b.body, i + 1, fresh.length))) return;
    }
  };
  try {
    await run();
    // The payments of the ranges settled in this run leave the journal, in one pass (also after a run cut short).
    if (report.batches > 0) await deps.store.pruneJournal();
  } finally {
    await deps.store.releaseJob('redemption', holder).catch(() => {
      // It runs out by itself.
    });
  }
  return report;
}
