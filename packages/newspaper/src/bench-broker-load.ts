/**
 * The broker's side of the benchmark, driven from the load process: coin purchases by a customer, claims by a
 * vendor with the customer's payword as proof, and redemptions of whole ranges, each at a fixed concurrency and
 * timed from the first request to the last answer.
 */
import { PaywordChain } from '@netpay/protocol';
import { type BoughtChain, chainOf, keepChain } from './bench-chains.ts';
import { concurrently } from './bench-concurrently.ts';

export type { BoughtChain } from './bench-chains.ts';

/** The sandbox bank's always-approved test card. */
const TEST_CARD = { number: '4242424242424242', expiry: '12/39', cvc: '123' };

export interface BuyPlan {
  kind: 'buy';
  /** The broker's API base, `…/api/v1`. */
  api: string;
  customerToken: string;
  count: number;
  /** Units of 1 cent in each coin. */
  length: number;
  concurrency: number;
}

export interface ClaimPlan {
  kind: 'claim';
  api: string;
  vendorApiKey: string;
  /** Claims each chain with its payword 1 as the proof. */
  chains: BoughtChain[];
  concurrency: number;
}

export interface RedeemPlan {
  kind: 'redeem';
  api: string;
  vendorApiKey: string;
  /** Redeems each chain whole (0 → length) in the epoch its claim opened. */
  chains: Array<BoughtChain & { epoch: number }>;
  itemsPerRequest: number;
  concurrency: number;
}

/** How long the requests took, from the first sent to the last answered. */
export interface Timed {
  seconds: number;
}

async function post(url: string, body: unknown, headers: Record<string, string>): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${url} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/**
 * Buys `count` coins made here (the broker sees only their anchors), each paid by card through the bank.
 *
 * @example
 * const { chains, seconds } = await buyChains({ kind: 'buy', api, customerToken, count: 100, length: 1000, concurrency: 8 });
 */
export async function buyChains(plan: BuyPlan): Promise<Timed & { chains: BoughtChain[] }> {
  // The chains are made before the clock starts: their hashing is the client's work, not the broker's.
  const made = Array.from({ length: plan.count }, () => PaywordChain.generate(plan.length));
  for (const chain of made) keepChain(chain);
  const start = performance.now();
  await concurrently(made, plan.concurrency, (chain, i) =>
    post(
      `${plan.api}/coins`,
      {
        amount: plan.length,
        unit: 1,
        chainId: chain.chainIdB64,
        anchor: chain.anchorB64,
        payment: { card: TEST_CARD },
      },
      { authorization: `Bearer ${plan.customerToken}`, 'idempotency-key': `bench-${chain.chainIdB64}-${i}` },
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  return { seconds, chains: made.map((c) => ({ chainId: c.chainIdB64, seed: c.seedB64, length: c.length })) };
}

/** Claims every chain for the vendor (payword 1 as the proof); answers each claim's epoch. */
export async function claimChains(plan: ClaimPlan): Promise<Timed & { epochs: number[] }> {
  const chains = plan.chains.map(chainOf);
  const start = performance.now();
  const answers = await concurrently(chains, plan.concurrency, (chain) =>
    post(
      `${plan.api}/chains/${chain.chainIdB64}/claim`,
      { proof: { index: 1, payword: chain.b64(1) } },
      { authorization: `Bearer ${plan.vendorApiKey}` },
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  return { seconds, epochs: answers.map((a) => (a as { holder: { epoch: number } }).holder.epoch) };
}

/** Redeems every chain whole; answers the paywords the broker accepted. */
export async function redeemChains(plan: RedeemPlan): Promise<Timed & { paywords: number; rejected: number }> {
  const items = plan.chains.map((c) => {
    const chain = chainOf(c);
    return {
      chainId: c.chainId,
      epoch: c.epoch,
      from: { index: 0, payword: chain.b64(0) },
      to: { index: c.length, payword: chain.b64(c.length) },
    };
  });
  const batches: Array<typeof items> = [];
  for (let i = 0; i < items.length; i += plan.itemsPerRequest) batches.push(items.slice(i, i + plan.itemsPerRequest));
  const start = performance.now();
  const answers = await concurrently(batches, plan.concurrency, (batch, i) =>
    post(
      `${plan.api}/redemptions`,
      { items: batch },
      { authorization: `Bearer ${plan.vendorApiKey}`, 'idempotency-key': `bench-redeem-${Date.now()}-${i}` },
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  let paywords = 0;
  let rejected = 0;
  for (const answer of answers as Array<{ items: Array<{ status: string; amount: number }> }>) {
    for (const item of answer.items) {
      if (item.status === 'accepted') paywords += item.amount;
      else rejected++;
    }
  }
  return { seconds, paywords, rejected };
}
