import type { WalletContext } from '../wallet-state.ts';
import { type WalletResult, fail, failed, ok } from '../wallet-result.ts';

/** What a refund paid back: `refundedMinor` in `currency`, for the chain's unspent part above `releasedIndex`. */
export interface RefundOutcome {
  chainId: string;
  refundedMinor: number;
  currency: string;
  releasedIndex: number;
}

/**
 * Asks the broker to refund a coin's unspent remainder (`POST {api}/coins/{chainId}/refund`). The coin is taken
 * out of use before the request is sent; a definite refusal (4xx) gives it its status back, while an unanswered
 * request leaves it `refunding` (it may have been refunded).
 */
export async function refund(ctx: WalletContext, chainId: string): Promise<WalletResult<RefundOutcome>> {
  const session = await ctx.session();
  if (!session.ok) return failed(session);
  const { broker, token } = session.value;
  const before = await ctx.update((state) => {
    const coin = state.coins.find((c) => c.chainId === chainId);
    if (!coin) return undefined;
    const status = coin.status;
    if (coin.status !== 'refunded') coin.status = 'refunding';
    return status;
  });
  const client = ctx.client(broker);
  const answered = await client.refund(token, chainId);
  if (!answered.ok) {
    const status = answered.error.status;
    if (before !== undefined && status !== undefined && status >= 400 && status < 500) {
      await ctx.update((state) => {
        const coin = state.coins.find((c) => c.chainId === chainId);
        if (coin && coin.status === 'refunding') coin.status = before;
      });
    }
    return failed(answered);
  }
  const res = answered.value;
  if (res.chainId !== chainId) return fail('invalid_response', 'the broker answered the refund for another chain');
  // A coin this wallet does not hold (bought by another copy) is in the broker's currency.
  const discovery = await client.discovery();
  const currency = await ctx.update((state) => {
    const coin = state.coins.find((c) => c.chainId === chainId);
    if (coin) {
      coin.status = 'refunded';
      coin.spentIndex = Math.max(coin.spentIndex, Math.min(res.releasedIndex, coin.length));
    }
    const currency = coin?.currency ?? (discovery.ok ? discovery.value.currency : '');
    ctx.entry(state, {
      kind: 'refund',
      at: ctx.nowText(),
      chainId,
      amountMinor: res.refunded,
      currency,
      releasedIndex: res.releasedIndex,
    });
    return currency;
  });
  return ok({ chainId, refundedMinor: res.refunded, currency, releasedIndex: res.releasedIndex });
}
