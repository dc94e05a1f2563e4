import { b64uDecode } from '@netpay/protocol';
import type { ProblemDecision } from './challenge.ts';
import type { ChainView, KnownPoint } from './payment.ts';
import type { ChainRecord, EpochRecord, PointRecord } from './spend-store.ts';

/** One epoch of a chain in memory: the durable record plus what only this process knows. */
export interface EpochState {
  record: EpochRecord;
  /** Set when a release has begun: no more payments on this epoch. */
  stopping: boolean;
  /** The release under way (§6): settles with the problem that stopped it, or undefined once stored. */
  releasing?: Promise<ProblemDecision | undefined> | undefined;
}

/**
 * A chain as this process holds it: the cached touchstone facts, every epoch it knows, entitlements and the tail
 * of its durable writes. The payment fast path reads and advances it synchronously (check and advance are one
 * step of the event loop, so two payments on a chain can never both pass the check for the same index); the
 * spend store stays the durable truth, and a failed write throws the whole object away (`broken`).
 */
export class ChainState implements ChainView {
  readonly record: ChainRecord;
  readonly chainId: Uint8Array;
  readonly anchor: Uint8Array;
  readonly epochs = new Map<number, EpochState>();
  current: EpochState | undefined;
  readonly entitlements: Set<string>;
  /** Settles when every payment write issued so far has settled. */
  writeTail: Promise<unknown> = Promise.resolve();
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
    this.entitlements = new Set(entitlements);
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

  entitled(resource: string): boolean {
    return this.entitlements.has(resource);
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

  /** Adds or replaces an epoch; the highest epoch is the current one. */
  putEpoch(record: EpochRecord): EpochState {
    const existing = this.epochs.get(record.epoch);
    const state: EpochState = existing ?? { record, stopping: false };
    state.record = record;
    this.epochs.set(record.epoch, state);
    if (!this.current || record.epoch >= this.current.record.epoch) this.current = state;
    this.refresh();
    return state;
  }

  /** Recomputes the last known point after an epoch changed. */
  refresh(): void {
    this.#known = undefined;
    const last = this.current?.record.last;
    if (last) {
      this.lastIndex = last.index;
      this.lastPaywordB64 = last.payword;
      this.lastPayword = b64uDecode(last.payword, 32);
      this.lastResource = this.current?.record.lastResource ?? null;
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
    this.lastIndex = best.index;
    this.lastPaywordB64 = best.payword;
    this.lastPayword = b64uDecode(best.payword, 32);
    this.lastResource = resource;
  }

  /** Moves the current epoch to a new last point (the payment is checked; its write is in flight). */
  advance(index: number, paywordB64: string, payword: Uint8Array, resource: string): void {
    const c = this.current as EpochState;
    c.record.last = { index, payword: paywordB64 };
    c.record.lastResource = resource;
    this.lastIndex = index;
    this.lastPaywordB64 = paywordB64;
    this.lastPayword = payword;
    this.lastResource = resource;
    this.entitlements.add(resource);
    this.#known = undefined;
  }
}
