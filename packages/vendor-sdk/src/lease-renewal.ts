/**
 * §5 leases: an epoch this vendor holds is kept by checkpoints (each renews the lease and tells the broker how far
 * the chain is spent), and the first checkpoint after a move carries the start release (§5 v1.1).
 */
import { type HolderCertificate, verifyHolderCertificate } from '@netpay/protocol';
import type { ChainState, EpochState } from './chain-state.ts';
import { needsRenewal, type RenewalReport } from './lease.ts';
import { type CheckpointOutcome, checkpointEpoch, releaseUnreported } from './release-report.ts';
import type { EpochRecord, SpendStore } from './spend-store.ts';
import { brokerKey, type VendorContext } from './vendor-context.ts';

/** Takes a renewed holder certificate into memory and the store, when it extends the lease. */
export async function renewLocal(
  store: Pick<SpendStore, 'updateLease'>,
  chain: ChainState,
  epoch: EpochState,
  holder: HolderCertificate,
): Promise<void> {
  const expires = Date.parse(holder.expiresAt);
  if (expires <= epoch.record.leaseExpiresAtMs) return;
  epoch.record.holder = holder;
  epoch.record.leaseExpiresAtMs = expires;
  await store.updateLease(chain.record.chainId, epoch.record.epoch, holder, expires);
}

/** Lease renewal and checkpoints of the epochs this vendor holds. */
export class LeaseRenewal {
  readonly #ctx: VendorContext;
  #renewing: Promise<RenewalReport> | undefined;

  constructor(ctx: VendorContext) {
    this.#ctx = ctx;
  }

  /** Checkpoints every lease that expires within the next third of its TTL; one pass at a time. */
  renewLeases(): Promise<RenewalReport> {
    if (!this.#renewing) {
      this.#renewing = this.#renew().finally(() => {
        this.#renewing = undefined;
      });
    }
    return this.#renewing;
  }

  /** The pass under way, if any (close waits for it). */
  get running(): Promise<RenewalReport> | undefined {
    return this.#renewing;
  }

  async #renew(): Promise<RenewalReport> {
    const report: RenewalReport = { renewed: 0, superseded: 0, failed: 0 };
    const now = this.#ctx.now();
    for (const row of await this.#ctx.store.activeEpochs()) {
      // A start release the broker has not been told about goes now, whatever the lease (§5 v1.1).
      if (!needsRenewal(row.holder, now) && !releaseUnreported(row)) continue;
      const chain = await this.#ctx.chains.get(row.chainId);
      const epoch = chain?.epochs.get(row.epoch);
      if (!chain || !epoch || epoch !== chain.current || epoch.stopping || epoch.record.release) continue;
      const outcome = await this.checkpoint(chain, epoch);
      if (outcome?.kind === 'renewed') report.renewed += 1;
      else if (outcome?.kind === 'superseded') report.superseded += 1;
      else if (outcome) report.failed += 1;
    }
    return report;
  }

  /**
   * Checkpoints an epoch this vendor holds from its durable record (payments in flight settled first), carrying
   * its start release while unreported, and applies the answer here. Undefined when there is nothing to send.
   */
  async checkpoint(chain: ChainState, epoch: EpochState): Promise<CheckpointOutcome | undefined> {
    const ctx = this.#ctx;
    const chainId = chain.record.chainId;
    await chain.writeTail;
    const durable = await ctx.store.getEpoch(chainId, epoch.record.epoch);
    if (!durable?.last || durable.release || durable.superseded) return undefined;
    const outcome = await checkpointEpoch(
      { broker: ctx.broker, store: ctx.store, holderVerifies: (h, e) => this.#holderVerifies(h, e) },
      durable,
    );
    const fields = { chainId, epoch: durable.epoch };
    if (outcome.kind === 'renewed') {
      await renewLocal(ctx.store, chain, epoch, outcome.holder);
      if (outcome.reported) epoch.record.releaseReported = true;
    } else if (outcome.kind === 'superseded') {
      epoch.stopping = true;
      epoch.record.superseded = true;
      ctx.logger?.warn(fields, 'netpay lease superseded');
    } else {
      if (outcome.kind === 'refused' && durable.startRelease) epoch.record.releaseReported = true;
      ctx.logger?.warn({ ...fields, err: outcome.detail }, `netpay checkpoint ${outcome.kind}`);
    }
    return outcome;
  }

  async #holderVerifies(holder: HolderCertificate, epoch: EpochRecord): Promise<boolean> {
    const key = await brokerKey(this.#ctx.broker, holder.keyId);
    return (
      key !== undefined &&
      verifyHolderCertificate(holder, key) &&
      holder.chainId === epoch.chainId &&
      holder.epoch === epoch.epoch &&
      holder.vendorId === this.#ctx.vendorId
    );
  }
}
