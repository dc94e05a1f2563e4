import type { StoredCoin, StoredCoinStatus } from './coin-store.ts';

/** A coin as the wallet shows it (no seed). */
export interface CoinView {
  chainId: string;
  broker: string;
  currency: string;
  unitMinor: number;
  length: number;
  spentIndex: number;
  valueMinor: number;
  remainingMinor: number;
  status: StoredCoinStatus;
  expiresAt: string;
  purchasedAt: string;
  lastRealm?: string;
}

/** The view of a stored coin at `nowMs`: an active coin past its end or its expiry shows as exhausted or expired. */
export function viewOf(coin: StoredCoin, nowMs: number): CoinView {
  let status = coin.status;
  if (status === 'active' && coin.spentIndex >= coin.length) status = 'exhausted';
  if (status === 'active' && Date.parse(coin.touchstone.expiresAt) <= nowMs) status = 'expired';
  const view: CoinView = {
    chainId: coin.chainId,
    broker: coin.broker,
    currency: coin.currency,
    unitMinor: coin.unitMinor,
    length: coin.length,
    spentIndex: coin.spentIndex,
    valueMinor: coin.length * coin.unitMinor,
    remainingMinor: status === 'active' ? (coin.length - coin.spentIndex) * coin.unitMinor : 0,
    status,
    expiresAt: coin.touchstone.expiresAt,
    purchasedAt: coin.purchasedAt,
  };
  if (coin.lastRealm !== undefined) view.lastRealm = coin.lastRealm;
  return view;
}
