import { ChainState } from './chain-state.ts';
import type { SpendStore } from './spend-store.ts';

/**
 * The chains this process holds in memory, in front of the spend store (the durable truth). A copy found wrong (a
 * failed write, another process moved the chain) is discarded and read again; two readers of a chain not in memory
 * share one load.
 */
export class ChainCache {
  readonly #store: Pick<SpendStore, 'loadChain'>;
  readonly #now: () => number;
  readonly #chains = new Map<string, ChainState>();
  readonly #loading = new Map<string, Promise<ChainState | undefined>>();

  constructor(store: Pick<SpendStore, 'loadChain'>, now: () => number) {
    this.#store = store;
    this.#now = now;
  }

  /** The chain in memory, if a good copy is there (no I/O). */
  peek(chainId: string): ChainState | undefined {
    const cached = this.#chains.get(chainId);
    return cached && !cached.broken ? cached : undefined;
  }

  /** The chain in memory, or as the store has it (undefined when the store does not know it). */
  get(chainId: string): Promise<ChainState | undefined> {
    const cached = this.#chains.get(chainId);
    if (cached && !cached.broken) return Promise.resolve(cached);
    let loading = this.#loading.get(chainId);
    if (!loading) {
      loading = this.#load(chainId, cached).finally(() => this.#loading.delete(chainId));
      this.#loading.set(chainId, loading);
    }
    return loading;
  }

  async #load(chainId: string, discarded: ChainState | undefined): Promise<ChainState | undefined> {
    // Let writes of a discarded copy settle before reading, so the store is the whole truth.
    if (discarded) await discarded.writeTail;
    const loaded = await this.#store.loadChain(chainId);
    if (!loaded) return undefined;
    const state = new ChainState(loaded.chain, loaded.epochs, loaded.entitlements, this.#now);
    this.#chains.set(chainId, state);
    return state;
  }

  /** Holds a chain made here (a first claim) as the copy in memory. */
  put(chainId: string, chain: ChainState): void {
    this.#chains.set(chainId, chain);
  }

  /** Throws a copy away (a write failed or conflicted): its next reader loads the store's. */
  discard(chain: ChainState, chainId: string): void {
    chain.broken = true;
    if (this.#chains.get(chainId) === chain) this.#chains.delete(chainId);
  }

  /** The chain as the store has it now (after this process's writes in flight settle). */
  reload(chain: ChainState, chainId: string): Promise<ChainState | undefined> {
    this.discard(chain, chainId);
    return this.get(chainId);
  }

  /** Every chain in memory (to let their writes settle on close). */
  values(): IterableIterator<ChainState> {
    return this.#chains.values();
  }
}
