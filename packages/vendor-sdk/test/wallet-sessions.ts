/**
 * Server-side wallet sessions without a broker, for store-level tests of §7: a session whose wallet holds an
 * allowance on a chain held at the vendor, a vendor that never needs its broker, a same-site read, and a store whose
 * purchase notes written apart from a payment fail on demand.
 */
import { randomBytes } from 'node:crypto';
import { b64uEncode, type PaywordChain } from '@netpay/protocol';
import { hashToken } from '@netpay/service-kit';
import { createNetPayVendor, type NetPayVendor, type SpendStore } from '../src/index.ts';
import { holdChain } from './held-chains.ts';

/** A vendor on the store whose wallet pages would link to `vendor.test`; `seed` keeps its session secrets shared. */
export function walletVendor(store: SpendStore, seed: Uint8Array): NetPayVendor {
  return createNetPayVendor({
    vendorId: 'held-chains',
    brokerUrl: 'http://127.0.0.1:9',
    apiKey: 'unused',
    signingKey: { privateSeed: seed, keyId: 'vk1' },
    releaseUrl: 'http://127.0.0.1:9/release',
    publicUrl: 'http://vendor.test',
    currency: 'NZD',
    store,
  });
}

/** A new session whose wallet holds an allowance up to index 50 of `chain`, held at this vendor. */
export async function connectedSession(store: SpendStore, chain: PaywordChain): Promise<string> {
  const session = b64uEncode(randomBytes(32));
  await holdChain(store, chain);
  const now = Date.now();
  await store.putServerWallet({
    sessionHash: hashToken(session),
    chainId: chain.chainIdB64,
    epoch: 1,
    allowance: { index: 50, payword: chain.b64(50), expiresAtMs: now + 3_600_000 },
    refreshTokenSealed: 'unused',
    balanceMinor: 1000,
    balanceAtMs: now,
    autoPayMaxMinor: 10,
    updatedAtMs: now,
  });
  return session;
}

/** A same-site navigation of the session to `resource`, one unit. */
export const sameSiteRead = (session: string, resource: string) => ({
  resource,
  priceMinor: 1,
  cookie: `np_wallet_session=${session}`,
  path: `/${resource}`,
  secFetchSite: 'same-origin',
});

/** The store, but a purchase note written apart from its payment fails (EIO) while `failing()` says so. */
export function notesFailing(store: SpendStore, failing: () => boolean): SpendStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'recordWalletPurchase') {
        return async (purchase: Parameters<SpendStore['recordWalletPurchase']>[0]) => {
          if (failing()) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
          return target.recordWalletPurchase(purchase);
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as SpendStore;
}
