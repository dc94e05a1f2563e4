/**
 * A reader's first payment at a vendor, timed from the load process: the vendor has never seen the chain, so
 * the request includes its claim at the broker (with the reader's payword as proof) before the payment is
 * checked and stored. Each chain is paid once.
 */
import { formatAuthorization } from '@netpay/protocol';
import { type BoughtChain, chainOf } from './bench-chains.ts';
import { concurrently } from './bench-concurrently.ts';

export interface FirstPaymentPlan {
  kind: 'first-payment';
  /** The paid route, e.g. `http://127.0.0.1:5001/api/articles/bench-paid`. */
  url: string;
  chains: BoughtChain[];
  concurrency: number;
}

export interface FirstPaymentOutcome {
  /** Each request's time to the whole answer, in milliseconds, in the order started. */
  latenciesMs: number[];
  seconds: number;
  /** Answers other than 200. */
  failures: number;
}

/**
 * Pays index 1 of every chain, `concurrency` at a time.
 *
 * @example
 * const { latenciesMs } = await firstPayments({ kind: 'first-payment', url, chains, concurrency: 1 });
 */
export async function firstPayments(plan: FirstPaymentPlan): Promise<FirstPaymentOutcome> {
  // Headers are made before the clock starts (a chain's paywords are hashed when it is rebuilt).
  const headers = plan.chains.map((c) => {
    return formatAuthorization({ chain: c.chainId, index: 1, payword: chainOf(c).b64(1) });
  });
  let failures = 0;
  const start = performance.now();
  const latenciesMs = await concurrently(headers, plan.concurrency, async (authorization) => {
    const sent = performance.now();
    const res = await fetch(plan.url, { headers: { accept: 'application/json', authorization } });
    await res.arrayBuffer();
    if (res.status !== 200) failures++;
    return performance.now() - sent;
  });
  return { latenciesMs, seconds: (performance.now() - start) / 1000, failures };
}
