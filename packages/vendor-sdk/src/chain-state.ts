import { b64uDecode } from '@netpay/protocol';
import type { ProblemDecision } from './challenge.ts';
import {
  type ChainView,
  checkPayment,
  type KnownPoint,
  type PaymentCheck,
  type PaymentContext,
  type PresentedPayment,
} from './payment.ts';
import type { ChainRecord, EpochRecord, PaymentWrite, PointRecord } from './spend-store.ts';

/** One epoch of a chain in memory: the durable record plus what only this process knows. */
export interface EpochState {
  record: EpochRecord;
  /** Set when a release has begun: no more payments on this epoch. */
  stopping: boolean;
  /** The release under way (§6): settles with the problem that stopped it, or undefined once stored. */
  releasing?: Promise<ProblemDecision | undefined> | undefined;
}

/** A presented payment with its payword also in wire form (what the durable write stores). */
export interface PresentedWire extends PresentedPayment {
  paywordB64: string;
}

/**
 * A payment checked against the chain and, when payable, already advanced in memory in the same synchronous step:
 * the durable compare-and-set to make comes with it. Every other outcome left the chain as it was.
 */
export type ChargeStep =
  | Exclude<PaymentCheck, { kind: 'pay' }>
  | { kind: 'pay'; units: number; amountMinor: number; write: PaymentWrite };

/**
 * Entitlements a chain keeps in memory: the most recently bought resources. A chain reads more articles over its
 * life than memory should hold per chain; an older one is found in the store (`SpendStore.entitlement`).
 */
export const RECENT_ENTITLEMENTS = 16;

const noop = () => undefined;
const SETTLED: Promise<unknown> = Promise.resolve();

/** A broken invariant of a chain's state: a bug, never an expected outcome, so it is thrown. */
export class ChainInvariantError extends Error {
  override readonly name = 'ChainInvariantError';
}

function invariant(ok: boolean, chainId: string, what: string): asserts ok {
  if (!ok) throw new ChainInvariantError(`chain ${chainId}: ${what}`);
}

/**
 * A chain as this process holds it: the cached touchstone facts, every epoch it knows, entitlements and the tail
 * of its durable writes. A payment is checked and advanced by `checkAndAdvance`, one synchronous function, so two
 * payments on a chain can never both pass the check for the same index; the spend store stays the durable truth,
 * and a failed write throws the whole object away (`broken`).
 *
 * Invariants, asserted where the state moves: within an epoch the last index only grows; it never passes the
 * chain's length; a payment's index is above the last index it was checked against.
 */
export class ChainState implements ChainView {
  readonly record: ChainRecord;
  readonly chainId: Uint8Array;
  readonly anchor: Uint8Array;
  readonly epochs = new Map<number, EpochState>();
  current: EpochState | undefined;
  /** Resources bought with the chain here, the most recent last (at most RECENT_ENTITLEMENTS). */
  readonly #entitlements: Set<string>;
  /** False once an entitlement was left out of memory: a miss must then be checked in the store. */
  #allEntitlements: boolean;
  /** Payment writes issued and not yet settled, and the latest of them. */
  #pendingWrites = 0;
  #lastWrite: Promise<unknown> | undefined;
  broken = false;
  lastIndex = 0;
  lastPayword: Uint8Array;
  lastPaywordB64: string;
  lastResource: string | null = null;
  #known: KnownPoint[] | undefined;
  readonly #now: () => number;

  constructor(record: ChainRecord, epochs: EpochRecord[], entitlements: Iterable<string>, now: () => number) {
    this.record = record;
    this.chainId = b64uDecode(record.chainId, 16);
    this.anchor = b64uDecode(record.touchstone.anchor, 32);
    this.lastPayword = this.anchor;
    this.lastPaywordB64 = record.touchstone.anchor;
    this.#entitlements = new Set();
    this.#allEntitlements = true;
    for (const resource of entitlements) this.noteEntitlement(resource);
    this.#now = now;
    for (const e of epochs) this.putEpoch(e);
  }

