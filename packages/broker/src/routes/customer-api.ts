import {
  BuyCoinRequestSchema,
  ChainIdSchema,
  checkWire,
  CreateCustomerRequestSchema,
  CreateSessionRequestSchema,
  parseWire,
  ProtocolError,
} from '@netpay/protocol';
import { RateLimiter, sendProblem } from '@netpay/service-kit';
import type { FastifyReply, FastifyRequest, FastifyInstance } from 'fastify';
import { idempotencyKey, requireCustomer } from '../auth.ts';
import { buyCoin } from '../coin-purchase.ts';
import { customerHistory, listCoins } from '../coins-view.ts';
import { createCustomer, createSession } from '../customers.ts';
import { counted } from '../broker-metrics.ts';
import type { BrokerDeps } from '../deps.ts';
import { throttledLogin } from '../login-throttle.ts';
import { takePurchaseBudget } from '../rate-budget.ts';
import { refundCoin } from '../refund.ts';

/** Takes a token from each limiter; answers 429 with Retry-After when one is empty. */
function limited(reply: FastifyReply, checks: Array<[RateLimiter, string]>): FastifyReply | undefined {
  for (const [limiter, key] of checks) {
    if (!limiter.take(key)) {
      const seconds = Math.max(1, limiter.retryAfterSeconds(key));
      reply.header('retry-after', String(seconds));
      return sendProblem(reply, 'rate_limited', `too many attempts; retry in ${seconds} s`, { retryAfter: seconds });
    }
  }
  return undefined;
}

/** §7: the customer API (session token as Bearer; the web pages use the session cookie). */
export function customerApiRoutes(app: FastifyInstance, deps: BrokerDeps): void {
  const r = deps.config.rateLimits;
  // Flood guards per client address, in each process on purpose: they protect that process's CPU (password
  // hashing) from bursts, and a shared counter would carry the flood to the database. What must hold for the
  // whole fleet is in the store: failed logins (login-throttle.ts) and each customer's purchases (below).
  const loginPerIp = new RateLimiter(r.loginPerIp[0], r.loginPerIp[1], deps.clock);
  const signupPerIp = new RateLimiter(r.signupPerIp[0], r.signupPerIp[1], deps.clock);

  app.post('/api/v1/customers', async (request: FastifyRequest, reply) => {
    const body = parseWire(CreateCustomerRequestSchema, request.body);
    const stop = limited(reply, [[signupPerIp, request.ip]]);
    if (stop) return stop;
    const created = await createCustomer(deps, body.email, body.password);
    return reply.code(201).send(created);
  });

  app.post('/api/v1/sessions', async (request, reply) => {
    const body = parseWire(CreateSessionRequestSchema, request.body);
    const stop = limited(reply, [[loginPerIp, request.ip]]);
    if (stop) return stop;
    // The same failure limits as the web login form (login-throttle.ts).
    const result = await throttledLogin(deps, { email: body.email, ip: request.ip }, () =>
      createSession(deps, body.email, body.password),
    );
    if (!result.ok) {
      const wait = result.retryAfterSeconds;
      reply.header('retry-after', String(wait));
      return sendProblem(reply, 'rate_limited', `too many failed logins; retry in ${wait} s`, { retryAfter: wait });
    }
    return reply.code(200).send({ token: result.value.token });
  });

  const metrics = app.brokerMetrics;
  app.post('/api/v1/coins', async (request, reply) => {
    const customer = await requireCustomer(deps, request);
    const key = idempotencyKey(request);
    const body = parseWire(BuyCoinRequestSchema, request.body);
    const budget = await takePurchaseBudget(deps, customer.id);
    if (!budget.ok) {
      metrics.purchase('rate_limited');
      const seconds = budget.retryAfterSeconds;
      reply.header('retry-after', String(seconds));
      return sendProblem(reply, 'rate_limited', `too many purchases; retry in ${seconds} s`, { retryAfter: seconds });
    }
    const text = await counted(metrics.purchase, 'created', () => buyCoin(deps, customer.id, key, body));
    return reply.code(201).type('application/json; charset=utf-8').send(text);
  });

  app.get('/api/v1/coins', async (request) => {
    const customer = await requireCustomer(deps, request);
    return listCoins(deps.db, customer.id, deps.clock.now());
  });

  app.get('/api/v1/history', async (request) => {
    const customer = await requireCustomer(deps, request);
    return customerHistory(deps.db, customer.id);
  });

  app.post<{ Params: { chainId: string } }>('/api/v1/coins/:chainId/refund', async (request) => {
    const customer = await requireCustomer(deps, request);
    if (!checkWire(ChainIdSchema, request.params.chainId)) {
      throw new ProtocolError('bad_request', 'chainId must be 16 bytes of base64url');
    }
    const chainId = request.params.chainId;
    return counted(metrics.refund, 'refunded', () => refundCoin(deps, customer.id, chainId));
  });
}
