import { randomUUID } from 'node:crypto';
import type { RedemptionItem, RedemptionRequest, RedemptionResponse } from '@netpay/protocol';
import { type BrokerClient, RemoteError } from './broker-client.ts';
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
}

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

  /** Sends one stored batch; false when the broker could not be reached (stop and resume next run). */
  const send = async (key: string, body: string, n: number, total: number): Promise<boolean> => {
    const request = JSON.parse(body) as RedemptionRequest;
    let response: RedemptionResponse;
    try {
      response = await deps.broker.redeem(key, request);
    } catch (error) {
      if (error instanceof RemoteError && error.kind === 'refused') {
        // The broker will never take this body (422 with another body, 400): give it up; its ranges are
        // planned again in a fresh batch.
        await deps.store.failBatch(key, JSON.stringify(error.body ?? { message: error.message }));
        deps.log?.('redemption batch refused', { key, status: error.status, code: error.code });
        return true;
      }
      report.error = (error as Error).message;
      deps.log?.('redemption batch not sent; will resend with the same key', { key, error: report.error });
      return false;
    }
    const results: RedeemedItem[] = [];
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
      const status = result?.status === 'accepted' ? 'accepted' : 'rejected';
      const gross = (item.to.index - item.from.index) * (await unitOf(item.chainId));
      const to = { index: item.to.index, payword: item.to.payword };
      results.push({ chainId: item.chainId, epoch: item.epoch, to, status, amountMinor: gross });
      if (status === 'accepted') report.accepted += 1;
      else report.rejected += 1;
    }
    await deps.store.completeBatch(key, JSON.stringify(response), results);
    report.batches += 1;
    report.credited += response.credited;
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

  // Batches stored by an earlier, interrupted run go first, with their original key and body; only then is the
  // rest planned from the durable state, so no range is ever in two batches.
  const run = async (): Promise<void> => {
    const leftovers = await deps.store.pendingBatches();
    for (let i = 0; i < leftovers.length; i++) {
      const b = leftovers[i] as { key: string; body: string };
      if (!(await send(b.key, b.body, i + 1, leftovers.length))) return;
    }
    const fresh = await plan();
    for (let i = 0; i < fresh.length; i++) {
      const b = fresh[i] as { key: string; body: string };
      if (!(await send(b.key, b.body, i + 1, fresh.length))) return;
    }
  };
  await run();
  // The payments of the ranges settled in this run leave the journal, in one pass (also after a run cut short).
  if (report.batches > 0) await deps.store.pruneJournal();
  return report;
}
