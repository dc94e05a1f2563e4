import { PaywordChain, randomBytes } from '@netpay/protocol';
import { BrokerClient } from './broker-client.ts';
import { normalizeBrokerUrl } from './coin-selection.ts';
import {
  type CoinStore,
  type HistoryEntry,
  type StoredCoin,
  type WalletState,
  emptyState,
  isWalletState,
} from './coin-store.ts';
import { WalletError } from './wallet-error.ts';
import { type WalletResult, fail, ok } from './wallet-result.ts';

/** The wallet's time source (the same shape as service-kit's `Clock`), injected so tests can fix the instant. */
export interface WalletClock {
  now(): Date;
}

export interface WalletOptions {
  /** The broker's base URL (discovery lives at `{brokerUrl}/.well-known/netpay`). Defaults to the one saved at login. */
  brokerUrl?: string;
  store: CoinStore;
  /** Defaults to `globalThis.fetch`. */
  fetch?: typeof fetch;
  clock?: WalletClock;
  /** Random bytes for chain ids, seeds and idempotency keys; defaults to the platform CSPRNG. */
  random?: (n: number) => Uint8Array;
  /** Default per-request price limit of `fetch`. */
  maxPriceMinor?: number;
  /** Default total the wallet may pay through `fetch` in its life (per currency). */
  budgetMinor?: number;
}

/** A history entry before it gets its id. */
export type NewEntry = HistoryEntry extends infer E ? (E extends HistoryEntry ? Omit<E, 'id'> : never) : never;

/** How many entries the local history keeps (oldest dropped first). */
export const MAX_HISTORY_ENTRIES = 10_000;

/**
 * The one state every wallet operation works on, injected into each: the persisted wallet behind its store (loaded
 * and saved whole, one change at a time under one lock), the ports (fetch, clock, random), and what lives only in
 * memory (broker clients, chains derived from seeds, what this wallet object has paid, its default limits).
 * Operations (`operations/*.ts`) take it as their first argument and never call each other.
 */
export class WalletContext {
  readonly store: CoinStore;
  readonly fetch: typeof fetch;
  readonly clock: WalletClock;
  readonly random: (n: number) => Uint8Array;
  /** The broker URL given at construction, which wins over the one saved at login. */
  readonly brokerUrl: string | undefined;
  /** What this wallet object has paid through `fetch`, per currency (every payword revealed counts). */
  readonly spentMinor = new Map<string, number>();
  /** Defaults of `fetch`'s limits. */
  limits: { maxPriceMinor?: number; budgetMinor?: number } = {};
  readonly #clients = new Map<string, BrokerClient>();
  readonly #chains = new Map<string, PaywordChain>();
  #lock: Promise<unknown> = Promise.resolve();

  /** @throws WalletError `invalid_argument` without a store or a fetch (a programming error, not an outcome). */
  constructor(options: Pick<WalletOptions, 'brokerUrl' | 'store' | 'fetch' | 'clock' | 'random'>) {
    if (!options?.store) throw new WalletError('invalid_argument', 'a store is required');
    this.store = options.store;
    if (typeof (options.fetch ?? globalThis.fetch) !== 'function') {
      throw new WalletError('invalid_argument', 'no fetch available');
    }
    // Called through a wrapper so a browser's fetch is never invoked with the wallet as `this`.
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.clock = options.clock ?? { now: () => new Date() };
    this.random = options.random ?? randomBytes;
    this.brokerUrl = options.brokerUrl === undefined ? undefined : normalizeBrokerUrl(options.brokerUrl);
  }

  /**
   * Runs `fn` on a freshly loaded state under the lock and saves the state afterwards unless `fn` threw. Whatever
   * `fn` changes is stored before the returned promise settles (a payment is recorded before its payword is sent).
   */
  update<T>(fn: (state: WalletState) => T | Promise<T>): Promise<T> {
    return this.#locked(async () => {
      const state = await this.#load();
      const result = await fn(state);
      if (state.history.length > MAX_HISTORY_ENTRIES) {
        state.history.splice(0, state.history.length - MAX_HISTORY_ENTRIES);
      }
      await this.store.save(state);
      return result;
    });
  }

  /** Runs `fn` on a freshly loaded state under the lock, saving nothing. */
  read<T>(fn: (state: WalletState) => T): Promise<T> {
    return this.#locked(async () => fn(await this.#load()));
  }

  /** The broker this wallet talks to: the configured one, else the one saved at login. */
  brokerOf(state: WalletState): string | undefined {
    return this.brokerUrl ?? state.brokerUrl;
  }

  /** The broker URL, or `no_broker`. */
  async broker(): Promise<WalletResult<string>> {
    const broker = await this.read((state) => this.brokerOf(state));
    return broker === undefined ? fail('no_broker') : ok(broker);
  }

  /** The broker URL and token of the current session, or `no_broker` / `not_logged_in`. */
  async session(): Promise<WalletResult<{ broker: string; token: string }>> {
    return this.read((state): WalletResult<{ broker: string; token: string }> => {
      const broker = this.brokerOf(state);
      if (broker === undefined) return fail('no_broker');
      if (state.token === undefined || (state.brokerUrl !== undefined && state.brokerUrl !== broker)) {
        return fail('not_logged_in');
      }
      return ok({ broker, token: state.token });
    });
  }

  client(brokerUrl: string): BrokerClient {
    const key = normalizeBrokerUrl(brokerUrl);
    let client = this.#clients.get(key);
    if (!client) {
      client = new BrokerClient(key, this.fetch);
      this.#clients.set(key, client);
    }
    return client;
  }

  /** The coin's chain, derived from its seed once and kept in memory (never stored). */
  chain(coin: Pick<StoredCoin, 'chainId' | 'seed' | 'length'>): PaywordChain {
    let chain = this.#chains.get(coin.chainId);
    if (!chain) {
      chain = PaywordChain.fromB64(coin.chainId, coin.seed, coin.length);
      this.#chains.set(coin.chainId, chain);
    }
    return chain;
  }

  /** Keeps a chain already computed (a purchase makes it to send the anchor). */
  keepChain(chain: PaywordChain, chainId: string): void {
    this.#chains.set(chainId, chain);
  }

  /** Appends an entry to the state's history and returns its id. */
  entry(state: WalletState, entry: NewEntry): number {
    const id = state.nextEntryId++;
    state.history.push({ ...entry, id } as HistoryEntry);
    return id;
  }

  /** Now, as the RFC 3339 text the history uses. */
  nowText(): string {
    return `${this.clock.now().toISOString().slice(0, 19)}Z`;
  }

  #locked<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#lock.then(run, run);
    this.#lock = next.catch(() => {});
    return next;
  }

  async #load(): Promise<WalletState> {
    const loaded = await this.store.load();
    if (loaded === undefined) return emptyState();
    if (!isWalletState(loaded)) throw new WalletError('corrupt_store', 'the store does not hold a version 1 wallet');
    return loaded;
  }
}
