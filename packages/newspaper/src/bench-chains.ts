/**
 * The load process's coins: rebuilt from their seeds once (rebuilding hashes the whole chain) and kept for the
 * rounds that follow.
 */
import { PaywordChain } from '@netpay/protocol';

/** A coin as the benchmark passes it between processes. */
export interface BoughtChain {
  chainId: string;
  seed: string;
  length: number;
}

const chains = new Map<string, PaywordChain>();

/** Remembers a chain made here. */
export function keepChain(chain: PaywordChain): void {
  chains.set(chain.chainIdB64, chain);
}

/** The chain, rebuilt from its seed the first time it is asked for. */
export function chainOf(c: BoughtChain): PaywordChain {
  let chain = chains.get(c.chainId);
  if (!chain) {
    chain = PaywordChain.fromB64(c.chainId, c.seed, c.length);
    chains.set(c.chainId, chain);
  }
  return chain;
}
