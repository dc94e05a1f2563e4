/**
 * Throughput load (bench-http-client.ts) on one route, from the load process: free requests, NetPay payments (every request
 * the next payword of its connection's own chain) or signed payments taken in turn from a pool made ahead.
 */
import { formatAuthorization, type PaywordChain } from '@netpay/protocol';
import { type BoughtChain, chainOf } from './bench-chains.ts';
import { type LoadRun, loadHttp } from './bench-http-client.ts';

/** A coin the load pays with: each connection takes one and pays the next payword per request. */
export interface LoadChain extends BoughtChain {
  /** The last index already paid; the load starts at the one after. */
  startIndex: number;
}

export interface HttpPlan {
  kind: 'http';
  url: string;
  path: string;
  connections: number;
  durationSec: number;
  /** NetPay payments: the coins to pay with. */
  chains?: LoadChain[];
  /** Signed payments: each request carries the next value of the pool in header `name`. */
  headerPool?: { name: string; values: string[] };
}

export interface HttpOutcome {
  result: LoadRun;
  /** The last index sent on each chain, so the next round carries on where this one stopped. */
  lastSent: Record<string, number>;
}

/** A connection's coin: the chain, its id as sent, and the last index it paid. */
type Payer = { chain: PaywordChain; chainId: string; index: number };

/**
 * Loads the route for the plan's duration.
 *
 * @example
 * const { result } = await runHttpLoad({ kind: 'http', url, path: '/api/articles/bench-free', connections: 10, durationSec: 5 });
 */
export async function runHttpLoad(plan: HttpPlan): Promise<HttpOutcome> {
  const url = new URL(plan.url);
  // Every request carries the same head; a paid or signed one adds its one header.
  const head = `GET ${plan.path} HTTP/1.1\r\nhost: ${url.host}\r\naccept: application/json\r\n`;
  const lastSent = new Map<string, number>();
  const pool = (plan.chains ?? []).map((c) => ({ chain: chainOf(c), chainId: c.chainId, index: c.startIndex }));
  const payers: Array<Payer | undefined> = [];
  const paid = (connection: number): string => {
    let payer = payers[connection];
    // A connection whose chain runs out takes the next unused one.
    if (!payer || payer.index >= payer.chain.length) {
      // The next coin with paywords left: one spent to its end in an earlier round is still in the pool.
      do payer = pool.shift();
      while (payer && payer.index >= payer.chain.length);
      if (!payer) throw new Error('the benchmark ran out of coins: raise --chain-length');
      payers[connection] = payer;
    }
    payer.index += 1;
    lastSent.set(payer.chainId, payer.index);
    const authorization = formatAuthorization({
      chain: payer.chainId,
      index: payer.index,
      payword: payer.chain.b64(payer.index),
    });
    return `${head}authorization: ${authorization}\r\n\r\n`;
  };
  let next = 0;
  const signedPool = plan.headerPool;
  const signed = (): string => {
    const pool = signedPool as { name: string; values: string[] };
    return `${head}${pool.name}: ${pool.values[next++ % pool.values.length]}\r\n\r\n`;
  };
  const free = `${head}\r\n`;
  const result = await loadHttp({
    host: url.hostname,
    port: Number(url.port),
    connections: plan.connections,
    durationSec: plan.durationSec,
    request: plan.chains ? paid : signedPool ? signed : () => free,
  });
  return { result, lastSent: Object.fromEntries(lastSent) };
}
