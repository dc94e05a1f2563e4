import { type Discovery, ProtocolError, type VendorDirectoryEntry } from '@netpay/protocol';
import type { FastifyInstance } from 'fastify';
import { apiBase } from '../config.ts';
import type { BrokerDeps } from '../deps.ts';
import { publishedKeys } from '../signing-keys.ts';
import { findVendor, vendorKeys } from '../vendor-registry.ts';
import { sendCacheable } from './cache-headers.ts';

const VENDOR_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** §3: discovery and the public vendor directory, both cacheable for a minute and revalidated by ETag. */
export function discoveryRoutes(app: FastifyInstance, deps: BrokerDeps): void {
  app.get('/.well-known/netpay', async (request, reply) => {
    const discovery: Discovery = {
      broker: deps.config.publicUrl,
      currency: deps.config.currency,
      keys: (await publishedKeys(deps.db)).map((k) => ({
        keyId: k.keyId,
        alg: 'Ed25519' as const,
        publicKey: k.publicKey,
      })),
      feeBps: deps.config.feeBps,
      maxChainLength: deps.config.maxChainLength,
      api: apiBase(deps.config),
    };
    return sendCacheable(request, reply, discovery);
  });

  app.get<{ Params: { vendorId: string } }>('/api/v1/vendors/:vendorId', async (request, reply) => {
    const { vendorId } = request.params;
    const vendor = VENDOR_ID.test(vendorId) ? await findVendor(deps.db, vendorId) : undefined;
    if (!vendor) throw new ProtocolError('unknown_vendor', `no vendor ${vendorId}`);
    const entry: VendorDirectoryEntry = {
      vendorId: vendor.id,
      name: vendor.name,
      url: vendor.url,
      releaseUrl: vendor.release_url,
      keys: (await vendorKeys(deps.db, vendor.id)).map((k) => ({
        keyId: k.keyId,
        alg: 'Ed25519' as const,
        publicKey: k.publicKey,
      })),
    };
    return sendCacheable(request, reply, entry);
  });
}
