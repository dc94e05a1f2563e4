/**
 * Chains held at a vendor without a broker: a chain row and epoch 1 from the anchor with a valid lease, written
 * through the store API exactly as a claim leaves them. Payments then go through the vendor's real charge path.
 */
import { randomBytes } from 'node:crypto';
import { b64uEncode, formatAuthorization, PaywordChain } from '@netpay/protocol';
import { createTestDatabase } from '@netpay/service-kit/testing';
import {
  createNetPayVendor,
  createSpendStore,
  type NetPayVendor,
  type NetPayVendorOptions,
  type PaymentDecision,
  type SpendStore,
} from '../src/index.ts';

const NOW = Date.now();
const DAY = 86_400_000;
const VENDOR_ID = 'held-chains';

export async function holdChain(store: SpendStore, chain: PaywordChain): Promise<void> {
  const chainId = chain.chainIdB64;
  const stamp = new Date(NOW).toISOString();
  await store.saveChain({
    chainId,
    touchstone: {
      chainId,
      anchor: chain.anchorB64,
      length: chain.length,
      unit: 1,
      currency: 'NZD',
      broker: 'http://broker.test',
      keyId: 'bk1',
      issuedAt: stamp,
      expiresAt: new Date(NOW + 30 * DAY).toISOString(),
      sig: 'A'.repeat(86),
    },
    unit: 1,
    length: chain.length,
    currency: 'NZD',
    expiresAtMs: NOW + 30 * DAY,
  });
  const anchor = { index: 0, payword: chain.anchorB64 };
  await store.insertEpoch({
    chainId,
    epoch: 1,
    holder: {
      chainId,
      epoch: 1,
      vendorId: VENDOR_ID,
      prevVendorId: '',
      prevEpoch: 0,
      broker: 'http://broker.test',
      keyId: 'bk1',
      issuedAt: stamp,
      expiresAt: new Date(NOW + DAY).toISOString(),
      sig: 'A'.repeat(86),
    },
    leaseExpiresAtMs: NOW + DAY,
    previous: null,
    start: anchor,
    startRelease: null,
    releaseReported: false,
    last: anchor,
    lastResource: null,
    release: null,
    superseded: false,
    redeemed: null,
    redeemedMinor: 0,
    rejectedMinor: 0,
  });
}

/** A vendor on the store that never needs its broker: every chain is held and the currency is given. */
export function heldChainVendor(store: SpendStore, options: Partial<NetPayVendorOptions> = {}): NetPayVendor {
  return createNetPayVendor({
    vendorId: VENDOR_ID,
    brokerUrl: 'http://127.0.0.1:9',
    apiKey: 'unused',
    signingKey: { privateSeed: randomBytes(32), keyId: 'vk1' },
    releaseUrl: 'http://127.0.0.1:9/release',
    currency: 'NZD',
    store,
    ...options,
  });
}

/**
 * A store on a fresh database of `engine`, one chain of 10 units held on it, and a vendor paying from it; what is to
 * be closed and dropped is pushed on `cleanup`.
 */
export async function heldVendor(engine: 'sqlite' | 'postgres', cleanup: (() => Promise<unknown>)[]) {
  const db = await createTestDatabase(engine);
  cleanup.push(db.drop);
  const store = await createSpendStore(db.url);
  cleanup.push(() => store.close());
  const chain = PaywordChain.generate(10);
  await holdChain(store, chain);
  const vendor = heldChainVendor(store);
  cleanup.push(() => vendor.close());
  return { db, store, chain, vendor };
}

/** A payment of w_index for one unit. */
export function payWith(vendor: NetPayVendor, chain: PaywordChain, index: number, resource: string) {
  return vendor.charge({
    authorization: formatAuthorization({ chain: chain.chainIdB64, index, payword: chain.b64(index) }),
    resource,
    priceMinor: 1,
  });
}

/** A decision as [kind, charged] or [kind, code], for one assertion. */
export function outcome(d: PaymentDecision): [string, unknown] {
  if (d.kind === 'paid') return ['paid', d.charged];
  if (d.kind === 'problem') return ['problem', d.body.code];
  return [d.kind, undefined];
}

const SEED = b64uEncode(randomBytes(32));
const RUN = randomBytes(8);

/** The n-th of many distinct one-unit chains, made without a random draw each (ids differ by their number). */
export function chainNumber(n: number): PaywordChain {
  const id = new Uint8Array(16);
  id.set(RUN);
  new DataView(id.buffer).setUint32(12, n);
  return PaywordChain.fromB64(b64uEncode(id), SEED, 1);
}