  get unit(): number {
    return this.record.unit;
  }
  get length(): number {
    return this.record.length;
  }
  get currency(): string {
    return this.record.currency;
  }
  get expiresAtMs(): number {
    return this.record.expiresAtMs;
  }

  /** Whether the resource is among the entitlements in memory (see `entitlementsComplete` for a miss). */
  entitled(resource: string): boolean {
    return this.#entitlements.has(resource);
  }

  /** True while every entitlement of the chain here is in memory, so a miss means "not bought". */
  get entitlementsComplete(): boolean {
    return this.#allEntitlements;
  }

  /** Remembers a bought resource as the most recent, forgetting the oldest beyond RECENT_ENTITLEMENTS. */
  noteEntitlement(resource: string): void {
    const set = this.#entitlements;
    if (set.has(resource)) set.delete(resource);
    set.add(resource);
    if (set.size > RECENT_ENTITLEMENTS) {
      set.delete(set.values().next().value as string);
      this.#allEntitlements = false;
    }
  }

  /** Settles when every payment write issued so far has settled. */
  get writeTail(): Promise<unknown> {
    return this.#lastWrite === undefined ? SETTLED : this.#lastWrite.then(noop, noop);
  }

  /** Counts a payment's durable write until `writeSettled`; the store resolves a chain's writes in order. */
  writeIssued(write: Promise<unknown>): void {
    this.#pendingWrites += 1;
    this.#lastWrite = write;
  }

