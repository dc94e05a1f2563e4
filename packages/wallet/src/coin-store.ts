import type { Touchstone } from '@netpay/protocol';

/** Local status of a coin; `refunding` means a refund was sent and its outcome is not known yet. */
export type StoredCoinStatus = 'active' | 'exhausted' | 'expired' | 'refunding' | 'refunded';

/**
 * A coin as the wallet keeps it. Only the seed, chainId and length are needed to derive every payword; the
 * chain itself is recomputed on first use and cached in memory, never stored.
 */
export interface StoredCoin {
  chainId: string;
  /** w_n, base64url. Never leaves the wallet. */
  seed: string;
  length: number;
  unitMinor: number;
  currency: string;
  /** The broker's base URL, from the touchstone. */
  broker: string;
  touchstone: Touchstone;
  /** The highest index revealed to anyone (or learnt from a vendor): the next payment starts above it. */
  spentIndex: number;
  status: StoredCoinStatus;
  /** The vendor last paid with this coin, preferred for the next payment there (saves a move). */
  lastRealm?: string;
  purchasedAt: string;
}

/** A purchase whose request was prepared (and maybe sent) but whose answer has not been stored. */
export interface PendingPurchase {
  idempotencyKey: string;
  broker: string;
  chainId: string;
  seed: string;
  amountMinor: number;
  unitMinor: number;
  createdAt: string;
}

export interface PurchaseEntry {
  id: number;
  kind: 'purchase';
  at: string;
  chainId: string;
  amountMinor: number;
  currency: string;
}

/** `pending`: recorded before sending; `paid`: the vendor served it; `refused`: the vendor charged nothing;
 * `unknown`: no answer or an unexpected one. */
export type PaymentStatus = 'pending' | 'paid' | 'refused' | 'unknown';

export interface PaymentEntry {
  id: number;
  kind: 'payment';
  at: string;
  realm: string;
  url: string;
  amountMinor: number;
  currency: string;
  chainId: string;
  index: number;
  status: PaymentStatus;
  /** The problem code of a refused payment. */
  code?: string;
}

export interface RefundEntry {
  id: number;
  kind: 'refund';
  at: string;
  chainId: string;
  amountMinor: number;
  currency: string;
  releasedIndex: number;
}

export type HistoryEntry = PurchaseEntry | PaymentEntry | RefundEntry;

/**
 * What a served payment bought: the point of the chain (index and payword) the vendor accepted for a URL. A later
 * GET of that URL presents this point first, and the vendor serves it free (PROTOCOL §4: a retry of the last
 * payment for the resource, or the chain's entitlement), so the wallet never pays twice for what it owns.
 */
export interface Entitlement {
  /** The URL as the wallet was asked for it, without its fragment (the key). */
  url: string;
  /** Where the payment was sent (the URL after redirects), where the point is presented again. */
  paidUrl: string;
  realm: string;
  chainId: string;
  index: number;
  /** w_index, base64url: already revealed to the vendor, so presenting it again reveals nothing new. */
  payword: string;
  amountMinor: number;
  currency: string;
  boughtAt: string;
}

/** Everything a wallet persists. Plain JSON, so any store can keep it. */
export interface WalletState {
  version: 1;
  brokerUrl?: string;
  email?: string;
  /** The broker session token (a bearer credential: stores must keep it private). */
  token?: string;
  coins: StoredCoin[];
  history: HistoryEntry[];
  nextEntryId: number;
  pendingPurchase?: PendingPurchase;
  /** Per URL, the point that bought it (absent in files written before entitlements were kept). */
  entitlements?: Entitlement[];
}

/**
 * The wallet's storage port: the whole state is loaded and saved as one value, so each save is atomic in every
 * adapter (a file rename, one IndexedDB transaction). The wallet saves before every payment it sends.
 *
 * @example
 * class MyStore implements CoinStore {
 *   async load() { return JSON.parse(localStorage.getItem('w') ?? 'null') ?? undefined; }
 *   async save(state: WalletState) { localStorage.setItem('w', JSON.stringify(state)); }
 * }
 */
export interface CoinStore {
  /** The saved state, or undefined when nothing was saved yet. */
  load(): Promise<WalletState | undefined>;
  /** Replaces the saved state durably; resolves only once it is stored. */
  save(state: WalletState): Promise<void>;
}

/** A fresh, empty wallet state. */
export function emptyState(): WalletState {
  return { version: 1, coins: [], history: [], nextEntryId: 1 };
}

/**
 * Checks that a loaded value has the shape of a wallet state (version and arrays); the wallet trusts its own store
 * beyond that.
 */
export function isWalletState(value: unknown): value is WalletState {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    v.version === 1 &&
    Array.isArray(v.coins) &&
    Array.isArray(v.history) &&
    typeof v.nextEntryId === 'number' &&
    (v.entitlements === undefined || Array.isArray(v.entitlements))
  );
}

/**
 * A store that keeps the state in memory (tests, short-lived scripts). Copies on load and save, so the wallet never
 * shares objects with it.
 *
 * @example
 * const wallet = createWallet({ brokerUrl: 'http://127.0.0.1:4000', store: new MemoryCoinStore() });
 */
export class MemoryCoinStore implements CoinStore {
  #state: WalletState | undefined;

  constructor(initial?: WalletState) {
    this.#state = initial === undefined ? undefined : structuredClone(initial);
  }

  async load(): Promise<WalletState | undefined> {
    return this.#state === undefined ? undefined : structuredClone(this.#state);
  }

  async save(state: WalletState): Promise<void> {
    this.#state = structuredClone(state);
  }
}
