/**
 * §6 release: answering another vendor's (or this vendor's own next epoch's) request for the release of an epoch
 * this vendor held. The release is signed at the epoch's durable last index and stored only while that is still
 * the last index, so no process of this vendor takes a payment after the point it signs.
 */
import {
  type ErrorCode,
  type HolderCertificate,
  PROBLEM_CONTENT_TYPE,
  ProtocolError,
  parseWire,
  problemDetails,
  ReleaseRequestSchema,
  type ReleaseStatement,
  verifyHolderCertificate,
} from '@netpay/protocol';
import type { ProblemDecision } from './challenge.ts';
import type { ChainState, EpochState } from './chain-state.ts';
import { makeRelease } from './release.ts';
import { brokerKey, type VendorContext } from './vendor-context.ts';

/** An HTTP answer for the release endpoint. */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** What releasing an epoch came to: the stored statement, or the answer that refuses it. */
export type ReleaseOutcome = { kind: 'released'; release: ReleaseStatement } | { kind: 'refused'; answer: HttpAnswer };

/** Times a release is signed again because another process took a payment between the read and the write. */
const MAX_RELEASE_ATTEMPTS = 20;

/** What releasing needs from the claim side: an epoch's own start, obtained when it is not known yet. */
export interface ReleasePorts {
  obtainStart(chain: ChainState, epoch: EpochState): Promise<ProblemDecision | undefined>;
}

/** The §6 release endpoint and the release of this vendor's own epochs. */
export class ReleaseRequests {
  readonly #ctx: VendorContext;
  readonly #ports: ReleasePorts;

  constructor(ctx: VendorContext, ports: ReleasePorts) {
    this.#ctx = ctx;
    this.#ports = ports;
  }

  /** Answers a release request (`body` is the parsed JSON body). */
  async answer(body: unknown): Promise<HttpAnswer> {
    const ctx = this.#ctx;
    try {
      let holder: HolderCertificate;
      try {
        holder = parseWire(ReleaseRequestSchema, body).holder;
      } catch (error) {
        return problemAnswer('bad_request', error instanceof ProtocolError ? error.detail : 'bad body');
      }
      const key = await brokerKey(ctx.broker, holder.keyId);
      if (!key) {
        const reachable = await ctx.broker.discovery().then(
          () => true,
          () => false,
        );
        if (!reachable) return problemAnswer('broker_unavailable', 'cannot fetch the broker keys');
        return problemAnswer('forbidden', 'the holder certificate is not signed by the broker');
      }
      if (!verifyHolderCertificate(holder, key)) {
        return problemAnswer('forbidden', 'the holder certificate is not signed by the broker');
      }
      if (holder.prevVendorId !== ctx.vendorId) {
        return problemAnswer('forbidden', `the holder certificate does not name ${ctx.vendorId} as previous holder`);
      }
      let chain = await ctx.chains.get(holder.chainId);
      let epoch = chain?.epochs.get(holder.prevEpoch);
      if (chain && (!epoch || (epoch !== chain.current && !epoch.record.release))) {
        // Another process of this vendor may have claimed the epoch (or released it): ask the store, not the cache.
        chain = await ctx.chains.reload(chain, holder.chainId);
        epoch = chain?.epochs.get(holder.prevEpoch);
      }
      if (!chain || !epoch) return problemAnswer('conflict', `${ctx.vendorId} never held epoch ${holder.prevEpoch}`);
      if (epoch !== chain.current && !epoch.record.release) {
        return problemAnswer('conflict', `epoch ${holder.prevEpoch} is not the current epoch here`);
      }
      const outcome = await this.releaseEpoch(chain, epoch, holder);
      if (outcome.kind === 'refused') return outcome.answer;
      return { status: 200, headers: { 'content-type': 'application/json' }, body: { release: outcome.release } };
    } catch (error) {
      ctx.logger?.error({ err: error }, 'netpay release failed');
      return problemAnswer('internal_error', 'an unexpected error occurred; it has been logged');
    }
  }

  /**
   * Releases an epoch to the holder of the next one: stop taking payments, wait for those in flight, obtain this
   * epoch's own start if needed, sign at the durable last index and store it. The first statement is final.
   */
  async releaseEpoch(chain: ChainState, epoch: EpochState, to: HolderCertificate): Promise<ReleaseOutcome> {
    if (!epoch.record.release) {
      if (!epoch.releasing) {
        epoch.stopping = true;
        epoch.releasing = this.#release(chain, epoch, to).finally(() => {
          epoch.releasing = undefined;
        });
      }
      const problem = await epoch.releasing;
      if (problem) {
        return {
          kind: 'refused',
          answer: { status: problem.status, headers: { 'content-type': PROBLEM_CONTENT_TYPE }, body: problem.body },
        };
      }
    }
    const release = epoch.record.release as ReleaseStatement | null;
    if (!release) return { kind: 'refused', answer: problemAnswer('internal_error', 'release not stored') };
    if (release.toVendorId !== to.vendorId || release.toEpoch !== to.epoch) {
      const detail = `epoch ${epoch.record.epoch} was released to ${release.toVendorId} ${release.toEpoch}`;
      return { kind: 'refused', answer: problemAnswer('conflict', detail) };
    }
    return { kind: 'released', release };
  }

  /** The one release of an epoch under way: stored (undefined) or the problem that stopped it. */
  async #release(chain: ChainState, epoch: EpochState, to: HolderCertificate): Promise<ProblemDecision | undefined> {
    const ctx = this.#ctx;
    const chainId = chain.record.chainId;
    await chain.writeTail;
    if (!epoch.record.start) {
      const problem = await this.#ports.obtainStart(chain, epoch);
      if (problem) return problem;
    }
    // Signed at the durable last index and stored only while that is still the last index: another process of this
    // vendor may take a payment in between, and a unit neither redeemable nor honoured would follow. When the index
    // moved, sign again at the new one; once stored, every process's next write on the epoch fails its
    // compare-and-set (release IS NULL).
    let stored: ReleaseStatement | undefined;
    for (let attempt = 0; !stored; attempt++) {
      if (attempt >= MAX_RELEASE_ATTEMPTS) throw new Error(`epoch ${chainId}/${epoch.record.epoch} kept moving`);
      const durable = await ctx.store.getEpoch(chainId, epoch.record.epoch);
      const durableLast = durable?.last;
      if (!durable || !durableLast) throw new Error(`epoch ${chainId}/${epoch.record.epoch} vanished`);
      if (durable.release) {
        stored = durable.release;
        break;
      }
      const statement = makeRelease({
        chainId,
        epoch: epoch.record.epoch,
        vendorId: ctx.vendorId,
        last: durableLast,
        to,
        keyId: ctx.signingKey.keyId,
        privateSeed: ctx.signingKey.privateSeed,
        now: ctx.clock.now(),
      });
      stored = await ctx.store.setRelease(chainId, epoch.record.epoch, statement);
    }
    chain.settleRelease(epoch, stored);
    ctx.logger?.info({ chainId, epoch: epoch.record.epoch, index: stored.index, to: to.vendorId }, 'netpay released');
    return undefined;
  }
}

/** A problem as the release endpoint's answer. */
export function problemAnswer(code: ErrorCode, detail?: string): HttpAnswer {
  const body = problemDetails(code, detail);
  return { status: body.status, headers: { 'content-type': PROBLEM_CONTENT_TYPE }, body };
}
