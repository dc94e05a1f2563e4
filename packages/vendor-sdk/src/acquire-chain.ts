/**
 * §5 claim: becoming a valid holder of a chain with a known start. A claim (this vendor's own, with the customer's
 * payword as proof, or one the broker made for a server-side wallet) is verified and stored as a new epoch; its
 * start is then forced by the broker or obtained as the previous holder's release (§6), and reported to the broker
 * at once (§5 v1.1). Every problem is a value: the §4 answer to give the customer, nothing charged.
 */
import {
  b64uDecode,
  type ClaimResponse,
  type HolderCertificate,
  type ReleaseStatement,
  verifyHolderCertificate,
  verifyTouchstone,
} from '@netpay/protocol';
import { type ChallengeFacts, type ProblemDecision, paymentProblem } from './challenge.ts';
import { ChainState, type EpochState } from './chain-state.ts';
import { claimWithProof, type ProofSource } from './claim-proof.ts';
import { renewLocal } from './lease-renewal.ts';
import { verifiesAtOrBelow } from './payment.ts';
import { checkRelease } from './release.ts';
import type { ReleaseOutcome } from './release-request.ts';
import type { ChainRecord, EpochRecord } from './spend-store.ts';
import { brokerKey, errorMessage, type VendorContext } from './vendor-context.ts';

/** What a claim needs from the other parts: this vendor's own release of an earlier epoch, and the checkpoint. */
export interface AcquirePorts {
  /** Releases an epoch of this vendor to its next one (a self-release, §6). */
  releaseOwn(chain: ChainState, epoch: EpochState, to: HolderCertificate): Promise<ReleaseOutcome>;
  /** Checkpoints the epoch (the start release reported at once). */
  checkpoint(chain: ChainState, epoch: EpochState): Promise<unknown>;
}

/** True for a problem rather than the chain or epoch a step made. */
export function isProblem(value: object): value is ProblemDecision {
  return (value as { kind?: unknown }).kind === 'problem';
}

/** Claims chains and adopts claims, one at a time per chain. */
export class ChainAcquisition {
  readonly #ctx: VendorContext;
  readonly #ports: AcquirePorts;

  constructor(ctx: VendorContext, ports: AcquirePorts) {
    this.#ctx = ctx;
    this.#ports = ports;
  }

  /**
   * Makes this vendor a valid holder of the chain with a known start (claiming with the customer's payword as proof,
   * and obtaining the release), or the problem that prevents it.
   */
  acquire(chainId: string, facts: ChallengeFacts, proof: ProofSource): Promise<ChainState | ProblemDecision> {
    const ctx = this.#ctx;
    return ctx.claims.run(chainId, async () => {
      const chain = await ctx.chains.get(chainId);
      if (chain?.accepting) return chain;
      const outcome = await claimWithProof(ctx.broker, chainId, proof, facts);
      if (outcome.kind === 'refused') {
        if (outcome.problem.status >= 500) ctx.logger?.warn({ chainId, err: outcome.cause }, 'netpay claim failed');
        return outcome.problem;
      }
      return this.#adoptClaim(chain, chainId, outcome.claim, facts);
    });
  }

  /**
   * A claim the broker made for this vendor (a connection's grant, or a new chain of the connection) goes through
   * the same processing as our own claim, in the chain's claim queue.
   */
  async adoptBrokerClaim(chainId: string, claim: ClaimResponse): Promise<ProblemDecision | undefined> {
    const ctx = this.#ctx;
    const adopted = await ctx.claims.run(chainId, async () =>
      this.#adoptClaim(await ctx.chains.get(chainId), chainId, claim, undefined),
    );
    return isProblem(adopted) ? adopted : undefined;
  }

