import { type Discovery, ProtocolError, type VendorDirectoryEntry } from '@netpay/protocol';
import type { FastifyInstance } from 'fastify';
import { apiBase } from '../config.ts';
import type { BrokerDeps } from '../deps.ts';
import { publishedKeys } from '../signing-keys.ts';
import { findVendor, vendorKeys } from '../vendor-registry.ts';

const VENDOR_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** §3: discovery and the public vendor directory. */
export function discoveryRoutes(app: FastifyInstance, deps: BrokerDeps): void {
  app.get('/.well-known/netpay', async (): Promise<Discovery> => {
    return {
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
  });

  app.get<{ Params: { vendorId: string } }>(
    '/api/v1/vendors/:vendorId',
    async (request): Promise<VendorDirectoryEntry> => {
      const { vendorId } = request.params;
      const vendor = VENDOR_ID.test(vendorId) ? await findVendor(deps.db, vendorId) : undefined;
      if (!vendor) throw new ProtocolError('unknown_vendor', `no vendor ${vendorId}`);
      return {
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
    },
  );
}
