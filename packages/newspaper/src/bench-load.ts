/**
 * The benchmark's load generator, run as its own process so that it does not share the vendor's event loop:
 * what the vendor serves is then limited by the vendor, as in production. Reads a `LoadPlan` as JSON on stdin,
 * writes autocannon's result as JSON on stdout.
 */
import { formatAuthorization, PaywordChain } from '@netpay/protocol';
import autocannon, { type RequestParams } from 'autocannon';

export interface LoadPlan {
  url: string;
  path: string;
  connections: number;
  durationSec: number;
  /** Coins to pay with (paid run only): each connection takes one and pays the next payword per request. */
  chains?: Array<{ chainId: string; seed: string; length: number; startIndex: number; endIndex?: number }>;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Each autocannon connection deep-copies `requests`; the `payer` object survives its shallow per-request copy,
 * so it is the connection's own state. A connection whose chain runs out takes the next unused one.
 */
function paidRequest(path: string, pool: Array<{ chain: PaywordChain; index: number; end: number }>) {
  return {
    method: 'GET' as const,
    path,
    payer: {} as { chain?: PaywordChain; index?: number; end?: number },
    setupRequest(req: RequestParams): RequestParams {
      const payer = (req as RequestParams & { payer: { chain?: PaywordChain; index?: number; end?: number } }).payer;
      if (!payer.chain || (payer.index ?? 0) >= (payer.end ?? payer.chain.length)) {
        const next = pool.shift();
        if (!next) throw new Error('the benchmark ran out of coins: raise --chain-length');
        payer.chain = next.chain;
        payer.index = next.index;
        payer.end = next.end;
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

/** The last index sent on each chain, so the next round carries on where this one stopped. */
const lastSent = new Map<string, number>();
const plan = JSON.parse(await readStdin()) as LoadPlan;
const pool = (plan.chains ?? []).map((c) => ({
  chain: PaywordChain.fromB64(c.chainId, c.seed, c.length),
  index: c.startIndex,
  end: Math.min(c.endIndex ?? c.length, c.length),
}));
const requests = plan.chains
  ? [paidRequest(plan.path, pool)]
  : [{ method: 'GET' as const, path: plan.path, headers: { accept: 'application/json' } }];
export interface LoadOutput {
  result: unknown;
  lastSent: Record<string, number>;
}

const result = await autocannon({
  url: plan.url,
  connections: plan.connections,
  duration: plan.durationSec,
  requests,
});
const output: LoadOutput = { result, lastSent: Object.fromEntries(lastSent) };
process.stdout.write(JSON.stringify(output));
