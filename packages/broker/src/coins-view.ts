import type { CoinList, CoinStatus, CoinSummary, History, HistoryEvent } from '@netpay/protocol';
import { type ChainRow, type ChainState, highestKnownIndex } from './chain-state.ts';
import type { Queryable } from './schema.ts';

async function stateWithoutLock(db: Queryable, chain: ChainRow): Promise<ChainState> {
  const epochs = await db.selectFrom('epochs').selectAll().where('chain_id', '=', chain.chain_id).execute();
  return { chain, epochs: new Map(epochs.map((e) => [e.epoch, e])) };
}

/** The status a customer sees for a chain. */
export function coinStatus(chain: ChainRow, spentIndex: number, now: Date): CoinStatus {
  if (chain.status !== 'active') return 'refunded';
  if (spentIndex >= chain.length) return 'exhausted';
  if (now.getTime() >= Date.parse(chain.expires_at)) return 'expired';
  return 'active';
}

/** §7 `GET {api}/coins`: the customer's chains as the broker knows them, newest first. */
export async function listCoins(db: Queryable, customerId: string, now: Date): Promise<CoinList> {
  // Connection chains carry the NetPay balance (balance.ts), not coins: a wallet never sees them.
  const chains = await db
    .selectFrom('chains')
    .selectAll()
    .where('customer_id', '=', customerId)
    .where('connection_id', 'is', null)
    .orderBy('issued_at', 'desc')
    .orderBy('chain_id')
    .execute();
  const coins: CoinSummary[] = [];
  for (const chain of chains) {
    const state = await stateWithoutLock(db, chain);
    const spentIndex = Math.max(highestKnownIndex(state), chain.status === 'active' ? 0 : (chain.refund_index ?? 0));
    const current = state.epochs.get(chain.current_epoch);
    const holder = current && current.vendor_id !== 'broker' ? current.vendor_id : null;
    const status = coinStatus(chain, spentIndex, now);
    coins.push({
      chainId: chain.chain_id,
      value: chain.length * chain.unit,
      unit: chain.unit,
      length: chain.length,
      spentIndex,
      holder,
      status,
      issuedAt: chain.issued_at,
      expiresAt: chain.expires_at,
      remaining: status === 'refunded' || status === 'expired' ? 0 : (chain.length - spentIndex) * chain.unit,
    });
  }
  return { coins };
}

/** §7 `GET {api}/history`: purchases, spends by vendor as the broker learns them, refunds; oldest first. */
export async function customerHistory(db: Queryable, customerId: string): Promise<History> {
  const chains = await db
    .selectFrom('chains')
    .selectAll()
    .where('customer_id', '=', customerId)
    .where('connection_id', 'is', null)
    .execute();
  const events: HistoryEvent[] = [];
  for (const chain of chains) {
    events.push({ kind: 'purchase', at: chain.issued_at, chainId: chain.chain_id, amount: chain.amount });
    const ranges = await db
      .selectFrom('redeemed_ranges')
      .selectAll()
      .where('chain_id', '=', chain.chain_id)
      .orderBy('from_index')
      .execute();
    for (const r of ranges) {
      const amount = r.gross - r.taken_back_gross;
      if (amount <= 0) continue;
      events.push({ kind: 'spend', at: r.created_at, chainId: chain.chain_id, amount, vendorId: r.vendor_id });
    }
    if (chain.status === 'refunded' && chain.refunded_at) {
      events.push({ kind: 'refund', at: chain.refunded_at, chainId: chain.chain_id, amount: chain.refunded_amount });
    }
  }
  const order = { purchase: 0, spend: 1, refund: 2 } as const;
  events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : order[a.kind] - order[b.kind]));
  return { events };
}
