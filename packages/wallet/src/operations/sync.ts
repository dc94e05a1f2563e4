import type { CoinList, History } from '@netpay/protocol';
import { type CoinView, viewOf } from '../coin-view.ts';
import type { WalletContext } from '../wallet-state.ts';
import { type WalletResult, failed, ok } from '../wallet-result.ts';

/** The broker's view of the customer's coins (`GET {api}/coins`). */
export async function brokerCoins(ctx: WalletContext): Promise<WalletResult<CoinList>> {
  const session = await ctx.session();
  if (!session.ok) return failed(session);
  return ctx.client(session.value.broker).coins(session.value.token);
}

/** The broker's view of the customer's history (`GET {api}/history`). */
export async function brokerHistory(ctx: WalletContext): Promise<WalletResult<History>> {
  const session = await ctx.session();
  if (!session.ok) return failed(session);
  return ctx.client(session.value.broker).history(session.value.token);
}

/**
 * Merges the broker's view into the local coins: a higher spent index the broker has learnt (spends it saw, e.g.
 * from another copy of this wallet) and final statuses. Never lowers a local spentIndex.
 */
export async function sync(ctx: WalletContext): Promise<WalletResult<CoinView[]>> {
  const remote = await brokerCoins(ctx);
  if (!remote.ok) return failed(remote);
  const byId = new Map(remote.value.coins.map((c) => [c.chainId, c]));
  const nowMs = ctx.clock.now().getTime();
  const views = await ctx.update((state) => {
    for (const coin of state.coins) {
      const r = byId.get(coin.chainId);
      if (!r) continue;
      coin.spentIndex = Math.max(coin.spentIndex, Math.min(r.spentIndex, coin.length));
      if (r.status !== 'active' && coin.status !== 'refunded') coin.status = r.status;
    }
    return state.coins.map((c) => viewOf(c, nowMs));
  });
  return ok(views);
}