  /**
   * What a claim answer does here, whoever obtained it (`POST …/claim`, or a connect grant that claimed for us):
   * verify the touchstone and holder signatures, store the chain and the epoch, then take the forced start or
   * obtain the previous holder's release. Runs inside the chain's claim queue.
   */
  async #adoptClaim(
    known: ChainState | undefined,
    chainId: string,
    claim: ClaimResponse,
    facts: ChallengeFacts | undefined,
  ): Promise<ChainState | ProblemDecision> {
    const ctx = this.#ctx;
    const bad = await this.#checkClaim(chainId, claim, facts);
    if (bad) return bad;
    let chain = known;
    let epoch: EpochState | undefined;
    if (!chain) {
      const t = claim.touchstone;
      const record: ChainRecord = {
        chainId,
        touchstone: t,
        unit: t.unit,
        length: t.length,
        currency: t.currency,
        expiresAtMs: Date.parse(t.expiresAt),
      };
      // A chain new here (a reader's first payment): its record and its first epoch in one commit. When another
      // process of this vendor stored the chain meanwhile, nothing is written and it is loaded as it stands.
      const fresh = new ChainState(record, [], [], () => ctx.now());
      const first = epochRecordOf(fresh, claim, facts);
      if (isProblem(first)) return first;
      if (await ctx.store.insertFirstEpoch(record, first)) {
        // A request of this process may have loaded the chain from the store while the commit's fsync ran: that
        // copy (it holds the epoch) stays the only one, as two copies would each take payments.
        const loaded = ctx.chains.peek(chainId);
        if (loaded) {
          chain = loaded;
        } else {
          epoch = fresh.putEpoch(first);
          chain = fresh;
        }
      } else {
        chain = (await ctx.chains.get(chainId)) ?? fresh;
      }
      ctx.chains.put(chainId, chain);
    }
    const holder = claim.holder;
    epoch ??= chain.epochs.get(holder.epoch);
    if (epoch) {
      await renewLocal(ctx.store, chain, epoch, holder);
      if (!epoch.record.start && claim.start) {
        const problem = await this.#setStart(chain, epoch, claim.start, null, facts);
        if (problem) return problem;
      }
    } else {
      const made = await this.#newEpoch(chain, claim, facts);
      if (isProblem(made)) return made;
      epoch = made;
    }
    if (!epoch.record.start) {
      const problem = await this.obtainStart(chain, epoch);
      if (problem) return facts ? { ...problem, headers: { ...problem.headers, ...challengeHeaders(facts) } } : problem;
    }
    return chain;
  }

  async #checkClaim(
    chainId: string,
    claim: ClaimResponse,
    facts: ChallengeFacts | undefined,
  ): Promise<ProblemDecision | undefined> {
    const ctx = this.#ctx;
    const bad = (why: string) => {
      ctx.logger?.error({ chainId, why }, 'netpay claim answer rejected');
      return paymentProblem(facts, 'broker_unavailable', `the broker's answer does not verify: ${why}`);
    };
    const t = claim.touchstone;
    const h = claim.holder;
    if (t.chainId !== chainId || h.chainId !== chainId) return bad('wrong chain');
    if (h.vendorId !== ctx.vendorId) return bad('holder certificate names another vendor');
    const tKey = await brokerKey(ctx.broker, t.keyId);
    if (!tKey || !verifyTouchstone(t, tKey)) return bad('touchstone signature');
    const hKey = h.keyId === t.keyId ? tKey : await brokerKey(ctx.broker, h.keyId);
    if (!hKey || !verifyHolderCertificate(h, hKey)) return bad('holder signature');
    return undefined;
  }

  async #newEpoch(
    chain: ChainState,
    claim: ClaimResponse,
    facts: ChallengeFacts | undefined,
  ): Promise<EpochState | ProblemDecision> {
    const ctx = this.#ctx;
    const holder = claim.holder;
    const chainId = chain.record.chainId;
    const previous = claim.previous;
    const record = epochRecordOf(chain, claim, facts);
    if (isProblem(record)) return record;
    const old = chain.current;
    const inserted = await ctx.store.insertEpoch(record);
    let epoch: EpochState;
    if (inserted) {
      epoch = chain.putEpoch(record);
    } else {
      const stored = await ctx.store.getEpoch(chainId, holder.epoch);
      epoch = chain.putEpoch(stored ?? record);
    }
    // An earlier epoch of ours that is not released to this one was taken from us by force.
    if (old && old !== epoch && !old.record.release && !old.record.superseded) {
      const selfRelease = previous?.vendorId === ctx.vendorId && previous.epoch === old.record.epoch && !record.start;
      if (!selfRelease) {
        old.stopping = true;
        old.record.superseded = true;
        await ctx.store.markSuperseded(chainId, old.record.epoch);
      }
    }
    return epoch;
  }

  /** Stores an epoch's start (a forced start is verified first, a release was verified by its caller). */
  async #setStart(
    chain: ChainState,
    epoch: EpochState,
    start: { index: number; payword: string },
    release: ReleaseStatement | null,
    facts?: ChallengeFacts,
  ): Promise<ProblemDecision | undefined> {
    if (!release) {
      const words = b64uDecode(start.payword, 32);
      if (!verifiesAtOrBelow(chain.chainId, chain.knownPoints, start.index, words)) {
        return paymentProblem(facts, 'broker_unavailable', 'forced start does not verify');
      }
    }
    const store = this.#ctx.store;
    const chainId = chain.record.chainId;
    await store.setStart(chainId, epoch.record.epoch, start, release);
    const stored = await store.getEpoch(chainId, epoch.record.epoch);
    if (stored) {
      epoch.record = stored;
      chain.putEpoch(stored);
    }
    return undefined;
  }

  /** Obtains the predecessor's release for an epoch whose start is unknown; a problem when it cannot. */
  async obtainStart(chain: ChainState, epoch: EpochState): Promise<ProblemDecision | undefined> {
    const ctx = this.#ctx;
    const prev = epoch.record.previous;
    const chainId = chain.record.chainId;
    if (!prev) return this.#setStart(chain, epoch, { index: 0, payword: chain.record.touchstone.anchor }, null);
    let release: ReleaseStatement;
    if (prev.vendorId === ctx.vendorId) {
      const mine = chain.epochs.get(prev.epoch);
      if (!mine) {
        return paymentProblem(undefined, 'previous_holder_unavailable', `epoch ${prev.epoch} is unknown here`);
      }
      const outcome = await this.#ports.releaseOwn(chain, mine, epoch.record.holder);
      if (outcome.kind === 'refused') {
        const detail = String(outcome.answer.body.detail ?? 'self-release');
        return paymentProblem(undefined, 'previous_holder_unavailable', detail);
      }
      release = outcome.release;
    } else {
      try {
        release = (await ctx.broker.requestRelease(prev.releaseUrl, epoch.record.holder)).release;
      } catch (error) {
        ctx.logger?.warn({ chainId, prev: prev.vendorId, err: errorMessage(error) }, 'netpay release not obtained');
        return paymentProblem(undefined, 'previous_holder_unavailable', `${prev.vendorId}: ${errorMessage(error)}`);
      }
      const expected = {
        chainId,
        chainIdBytes: chain.chainId,
        prevVendorId: prev.vendorId,
        prevEpoch: prev.epoch,
        toVendorId: ctx.vendorId,
        toEpoch: epoch.record.epoch,
        knownPoints: chain.knownPoints,
      };
      let why: string | undefined;
      try {
        why = checkRelease(release, expected, (await ctx.broker.vendor(prev.vendorId)).keys);
        if (why?.startsWith('unknown key')) {
          why = checkRelease(release, expected, (await ctx.broker.vendor(prev.vendorId, true)).keys);
        }
      } catch (error) {
        return paymentProblem(undefined, 'broker_unavailable', `vendor directory: ${errorMessage(error)}`);
      }
      if (why) {
        ctx.logger?.error({ chainId, prev: prev.vendorId, why }, 'netpay release rejected');
        return paymentProblem(undefined, 'previous_holder_unavailable', `release rejected: ${why}`);
      }
    }
    const problem = await this.#setStart(chain, epoch, { index: release.index, payword: release.payword }, release);
    if (problem) return problem;
    // §5 v1.1: the broker learns where the previous epoch ended before this one takes a payment. A failure costs
    // the customer nothing: the renewal job sends it again.
    if (epoch === chain.current && !epoch.stopping) await this.#ports.checkpoint(chain, epoch);
    return undefined;
  }
}

