import { RECEIPT_HEADER } from '@netpay/protocol';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { corsForPricedRoutes, type NetPayCorsOptions } from './cors.ts';
import { CALLBACK_PATH, CONNECT_PATH, type WalletBalance, type WebAnswer } from './server-wallet.ts';
import type { NetPayVendor } from './vendor.ts';

/** What a route declares to be priced: `config: { netpay: { price, resource? } }`. */
export interface NetPayRouteConfig {
  /** Price in minor units, or a function of the request (0 = free). */
  price: number | ((request: FastifyRequest) => number | Promise<number>);
  /** What is bought; default: method + path without the query (`GET /articles/1`). */
  resource?: (request: FastifyRequest) => string;
}

/** What a paid (or re-read) request carries after the plugin let it through. */
export interface NetPayPaid {
  chainId: string;
  index: number;
  balanceMinor: number;
  /** False for a retry of the last payment or an entitlement. */
  charged: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    netpay?: NetPayRouteConfig;
  }
  interface FastifyRequest {
    netpay: NetPayPaid | null;
    /** The browser session's server-side wallet (§7 connect) and its balance, on every request; null if none. */
    netpayWallet: WalletBalance | null;
    /** The problem code when the plugin answered a priced route instead of its handler (402, 503, …). */
    netpayRefusal: string | null;
  }
}

export interface NetPayFastifyOptions {
  vendor: NetPayVendor;
  /** Answer CORS for the priced routes, so client-side wallets on these origins can pay from other sites. */
  cors?: NetPayCorsOptions;
  /** Where other vendors POST for a release (§6); default `/netpay/release`. Must match the registered releaseUrl. */
  releasePath?: string;
}

/** The default resource of a request: method and path, without the query. */
export function defaultResource(method: string, url: string): string {
  const q = url.indexOf('?');
  return `${method} ${q < 0 ? url : url.slice(0, q)}`;
}

async function chargeRoute(
  vendor: NetPayVendor,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply | undefined> {
  const config = request.routeOptions.config.netpay;
  if (!config) return;
  const price = typeof config.price === 'function' ? await config.price(request) : config.price;
  const resource = config.resource ? config.resource(request) : defaultResource(request.method, request.url);
  const decision = await vendor.charge({
    authorization: request.headers.authorization,
    accept: request.headers.accept,
    resource,
    priceMinor: price,
    cookie: request.headers.cookie,
    path: request.url,
  });
  if (decision.kind === 'free') return;
  if (decision.kind === 'paid') {
    reply.header(RECEIPT_HEADER, decision.receipt);
    if (request.netpayWallet?.chainId === decision.chainId) {
      request.netpayWallet = { chainId: decision.chainId, balanceMinor: decision.balanceMinor };
    }
    request.netpay = {
      chainId: decision.chainId,
      index: decision.index,
      balanceMinor: decision.balanceMinor,
      charged: decision.charged,
    };
    return;
  }
  request.netpayRefusal = String(decision.body.code ?? 'payment_required');
  // The session's coin is dead (refunded, expired): show no spendable balance on this page.
  if (
    request.netpayWallet &&
    (request.netpayRefusal === 'unknown_chain' || request.netpayRefusal === 'chain_expired')
  ) {
    request.netpayWallet = { ...request.netpayWallet, balanceMinor: 0 };
  }
  // An async hook that answers must return the reply, so Fastify stops before the handler.
  return reply
    .code(decision.status)
    .headers(decision.headers)
    .send(decision.html ?? JSON.stringify(decision.body));
}

function sendWeb(reply: FastifyReply, answer: WebAnswer): FastifyReply {
  reply.code(answer.status).headers(answer.headers);
  if (answer.cookies.length > 0) reply.header('set-cookie', answer.cookies);
  return reply.send(answer.html ?? '');
}

/**
 * The Fastify plugin: every route with `config.netpay` is charged before its handler runs (402 challenge, problem,
 * or `NetPay-Receipt` plus `request.netpay`), and the §6 release route is registered. With server-side wallets on
 * (`publicUrl`), it also serves `GET /netpay/connect` and `GET /netpay/callback`, pays priced routes from the
 * session's wallet, and sets `request.netpayWallet` on every request. Register it before the priced routes.
 *
 * @example
 * const app = Fastify();
 * await app.register(netpayFastify, { vendor });
 * app.get('/articles/:id', { config: { netpay: { price: 2 } } }, async (req) => ({ text: '…', paid: req.netpay }));
 */
export const netpayFastify: FastifyPluginAsync<NetPayFastifyOptions> = async (
  app: FastifyInstance,
  options: NetPayFastifyOptions,
) => {
  const { vendor } = options;
  if (options.cors) corsForPricedRoutes(app, options.cors);
  app.decorateRequest('netpay', null);
  app.decorateRequest('netpayWallet', null);
  app.decorateRequest('netpayRefusal', null);
  if (vendor.serverWallets) {
    app.addHook('onRequest', async (request) => {
      if (request.headers.cookie) request.netpayWallet = await vendor.walletBalanceFor(request.headers.cookie);
    });
    app.get<{ Querystring: Record<string, unknown> }>(CONNECT_PATH, async (request, reply) =>
      sendWeb(reply, vendor.connect({ returnTo: request.query.return_to, cookie: request.headers.cookie })),
    );
    app.get<{ Querystring: Record<string, unknown> }>(CALLBACK_PATH, async (request, reply) =>
      sendWeb(reply, await vendor.connectCallback({ query: request.query, cookie: request.headers.cookie })),
    );
  }
  app.addHook('preHandler', (request, reply) => chargeRoute(vendor, request, reply));
  app.post(options.releasePath ?? '/netpay/release', async (request, reply) => {
    const answer = await vendor.release(request.body);
    return reply.code(answer.status).headers(answer.headers).send(JSON.stringify(answer.body));
  });
};

// Like fastify-plugin: the hook and decorator apply to the app that registers the plugin, not a child context.
(netpayFastify as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
(netpayFastify as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = 'netpay';
