import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { corsForPricedRoutes, type NetPayCorsOptions } from './cors.ts';
import type { WalletPaywall } from './challenge.ts';
import { payFormProblem } from './connect-pages.ts';
import { CALLBACK_PATH, CONNECT_PATH } from './connection.ts';
import {
  chargeInput,
  requestOriginOf,
  chargeOutcome,
  defaultResource,
  type HttpReply,
  type NetPayPaid,
  releaseReply,
  webReply,
} from './http-reply.ts';
import type { RequestOrigin } from './navigation.ts';
import { PAY_PATH } from './pay-confirm.ts';
import type { WalletView } from './server-wallet.ts';
import type { NetPayVendor } from './vendor.ts';

export { defaultResource, type NetPayPaid } from './http-reply.ts';

/** What a route declares to be priced: `config: { netpay: { price, resource?, description? } }`. */
export interface NetPayRouteConfig {
  /** Price in minor units, or a function of the request (0 = free). */
  price: number | ((request: FastifyRequest) => number | Promise<number>);
  /** What is bought; default: method + path without the query (`GET /articles/1`). */
  resource?: (request: FastifyRequest) => string;
  /** What is bought in words, for the reader's history at the broker (an article's title); default: the resource. */
  description?: (request: FastifyRequest) => string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    netpay?: NetPayRouteConfig;
  }
  interface FastifyRequest {
    netpay: NetPayPaid | null;
    /**
     * The browser session's server-side wallet (§7 connect) as the vendor knows it now: allowance left here, the
     * NetPay balance and whether it is fresh. Set on every request, and again after the payment; null if none.
     */
    netpayWallet: WalletView | null;
    /** Resources the browser session bought here; null when server-side wallets are off or it has no session. */
    netpayBought: ReadonlySet<string> | null;
    /** The problem code when the plugin answered a priced route instead of its handler (402, 503, …). */
    netpayRefusal: string | null;
    /** Why the session's wallet did not pay, and what the reader can do (the pay form, a broker link). */
    netpayPaywall: WalletPaywall | null;
    /** When the request began on the vendor's clock (a balance given after it is fresh). */
    netpayStartedMs: number;
  }
}

export interface NetPayFastifyOptions {
  vendor: NetPayVendor;
  /** Answer CORS for the priced routes, so client-side wallets on these origins can pay from other sites. */
  cors?: NetPayCorsOptions;
  /** Where other vendors POST for a release (§6); default `/netpay/release`. Must match the registered releaseUrl. */
  releasePath?: string;
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The headers that say where a request comes from. */
export function requestOrigin(request: FastifyRequest): RequestOrigin {
  return requestOriginOf((name) => header(request, name));
}

async function setSessionView(vendor: NetPayVendor, request: FastifyRequest): Promise<void> {
  const view = await vendor.sessionViewFor(request.headers.cookie, request.netpayStartedMs);
  request.netpayWallet = view.wallet;
  request.netpayBought = view.bought;
}

async function chargeRoute(
  vendor: NetPayVendor,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply | undefined> {
  const config = request.routeOptions.config.netpay;
  if (!config) return;
  const price = typeof config.price === 'function' ? await config.price(request) : config.price;
  const decision = await vendor.charge(
    chargeInput((name) => header(request, name), {
      resource: config.resource ? config.resource(request) : defaultResource(request.method, request.url),
      priceMinor: price,
      path: request.url,
      description: config.description ? config.description(request) : undefined,
    }),
  );
  const outcome = chargeOutcome(decision);
  if (outcome.kind === 'free') return;
  // The figures after this request: the payment, a new allowance, or a wallet forgotten.
  if (vendor.serverWallets && request.headers.cookie) await setSessionView(vendor, request);
  if (outcome.kind === 'paid') {
    reply.header(outcome.receiptHeader, outcome.receipt);
    request.netpay = outcome.paid;
    return;
  }
  request.netpayRefusal = outcome.refusal;
  request.netpayPaywall = outcome.paywall ?? null;
  // An async hook that answers must return the reply, so Fastify stops before the handler.
  return send(reply, outcome.reply);
}

function send(reply: FastifyReply, answer: HttpReply): FastifyReply {
  return reply.code(answer.status).headers(answer.headers).send(answer.body);
}

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** Fastify's parsers throw on a malformed or oversized pay form: answered as a problem, like the rest of the SDK. */
function payFormError(error: unknown, request: FastifyRequest): HttpReply {
  const answer = payFormProblem((error as Partial<FastifyError> | undefined)?.statusCode ?? 500);
  if (answer.status >= 500) request.log.error({ err: error }, 'netpay pay form failed');
  return answer;
}

/**
 * The Fastify plugin: every route with `config.netpay` is charged before its handler runs (402 challenge, problem,
 * or `NetPay-Receipt` plus `request.netpay`), and the §6 release route is registered. With server-side wallets on
 * (`publicUrl`), it also serves `GET /netpay/connect`, `GET /netpay/callback` and `POST /netpay/pay` (the
 * paywall's "Read for 12c" form), pays priced routes from the session's wallet, and sets `request.netpayWallet`
 * and `request.netpayBought` on every request. Register it before the priced routes.
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
  app.decorateRequest('netpayBought', null);
  app.decorateRequest('netpayRefusal', null);
  app.decorateRequest('netpayPaywall', null);
  app.decorateRequest('netpayStartedMs', 0);
  if (vendor.serverWallets) {
    // Only a site with server-side wallets pays this per request (the figures of the browser's session).
    app.addHook('onRequest', async (request) => {
      request.netpayStartedMs = vendor.now();
      if (request.headers.cookie) await setSessionView(vendor, request);
    });
    app.get<{ Querystring: Record<string, unknown> }>(CONNECT_PATH, async (request, reply) =>
      send(
        reply,
        webReply(
          vendor.connect({
            returnTo: request.query.return_to,
            cookie: request.headers.cookie,
            request: requestOrigin(request),
          }),
        ),
      ),
    );
    app.get<{ Querystring: Record<string, unknown> }>(CALLBACK_PATH, async (request, reply) =>
      send(reply, webReply(await vendor.connectCallback({ query: request.query, cookie: request.headers.cookie }))),
    );
    // The pay form in its own context, so its form parser does not become the whole app's.
    await app.register(async (child) => {
      if (!child.hasContentTypeParser(FORM_TYPE)) {
        child.addContentTypeParser(FORM_TYPE, { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) =>
          done(null, body),
        );
      }
      child.setErrorHandler((error, request, reply) => send(reply, payFormError(error, request)));
      child.post(PAY_PATH, async (request, reply) =>
        send(
          reply,
          webReply(
            vendor.confirmPayment({
              body: request.body,
              cookie: request.headers.cookie,
              request: requestOrigin(request),
            }),
          ),
        ),
      );
    });
  }
  app.addHook('preHandler', (request, reply) => chargeRoute(vendor, request, reply));
  app.post(options.releasePath ?? '/netpay/release', async (request, reply) => {
    return send(reply, releaseReply(await vendor.release(request.body)));
  });
};

// Like fastify-plugin: the hook and decorator apply to the app that registers the plugin, not a child context.
(netpayFastify as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
(netpayFastify as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = 'netpay';
