/**
 * Throughput load (autocannon) on one route, from the load process: free requests, NetPay payments (every request
 * the next payword of its connection's own chain) or signed payments taken in turn from a pool made ahead.
 */
import { formatAuthorization, type PaywordChain } from '@netpay/protocol';
import autocannon, { type RequestParams, type Result } from 'autocannon';
import { type BoughtChain, chainOf } from './bench-chains.ts';

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
  result: Result;
  /** The last index sent on each chain, so the next round carries on where this one stopped. */
  lastSent: Record<string, number>;
}

type Payer = { chain?: PaywordChain; index?: number };

/**
 * Each autocannon connection deep-copies `requests`; the `payer` object survives its shallow per-request copy,
 * so it is the connection's own state. A connection whose chain runs out takes the next unused one.
 */
function paidRequest(path: string, pool: Array<{ chain: PaywordChain; index: number }>, lastSent: Map<string, number>) {
  return {
    method: 'GET' as const,
    path,
    payer: {} as Payer,
    setupRequest(req: RequestParams): RequestParams {
      const payer = (req as RequestParams & { payer: Payer }).payer;
      if (!payer.chain || (payer.index ?? 0) >= payer.chain.length) {
        const next = pool.shift();
        if (!next) throw new Error('the benchmark ran out of coins: raise --chain-length');
        payer.chain = next.chain;
        payer.index = next.index;
      }
      payer.index = (payer.index ?? 0) + 1;
      lastSent.set(payer.chain.chainIdB64, payer.index);
      const authorization = formatAuthorization({
        chain: payer.chain.chainIdB64,
        index: payer.index,
        payword: payer.chain.b64(payer.index),
      });
      return { ...req, headers: { ...(req.headers ?? {}), accept: 'application/json', authorization } };
    },
  };
}

function pooledRequest(path: string, pool: { name: string; values: string[] }) {
  let next = 0;
  return {
    method: 'GET' as const,
    path,
    setupRequest(req: RequestParams): RequestParams {
      const value = pool.values[next++ % pool.values.length] as string;
      return { ...req, headers: { ...(req.headers ?? {}), accept: 'application/json', [pool.name]: value } };
    },
  };
}

/**
 * Loads the route for the plan's duration.
 *
 * @example
 * const { result } = await runHttpLoad({ kind: 'http', url, path: '/api/articles/bench-free', connections: 10, durationSec: 5 });
 */
export async function runHttpLoad(plan: HttpPlan): Promise<HttpOutcome> {
  const lastSent = new Map<string, number>();
  const pool = (plan.chains ?? []).map((c) => ({ chain: chainOf(c), index: c.startIndex }));
  const requests = plan.chains
    ? [paidRequest(plan.path, pool, lastSent)]
    : plan.headerPool
      ? [pooledRequest(plan.path, plan.headerPool)]
      : [{ method: 'GET' as const, path: plan.path, headers: { accept: 'application/json' } }];
  const result = await autocannon({
    url: plan.url,
    connections: plan.connections,
    duration: plan.durationSec,
    requests,
  });
  return { result, lastSent: Object.fromEntries(lastSent) };
}
