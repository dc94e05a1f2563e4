import { ChainState } from './chain-state.ts';
import type { SpendStore } from './spend-store.ts';

/** How many chains a vendor keeps in memory by default (about 3 KB of heap each, see docs/ARCHITECTURE.md). */
export const DEFAULT_MAX_CHAINS_IN_MEMORY = 50_000;

/** Chains looked at, beyond the bound, for one that may leave memory each time a chain comes in. */
const EVICTION_SCAN = 32;

/** What the cache reads: whole chains, and one entitlement of a chain. */
type ChainSource = Pick<SpendStore, 'loadChain' | 'entitlement'>;

export interface ChainCacheOptions {
  /** The most chains held in memory (at least 1). */
  maxChains: number;
  /** True while the chain is mid-claim (or otherwise held by a task): it stays in memory. */
  busy(chainId: string): boolean;
}

/**
 * The chains this process holds in memory, in front of the spend store (the durable truth), least recently used
 * first. Beyond `maxChains` the least recently used chain with no write in flight, no release under way and no
 * claim leaves memory; its next reader loads it from the store again, which is correct because every accepted
 * payment of it is durable by then. A copy found wrong (a failed write, another process moved the chain) is
 * discarded and read again; two readers of a chain not in memory share one load.
 */
export class ChainCache {
  readonly #store: ChainSource;
  readonly #now: () => number;
  readonly #max: number;
  readonly #busy: (chainId: string) => boolean;
  /** In least-recently-used order: a use moves a chain to the end. */
  readonly #chains = new Map<string, ChainState>();
  readonly #loading = new Map<string, Promise<ChainState | undefined>>();
  /**
   * Copies thrown away with writes still in flight, until those settle. A load waits for them: read before, the
   * store holds their commits but not yet their fate (an fsync may still fail, and what it committed would then be
   * served from the new copy as paid).
   */
  readonly #settling = new Map<string, ChainState>();

  constructor(store: ChainSource, now: () => number, options: ChainCacheOptions) {
    if (!Number.isSafeInteger(options.maxChains) || options.maxChains < 1) {
      throw new RangeError('maxChainsInMemory must be a positive integer');
    }
    this.#store = store;
    this.#now = now;
    this.#max = options.maxChains;
    this.#busy = options.busy;
  }

  /** Chains in memory now, and the most it holds. */
  get size(): number {
    return this.#chains.size;
  }
  get max(): number {
    return this.#max;
  }

  /** The chain in memory, if a good copy is there (no I/O); counts as a use. */
  peek(chainId: string): ChainState | undefined {
    const chains = this.#chains;
    const cached = chains.get(chainId);
    if (cached === undefined || cached.broken) return undefined;
    chains.delete(chainId);
    chains.set(chainId, cached);
    return cached;
  }

  /** The chain in memory, or as the store has it (undefined when the store does not know it). */
  get(chainId: string): Promise<ChainState | undefined> {
    const cached = this.peek(chainId);
    if (cached) return Promise.resolve(cached);
    let loading = this.#loading.get(chainId);
    if (!loading) {
      loading = this.#load(chainId, this.#chains.get(chainId)).finally(() => this.#loading.delete(chainId));
      this.#loading.set(chainId, loading);
    }
    return loading;
  }

  async #load(chainId: string, discarded: ChainState | undefined): Promise<ChainState | undefined> {
    // Let writes of a discarded copy settle before reading, so the store is the whole truth.
    if (discarded) await discarded.writeTail;
    const settling = this.#settling.get(chainId);
    if (settling) await settling.writeTail;
    const loaded = await this.#store.loadChain(chainId);
    if (!loaded) return undefined;
    const state = new ChainState(loaded.chain, loaded.epochs, loaded.entitlements, this.#now);
    this.put(chainId, state);
    return state;
  }

  /** Holds a chain (loaded, or made here by a first claim) as the copy in memory. */
  put(chainId: string, chain: ChainState): void {
    const chains = this.#chains;
    chains.delete(chainId);
    chains.set(chainId, chain);
    if (chains.size > this.#max) this.#evict();
  }

  /**
   * Lets the least recently used chains go until the bound holds, skipping (and counting as used) those still
   * busy. A bounded scan: when everything old is busy the cache stays over its bound until the next arrival.
   */
  #evict(): void {
    const chains = this.#chains;
    let scanned = 0;
    for (const [chainId, chain] of chains) {
      if (chains.size <= this.#max || scanned++ >= EVICTION_SCAN) return;
      chains.delete(chainId);
      if (chain.idle && !this.#busy(chainId)) {
        // Whoever still holds this copy sees it broken and reads the chain again (from the store, the truth).
        chain.broken = true;
      } else {
        chains.set(chainId, chain);
      }
    }
  }

  /** Throws a copy away (a write failed or conflicted): its next reader loads the store's. */
  discard(chain: ChainState, chainId: string): void {
    chain.broken = true;
    if (this.#chains.get(chainId) === chain) this.#chains.delete(chainId);
    if (!chain.writesSettled) {
      this.#settling.set(chainId, chain);
      void chain.writeTail.then(() => {
        if (this.#settling.get(chainId) === chain) this.#settling.delete(chainId);
      });
    }
  }

  /** The chain as the store has it now (after this process's writes in flight settle). */
  reload(chain: ChainState, chainId: string): Promise<ChainState | undefined> {
    this.discard(chain, chainId);
    return this.get(chainId);
  }

  /**
   * Whether the chain bought the resource here: memory first, then, when memory holds only its recent
   * entitlements, the store. A hit in the store is remembered as recent.
   */
  async entitled(chain: ChainState, resource: string): Promise<boolean> {
    if (chain.entitled(resource)) return true;
    if (chain.entitlementsComplete) return false;
    const found = (await this.#store.entitlement(chain.record.chainId, resource)) !== undefined;
    if (found) chain.noteEntitlement(resource);
    return found;
  }

  /** Every chain in memory (to let their writes settle on close). */
  values(): IterableIterator<ChainState> {
    return this.#chains.values();
  }
}
