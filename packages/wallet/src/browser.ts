/**
 * The browser entry of @netpay/wallet: everything that runs without Node (bundle it with `buildBrowserBundle`).
 */
export { type CoinDemand, normalizeBrokerUrl, selectCoin } from './coin-selection.ts';
export {
  type CoinStore,
  type Entitlement,
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
export { moneyText } from './money-text.ts';
export {
  type BuyOptions,
  type Card,
  type CoinView,
  type EntitlementUse,
  type PaidFetchResult,
  type PayOptions,
  type PaymentAttempt,
  type PendingPurchaseView,
  type RefundOutcome,
  type SessionInfo,
  Wallet,
  type WalletClock,
  type WalletOptions,
  type WalletResults,
  createWallet,
} from './wallet.ts';
export { WALLET_ERROR_CODES, WalletError, type WalletErrorCode } from './wallet-error.ts';
export type { WalletResult } from './wallet-result.ts';
