import formbody from '@fastify/formbody';
import { ProtocolError } from '@netpay/protocol';
import type { FastifyError, FastifyInstance } from 'fastify';
import type { BrokerDeps } from '../deps.ts';
import { walletGrantApiRoutes } from '../routes/wallet-grant-api.ts';
import { errorPage } from './auth-pages.ts';
import { connectRoutes } from './connect-routes.ts';
import { customerRoutes } from './customer-routes.ts';
import { type OperatorTokenOptions, loadOperatorToken } from './operator-token.ts';
import { operatorRoutes } from './operator-routes.ts';
import { contentSecurityPolicy, sendHtml } from './respond.ts';
import { sitesRoutes } from './sites-routes.ts';
import { STYLESHEET, STYLESHEET_PATH } from './style.ts';
import { WebContext } from './web-context.ts';
import { loadWebKey } from './web-keys.ts';

export type WebOptions = OperatorTokenOptions;

const FORM_BODY_LIMIT_BYTES = 16 * 1024;

/**
 * The broker's customer web pages, the operator view, the connect flow (§7) and the vendor's wallet-grant
 * exchange. Pages live in their own encapsulated context: urlencoded forms, HTML error pages and the security
 * headers apply to them only, while `POST {api}/wallet-grants/{code}` stays a JSON API with problem details.
 *
 * @example
 * await registerWebRoutes(app, deps); // in createBrokerApp, after the API routes
 */
export async function registerWebRoutes(
  app: FastifyInstance,
  deps: BrokerDeps,
  options: WebOptions = {},
): Promise<void> {
  walletGrantApiRoutes(app, deps);
  const ctx = new WebContext(deps, await loadWebKey(deps));
  const operatorToken = loadOperatorToken(options);

  await app.register(async (web) => {
    await web.register(formbody, { bodyLimit: FORM_BODY_LIMIT_BYTES });

    web.addHook('onSend', async (_request, reply, payload) => {
      if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', contentSecurityPolicy());
      reply.header('x-frame-options', 'DENY');
      reply.header('x-content-type-options', 'nosniff');
      // Connect redirects carry one-time codes: no page of ours sends a Referer anywhere.
      reply.header('referrer-policy', 'no-referrer');
      reply.header('cross-origin-opener-policy', 'same-origin');
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
      return payload;
    });

    web.setErrorHandler((error: FastifyError | ProtocolError, request, reply) => {
      const status =
        error instanceof ProtocolError
          ? error.status
          : typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500
            ? error.statusCode
            : 500;
      if (status >= 500) request.log.error({ err: error }, 'unexpected error on a page');
      const message =
        status >= 500
          ? 'Something went wrong on our side. It has been logged; please try again.'
          : error instanceof ProtocolError
            ? (error.detail ?? error.code)
            : 'The request could not be understood.';
      return sendHtml(reply, status, errorPage(status >= 500 ? 'Something went wrong' : 'That did not work', message));
    });

    web.get(STYLESHEET_PATH, async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=3600');
      return reply.type('text/css; charset=utf-8').send(STYLESHEET);
    });

    customerRoutes(web, ctx);
    sitesRoutes(web, ctx);
    connectRoutes(web, ctx);
    operatorRoutes(web, ctx, operatorToken);
  });
}
