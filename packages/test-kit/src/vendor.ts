import {
  createNetPayVendor,
  createSpendStore,
  type NetPayVendor,
  type NetPayVendorOptions,
  netpayFastify,
  type SpendStore,
  type SpendStoreOptions,
} from '@netpay/vendor-sdk';
import Fastify, { type FastifyInstance } from 'fastify';

/** A registered vendor identity without a running server (for a child-process vendor, say). */
export interface VendorIdentity {
  id: string;
  port: number;
  url: string;
  apiKey: string;
  signingKey: { privateSeed: Uint8Array; publicKey: Uint8Array; keyId: string };
  storeUrl: string;
}

/** A vendor under test: the SDK core, its Fastify app, its store and how to reach it. */
export interface TestVendor extends VendorIdentity {
  vendor: NetPayVendor;
  store: SpendStore;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** SDK options a test may set, plus the prices of its articles and the options of its store (a gated disk, say). */
export type VendorOptions = Partial<NetPayVendorOptions> & {
  prices?: Record<string, number>;
  storeOptions?: SpendStoreOptions;
};

/**
 * Priced routes every test vendor serves: /articles/:id (price from `prices`, default 1; sold as "Article <id>")
 * and /free.
 */
export function articleRoutes(app: FastifyInstance, prices: Record<string, number> = {}): void {
  const id = (req: { params: unknown }) => (req.params as { id: string }).id;
  app.get<{ Params: { id: string } }>(
    '/articles/:id',
    { config: { netpay: { price: (req) => prices[id(req)] ?? 1, description: (req) => `Article ${id(req)}` } } },
    async (request) => ({ article: request.params.id, paid: request.netpay }),
  );
  app.get('/free', async () => ({ free: true }));
}

/**
 * Starts a vendor built with the SDK behind Fastify, on the identity's port and store, serving articleRoutes.
 * `close()` is safe to call twice (a test that stops a vendor early, then the world's close).
 */
export async function startVendor(
  brokerUrl: string,
  identity: VendorIdentity,
  options: VendorOptions = {},
): Promise<TestVendor> {
  const { prices, storeOptions, ...rest } = options;
  const store = await createSpendStore(identity.storeUrl, storeOptions);
  const vendor = createNetPayVendor({
    vendorId: identity.id,
    brokerUrl,
    apiKey: identity.apiKey,
    signingKey: identity.signingKey,
    releaseUrl: `${identity.url}/netpay/release`,
    store,
    ...rest,
  });
  const app = Fastify({ logger: false });
  await app.register(netpayFastify, { vendor });
  articleRoutes(app, prices);
  await app.listen({ host: '127.0.0.1', port: identity.port });
  let closed = false;
  return {
    ...identity,
    vendor,
    store,
    app,
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
      await vendor.close();
      await store.close();
    },
  };
}
