import {
  CheckpointRequestSchema,
  ChainIdSchema,
  ClaimRequestSchema,
  checkWire,
  parseWire,
  ProtocolError,
  RedemptionRequestSchema,
  ReleaseRequestSchema,
  type RedemptionRequest,
  type RedemptionResponse,
  type VendorAccount,
} from '@netpay/protocol';
import type { FastifyInstance } from 'fastify';
import { idempotencyKey, requireVendor } from '../auth.ts';
import { brokerRelease } from '../broker-release.ts';
import { counted } from '../broker-metrics.ts';
import { checkpoint } from '../checkpoint.ts';
import { claimChain } from '../claim.ts';
import type { BrokerDeps } from '../deps.ts';
import { vendorAccountView } from '../payouts.ts';
import { redeem } from '../redemption.ts';

/** The most bytes a redemption request may have (1000 items, each possibly carrying a release). */
export const REDEMPTION_BODY_LIMIT_BYTES = 2 * 1024 * 1024;

function chainIdParam(value: string): string {
  if (!checkWire(ChainIdSchema, value)) throw new ProtocolError('bad_request', 'chainId must be 16 bytes of base64url');
  return value;
}

/** §5: the vendor ↔ broker API (vendor API key as Bearer). */
export function vendorApiRoutes(app: FastifyInstance, deps: BrokerDeps): void {
  const metrics = app.brokerMetrics;
  app.post<{ Params: { chainId: string } }>('/api/v1/chains/:chainId/claim', async (request) =>
    counted(metrics.claim, 'granted', async () => {
      const vendor = await requireVendor(deps, request);
      const chainId = chainIdParam(request.params.chainId);
      const body = parseWire(ClaimRequestSchema, request.body ?? {});
      return claimChain(deps, chainId, vendor.id, body.proof);
    }),
  );

  app.post<{ Params: { chainId: string } }>('/api/v1/chains/:chainId/checkpoint', async (request) => {
    const vendor = await requireVendor(deps, request);
    const chainId = chainIdParam(request.params.chainId);
    const body = parseWire(CheckpointRequestSchema, request.body);
    const answer = await checkpoint(deps, chainId, vendor.id, body);
    if (body.release) metrics.releaseLearned('checkpoint');
    return answer;
  });

  app.post('/api/v1/redemptions', { bodyLimit: REDEMPTION_BODY_LIMIT_BYTES }, async (request, reply) => {
    const vendor = await requireVendor(deps, request);
    const key = idempotencyKey(request);
    const body = parseWire(RedemptionRequestSchema, request.body);
    const text = await redeem(deps, vendor.id, key, body);
    const answer = JSON.parse(text) as RedemptionResponse;
    metrics.redemptionAnswered(answer);
    metrics.releaseLearned('redemption', releasesAccepted(body.items, answer));
    return reply.code(200).type('application/json; charset=utf-8').send(text);
  });

  // §6: the release URL of the vendor `broker` (registered by ensureBrokerVendor); no vendor authentication,
  // like any vendor's release URL: the broker-signed holder certificate is the credential.
  app.post('/api/v1/broker/release', async (request) => {
    const body = parseWire(ReleaseRequestSchema, request.body);
    return brokerRelease(deps, body.holder);
  });

  app.get('/api/v1/vendor/account', async (request): Promise<VendorAccount> => {
    const vendor = await requireVendor(deps, request);
    return vendorAccountView(deps.db, vendor.id, deps.config.currency);
  });
}

/** How many releases the accepted items of a redemption carried (each is now on the broker's epoch rows). */
function releasesAccepted(items: RedemptionRequest['items'], answer: RedemptionResponse): number {
  let count = 0;
  items.forEach((item, i) => {
    if (answer.items[i]?.status !== 'accepted') return;
    if (item.from.release) count += 1;
    if (item.to.release) count += 1;
  });
  return count;
}