/** The `WWW-Authenticate` challenge a problem carries when a customer's payment led to the claim. */
function challengeHeaders(facts: ChallengeFacts): Record<string, string> {
  const p = paymentProblem(facts, 'previous_holder_unavailable');
  return { 'www-authenticate': p.headers['www-authenticate'] as string };
}

/**
 * The epoch a claim answer makes, from its start: the forced start (checked against what the chain has shown
 * here), the anchor for a chain nobody held before, or none yet when a previous holder must release it.
 */
function epochRecordOf(
  chain: ChainState,
  claim: ClaimResponse,
  facts: ChallengeFacts | undefined,
): EpochRecord | ProblemDecision {
  const holder = claim.holder;
  const previous = claim.previous;
  let start = claim.start;
  if (start) {
    const words = b64uDecode(start.payword, 32);
    if (!verifiesAtOrBelow(chain.chainId, chain.knownPoints, start.index, words) || start.index > chain.length) {
      return paymentProblem(facts, 'broker_unavailable', 'forced start does not verify');
    }
  } else if (!previous) {
    start = { index: 0, payword: chain.record.touchstone.anchor };
  }
  return {
    chainId: chain.record.chainId,
    epoch: holder.epoch,
    holder,
    leaseExpiresAtMs: Date.parse(holder.expiresAt),
    previous: start ? null : (previous ?? null),
    start: start ?? null,
    startRelease: null,
    releaseReported: false,
    last: start ?? null,
    lastResource: null,
    release: null,
    superseded: false,
    redeemed: null,
    redeemedMinor: 0,
    rejectedMinor: 0,
  };
}
