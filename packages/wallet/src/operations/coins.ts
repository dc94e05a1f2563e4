import type { HistoryEntry } from '../coin-store.ts';
import { type CoinView, viewOf } from '../coin-view.ts';
import type { WalletContext } from '../wallet-state.ts';
import { type WalletResult, ok } from '../wallet-result.ts';

/** The wallet's coins, as it knows them locally (no network). */
export async function coins(ctx: WalletContext): Promise<WalletResult<CoinView[]>> {
  const nowMs = ctx.clock.now().getTime();
  return ok(await ctx.read((state) => state.coins.map((c) => viewOf(c, nowMs))));
}

/** Σ of what is left on usable coins, per currency (minor units). */
export async function balance(ctx: WalletContext): Promise<WalletResult<Record<string, number>>> {
  const nowMs = ctx.clock.now().getTime();
  const views = await ctx.read((state) => state.coins.map((c) => viewOf(c, nowMs)));
  const out: Record<string, number> = {};
  for (const c of views) {
    if (c.status === 'active') out[c.currency] = (out[c.currency] ?? 0) + c.remainingMinor;
  }
  return ok(out);
}

/** The local log: purchases, payments (recorded before sending, then marked) and refunds, oldest first. */
export async function history(ctx: WalletContext): Promise<WalletResult<HistoryEntry[]>> {
  return ok(await ctx.read((state) => state.history));
}
