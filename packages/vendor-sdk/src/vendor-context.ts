import { findKey } from '@netpay/protocol';
import type { Clock } from '@netpay/service-kit';
import type { BrokerClient } from './broker-client.ts';
import type { ChainCache } from './chain-cache.ts';
import type { KeyedQueue } from './keyed-queue.ts';
import type { SpendStore } from './spend-store.ts';

/** Logs the SDK writes; a pino logger fits. */
export interface VendorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * What every part of the vendor (charge, acquire-chain, release-request, lease-renewal, the wallet parts) shares:
 * who it is, its durable store, the broker, the chains in memory, the claim queue and the clock.
 */
export interface VendorContext {
  readonly vendorId: string;
  readonly store: SpendStore;
  readonly broker: BrokerClient;
  /** The broker's base URL without a trailing slash. */
  readonly brokerUrl: string;
  readonly chains: ChainCache;
  /** One claim at a time per chain: two payments that both find a chain unheld make one claim between them. */
  readonly claims: KeyedQueue;
  readonly clock: Clock;
  readonly signingKey: { privateSeed: Uint8Array; keyId: string };
  readonly logger: VendorLogger | undefined;
  now(): number;
}

/** The broker's public key of that id (discovery, fetched again once when the id is new); undefined if unknown. */
export async function brokerKey(broker: BrokerClient, keyId: string): Promise<Uint8Array | undefined> {
  try {
    let key = findKey((await broker.discovery()).keys, keyId);
    if (!key) key = findKey((await broker.discovery(true)).keys, keyId);
    return key;
  } catch {
    return undefined;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
