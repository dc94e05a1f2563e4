import type { Entitlement, WalletState } from './coin-store.ts';

/** How many bought URLs the wallet remembers (the least recently bought are forgotten first). */
export const MAX_ENTITLEMENTS = 10_000;

/**
 * The key of a URL in the entitlement store: the URL as the WHATWG parser writes it, without its fragment (a
 * fragment never reaches the vendor, so `…/a/1#top` is the same resource as `…/a/1`). Undefined when it is not a
 * URL.
 *
 * @example
 * entitlementKey('http://News.example:80/a/1#top'); // 'http://news.example/a/1'
 */
export function entitlementKey(url: string | URL): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    return undefined;
  }
  parsed.hash = '';
  return parsed.href;
}

/** The point that bought `url`, if the wallet holds one. */
export function findEntitlement(state: WalletState, url: string | URL): Entitlement | undefined {
  const key = entitlementKey(url);
  if (key === undefined) return undefined;
  return state.entitlements?.find((e) => e.url === key);
}

/**
 * Remembers that `entitlement.url` was bought with this point, replacing an older point for the same URL; beyond
 * `MAX_ENTITLEMENTS` the oldest purchases are forgotten (a forgotten one is bought again, never read for free
 * without a point).
 */
export function rememberEntitlement(state: WalletState, entitlement: Entitlement): void {
  const key = entitlementKey(entitlement.url);
  if (key === undefined) return;
  const kept = (state.entitlements ?? []).filter((e) => e.url !== key);
  kept.push({ ...entitlement, url: key });
  if (kept.length > MAX_ENTITLEMENTS) kept.splice(0, kept.length - MAX_ENTITLEMENTS);
  state.entitlements = kept;
}

/**
 * Forgets the entitlement of `url` after the vendor refused it, but only if it is still the point that was
 * presented: a payment made meanwhile (by a concurrent request) keeps its newer point.
 */
export function forgetEntitlement(
  state: WalletState,
  url: string | URL,
  point: { chainId: string; index: number },
): void {
  const key = entitlementKey(url);
  if (key === undefined || !state.entitlements) return;
  state.entitlements = state.entitlements.filter(
    (e) => !(e.url === key && e.chainId === point.chainId && e.index === point.index),
  );
}
