import type { StoredCoin } from './coin-store.ts';

/** Coins expiring sooner than this are not offered to a vendor: its clock may run ahead of ours. */
export const EXPIRY_MARGIN_MS = 10_000;

/** What a vendor asks for, as far as choosing a coin goes. */
export interface CoinDemand {
  realm: string;
  priceMinor: number;
  currency: string;
  broker: string;
}

/** A broker URL in the form used to compare them (no trailing slash). */
export function normalizeBrokerUrl(url: string): string {
  return url.replace(/\/+$/, '');
}

/** Units of `coin` a payment of `priceMinor` takes, or undefined when the price is not a whole number of units. */
export function unitsFor(coin: Pick<StoredCoin, 'unitMinor'>, priceMinor: number): number | undefined {
  if (priceMinor <= 0 || priceMinor % coin.unitMinor !== 0) return undefined;
  return priceMinor / coin.unitMinor;
}

/** Whether a coin can pay this demand now: active, same broker and currency, unexpired, enough units left. */
export function canPay(coin: StoredCoin, demand: CoinDemand, nowMs: number): boolean {
  if (coin.status !== 'active') return false;
  if (coin.currency !== demand.currency) return false;
  if (normalizeBrokerUrl(coin.broker) !== normalizeBrokerUrl(demand.broker)) return false;
  const expiresMs = Date.parse(coin.touchstone.expiresAt);
  if (!(expiresMs - EXPIRY_MARGIN_MS > nowMs)) return false;
  const units = unitsFor(coin, demand.priceMinor);
  return units !== undefined && coin.spentIndex + units <= coin.length;
}

/**
 * Picks the coin to pay with, or undefined. Preference: a coin this vendor already holds (no move between vendors),
 * then the one with the least value left that still covers the price (keeps big coins whole), then the one that
 * expires first. Pure, so it is tested without HTTP.
 *
 * @example
 * const coin = selectCoin(state.coins, { realm: 'daily-planet', priceMinor: 5, currency: 'NZD', broker }, Date.now());
 */
export function selectCoin(
  coins: readonly StoredCoin[],
  demand: CoinDemand,
  nowMs: number,
  exclude: ReadonlySet<string> = new Set(),
): StoredCoin | undefined {
  const remaining = (c: StoredCoin) => (c.length - c.spentIndex) * c.unitMinor;
  const candidates = coins.filter((c) => !exclude.has(c.chainId) && canPay(c, demand, nowMs));
  candidates.sort((a, b) => {
    const aHere = a.lastRealm === demand.realm ? 0 : 1;
    const bHere = b.lastRealm === demand.realm ? 0 : 1;
    if (aHere !== bHere) return aHere - bHere;
    if (remaining(a) !== remaining(b)) return remaining(a) - remaining(b);
    return Date.parse(a.touchstone.expiresAt) - Date.parse(b.touchstone.expiresAt);
  });
  return candidates[0];
}