  writeSettled(): void {
    this.#pendingWrites -= 1;
    if (this.#pendingWrites === 0) this.#lastWrite = undefined;
  }

  /**
   * A payment write of this copy failed (not a conflict: an error, so its commit's fate is unknown). Payments
   * advanced on top of it in memory were checked against a point the store may never hold: a conflict of theirs is
   * a failure too, never a new check that would charge them the failed payment's units as well.
   */
  writeFailed = false;

  /** No payment write in flight. */
  get writesSettled(): boolean {
    return this.#pendingWrites === 0;
  }

  /**
   * Waits until no payment write of this copy is in flight, for at most `waits` of them (a chain paid on without a
   * pause may never settle): then what the copy says of its last index is durable. False when it did not settle, or
   * a write failed (the copy is broken and must be read again).
   */
  async settle(waits: number): Promise<boolean> {
    for (let i = 0; i < waits && !this.writesSettled; i++) await this.writeTail;
    return this.writesSettled && !this.broken;
  }

  /** Nothing of this process is under way on the chain (no write in flight, no release): it may leave memory. */
  get idle(): boolean {
    if (this.#pendingWrites !== 0) return false;
    for (const e of this.epochs.values()) if (e.releasing) return false;
    return true;
  }

  /** This process may take a payment on the chain right now. */
  get accepting(): boolean {
    const c = this.current;
    if (!c || this.broken || c.stopping) return false;
    const r = c.record;
    return r.start !== null && r.release === null && !r.superseded && r.leaseExpiresAtMs > this.#now();
  }

  get knownPoints(): readonly KnownPoint[] {
    if (!this.#known) {
      const points: KnownPoint[] = [{ index: 0, payword: this.anchor }];
      const add = (p: PointRecord | null) => {
        if (p && p.index > 0 && !points.some((q) => q.index === p.index)) {
          points.push({ index: p.index, payword: b64uDecode(p.payword, 32) });
        }
      };
      for (const e of this.epochs.values()) {
        add(e.record.start);
        add(e.record.last);
      }
      this.#known = points;
    }
    return this.#known;
  }

  /** Adds or replaces an epoch; the highest epoch is the current one. An epoch's last point never moves back. */
  putEpoch(record: EpochRecord): EpochState {
    const existing = this.epochs.get(record.epoch);
    const before = existing?.record.last;
    invariant(
      !before || !record.last || record.last.index >= before.index,
      this.record.chainId,
      `epoch ${record.epoch} would move back from ${before?.index} to ${record.last?.index}`,
    );
    const state: EpochState = existing ?? { record, stopping: false };
    state.record = record;
    this.epochs.set(record.epoch, state);
    if (!this.current || record.epoch >= this.current.record.epoch) this.current = state;
    this.refresh();
    return state;
  }

  /**
   * Ends an epoch at its stored release (§6): the release is signed at the durable last index, which is never below
   * what this copy advanced to while its writes all succeeded.
   */
  settleRelease(epoch: EpochState, release: NonNullable<EpochRecord['release']>): void {
    const before = epoch.record.last;
    invariant(
      this.broken || !before || release.index >= before.index,
      this.record.chainId,
      `epoch ${epoch.record.epoch} released at ${release.index}, below its last index ${before?.index}`,
    );
    epoch.record.release = release;
    epoch.record.last = { index: release.index, payword: release.payword };
    this.refresh();
  }

  /** Recomputes the last known point after an epoch changed. */
  refresh(): void {
    this.#known = undefined;
    const last = this.current?.record.last;
    if (last) {
      this.#setLast(last.index, last.payword, this.current?.record.lastResource ?? null);
      return;
    }
    // The current epoch's start is not known yet: the best point is the highest of earlier epochs.
    let best: PointRecord = { index: 0, payword: this.record.touchstone.anchor };
    let resource: string | null = null;
    for (const e of this.epochs.values()) {
      if (e.record.last && e.record.last.index >= best.index) {
        best = e.record.last;
        resource = e.record.lastResource;
      }
    }
    this.#setLast(best.index, best.payword, resource);
  }

  #setLast(index: number, paywordB64: string, resource: string | null): void {
    invariant(
      Number.isSafeInteger(index) && index >= 0 && index <= this.record.length,
      this.record.chainId,
      `last index ${index} outside 0..${this.record.length}`,
    );
    this.lastIndex = index;
    this.lastPaywordB64 = paywordB64;
    this.lastPayword = b64uDecode(paywordB64, 32);
    this.lastResource = resource;
  }

  /**
   * The §4 checks (`checkPayment`) and, for a payable payment, the advance of the current epoch, in one synchronous
   * step: nothing can run between the check and the advance, so no two payments pass the check for one index. The
   * `pay` outcome carries the compare-and-set to make durable: expected last index = the index the check saw.
   */
  checkAndAdvance(presented: PresentedWire, ctx: PaymentContext): ChargeStep {
    const check = checkPayment(this, presented, ctx);
    if (check.kind !== 'pay') return check;
    const epoch = this.current as EpochState;
    const expectedLastIndex = this.lastIndex;
    this.#advance(epoch, presented.index, presented.paywordB64, presented.payword, presented.resource);
    return {
      kind: 'pay',
      units: check.units,
      amountMinor: check.amountMinor,
      write: {
        chainId: this.record.chainId,
        epoch: epoch.record.epoch,
        expectedLastIndex,
        index: presented.index,
        payword: presented.paywordB64,
        resource: presented.resource,
        amountMinor: check.amountMinor,
        atMs: ctx.nowMs,
      },
    };
  }

  /** Moves the current epoch to a new last point; only `checkAndAdvance` calls it, right after the check. */
  #advance(c: EpochState, index: number, paywordB64: string, payword: Uint8Array, resource: string): void {
    const r = c.record;
    const id = this.record.chainId;
    invariant(!this.broken && !c.stopping && r.start !== null && r.release === null, id, 'advance while not accepting');
    invariant((r.last?.index ?? -1) === this.lastIndex, id, `epoch last ${r.last?.index} is not ${this.lastIndex}`);
    invariant(Number.isSafeInteger(index) && index > this.lastIndex, id, `index ${index} not above ${this.lastIndex}`);
    invariant(index <= this.record.length, id, `index ${index} beyond the length ${this.record.length}`);
    r.last = { index, payword: paywordB64 };
    r.lastResource = resource;
    this.lastIndex = index;
    this.lastPaywordB64 = paywordB64;
    this.lastPayword = payword;
    this.lastResource = resource;
    this.noteEntitlement(resource);
    this.#known = undefined;
  }
}
