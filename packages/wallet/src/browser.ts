/**
 * The browser entry of @netpay/wallet: everything that runs without Node (bundle it with `buildBrowserBundle`).
 */
export { type CoinDemand, normalizeBrokerUrl, selectCoin } from './coin-selection.ts';
export {
  type CoinStore,
  type HistoryEntry,
  MemoryCoinStore,
  type PaymentEntry,
  type PaymentStatus,
  type PendingPurchase,
  type PurchaseEntry,
  type RefundEntry,
  type StoredCoin,
  type StoredCoinStatus,
  type WalletState,
  emptyState,
} from './coin-store.ts';
export { IndexedDbCoinStore } from './indexeddb-store.ts';
export {
  type BuyOptions,
  type Card,
  type CoinView,
  type PaidFetchResult,
  type PayOptions,
  type PaymentAttempt,
  Wallet,
  type WalletClock,
  type WalletOptions,
  createWallet,
} from './wallet.ts';
export { WALLET_ERROR_CODES, WalletError, type WalletErrorCode } from './wallet-error.ts';
