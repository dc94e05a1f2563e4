import type { WalletGrantResponse } from '@netpay/protocol';
import type { FastifyInstance } from 'fastify';
import { requireVendor } from '../auth.ts';
import type { BrokerDeps } from '../deps.ts';
import { exchangeWalletGrant } from '../wallet-grants.ts';

/** §7: a vendor exchanges a connect code for the customer's chain (vendor API key as Bearer, like §5). */
export function walletGrantApiRoutes(app: FastifyInstance, deps: BrokerDeps): void {
  app.post<{ Params: { code: string } }>(
    '/api/v1/wallet-grants/:code',
    async (request, reply): Promise<WalletGrantResponse> => {
      const vendor = await requireVendor(deps, request);
      reply.header('cache-control', 'no-store');
      return exchangeWalletGrant(deps, vendor.id, request.params.code);
    },
  );
}
