import { CardSchema, parseWire } from '@netpay/protocol';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { idempotencyKey, requireCustomer } from '../auth.ts';
import { netPayBalance, siteSummaries } from '../balance.ts';
import { readSettings } from '../customer-settings.ts';
import type { BrokerDeps } from '../deps.ts';
import { completeRevocations } from '../revoke.ts';
import { MAX_TOP_UP_MINOR, topUp } from '../top-up.ts';

// The balance API is the broker's own (like the bank's messages, no other party speaks it): its messages are
// defined here rather than in the protocol package.

const strict = { additionalProperties: false } as const;

/** `POST {api}/balance/top-ups`: add money by card (optionally saved for later) or with the saved card. */
export const TopUpRequestSchema = Type.Object(
  {
    amount: Type.Integer({ minimum: 1, maximum: MAX_TOP_UP_MINOR }),
    payment: Type.Union([
      Type.Object({ card: CardSchema, saveCard: Type.Optional(Type.Boolean()) }, strict),
      Type.Object({ savedCard: Type.Literal(true) }, strict),
    ]),
  },
  strict,
);
export type TopUpRequest = Static<typeof TopUpRequestSchema>;

/** `GET {api}/balance`: the NetPay balance, each connected site's figures, the limits and the saved card. */
export interface BalanceView {
  balance: number;
  currency: string;
  sites: Array<{
    vendorId: string;
    name: string;
    spentThisMonth: number;
    allowanceLeft: number;
    siteCap: number;
    revoked: boolean;
  }>;
  limits: { autoPayMaxMinor: number; dailyCapMinor: number };
  card: { last4: string } | null;
  autoTopUp: { amount: number; monthlyCeiling: number } | null;
}

/** The customer's NetPay balance over the JSON API (customer session token as Bearer). */
export function balanceApiRoutes(app: FastifyInstance, deps: BrokerDeps): void {
  app.get('/api/v1/balance', async (request): Promise<BalanceView> => {
    const customer = await requireCustomer(deps, request);
    await completeRevocations(deps, customer.id);
    const settings = await readSettings(deps.db, customer.id);
    const sites = await siteSummaries(deps.db, customer.id, deps.clock.now());
    return {
      balance: await netPayBalance(deps.db, customer.id),
      currency: deps.config.currency,
      sites: sites.map((s) => ({
        vendorId: s.vendorId,
        name: s.name,
        spentThisMonth: s.spentThisMonthMinor,
        allowanceLeft: s.allowanceLeftMinor,
        siteCap: s.siteCapMinor,
        revoked: s.revokedAt !== null,
      })),
      limits: {
        autoPayMaxMinor: Number(settings.auto_pay_max_minor),
        dailyCapMinor: Number(settings.daily_cap_minor),
      },
      card: settings.card_last4 !== null && settings.card_token !== null ? { last4: settings.card_last4 } : null,
      autoTopUp:
        settings.auto_top_up_minor !== null && settings.auto_top_up_ceiling_minor !== null
          ? { amount: Number(settings.auto_top_up_minor), monthlyCeiling: Number(settings.auto_top_up_ceiling_minor) }
          : null,
    };
  });

  app.post('/api/v1/balance/top-ups', async (request, reply) => {
    const customer = await requireCustomer(deps, request);
    const key = idempotencyKey(request);
    const body = parseWire(TopUpRequestSchema, request.body);
    const result = await topUp(deps, customer.id, key, body.amount, body.payment);
    const balance = await netPayBalance(deps.db, customer.id);
    return reply.code(201).send({ topUpId: result.topUpId, amount: result.amount, balance });
  });
}
