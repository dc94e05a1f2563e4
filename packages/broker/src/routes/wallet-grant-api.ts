import {
  type AllowanceResponse,
  AllowanceRequestSchema,
  type ConnectionGrantResponse,
  parseWire,
} from '@netpay/protocol';
import type { FastifyInstance } from 'fastify';
import { requestAllowance } from '../allowance-request.ts';
import { requireVendor } from '../auth.ts';
import { exchangeConnectionGrant } from '../connection-grant.ts';
import type { BrokerDeps } from '../deps.ts';

/**
 * §7 v1.1, the connected site's side (vendor API key as Bearer, like §5): exchange a connect code for a
 * connection (a chain claimed for it and a first allowance), and ask for the next allowance. Answers carry
 * paywords and a refresh token: never cached.
 */
export function walletGrantApiRoutes(app: FastifyInstance, deps: BrokerDeps): void {
  app.post<{ Params: { code: string } }>(
    '/api/v1/wallet-grants/:code',
    async (request, reply): Promise<ConnectionGrantResponse> => {
      const vendor = await requireVendor(deps, request);
      reply.header('cache-control', 'no-store');
      return exchangeConnectionGrant(deps, vendor.id, request.params.code);
    },
  );

  app.post('/api/v1/allowances', async (request, reply): Promise<AllowanceResponse> => {
    const vendor = await requireVendor(deps, request);
    const body = parseWire(AllowanceRequestSchema, request.body);
    reply.header('cache-control', 'no-store');
    return requestAllowance(deps, vendor.id, body);
  });
}
