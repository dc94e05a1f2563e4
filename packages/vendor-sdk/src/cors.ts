import { RECEIPT_HEADER } from '@netpay/protocol';
import type { NextFunction, Request, Response } from 'express';
import type { FastifyInstance, FastifyReply, RouteOptions } from 'fastify';

/**
 * Which web origins may call the priced routes from scripts: a client-side wallet running on another site reads the
 * 402's `WWW-Authenticate`, pays with `Authorization: NetPay …` and reads the `NetPay-Receipt`, and a browser lets
 * it do that cross-origin only when the vendor answers CORS.
 */
export interface NetPayCorsOptions {
  /** Exact origins (`https://reader.example`), or `'*'` for any. */
  origins: readonly string[] | '*';
}

/** What a script may read of a priced answer beyond the CORS-safelisted headers. */
export const CORS_EXPOSED_HEADERS = `WWW-Authenticate, ${RECEIPT_HEADER}`;
/** What a script may send: the payment, and a body's type for a priced POST. */
export const CORS_ALLOWED_HEADERS = 'Authorization, Content-Type';
const MAX_AGE_SECONDS = '600';

/**
 * The CORS answers of priced routes, decided from the request's `Origin` alone. Credentials are never allowed: a
 * NetPay payment travels in the Authorization header the script sets itself, while the vendor's cookies (a
 * server-side wallet's session) must never let another site's script spend for the reader.
 */
export class CorsPolicy {
  readonly #origins: ReadonlySet<string> | '*';

  /** @throws TypeError for an entry that is not an http(s) origin (a configuration error, found at start-up). */
  constructor(options: NetPayCorsOptions) {
    if (options.origins === '*') {
      this.#origins = '*';
      return;
    }
    if (!Array.isArray(options.origins)) throw new TypeError("cors.origins must be a list of origins or '*'");
    this.#origins = new Set(options.origins.map(originOf));
  }

  /** Whether the allowed origin depends on the request's, so caches must key on `Origin`. */
  get variesByOrigin(): boolean {
    return this.#origins !== '*';
  }

  /** `Access-Control-Allow-Origin` for a request from `origin`, or undefined when it gets no CORS headers. */
  allowOrigin(origin: string | undefined): string | undefined {
    if (origin === undefined) return undefined;
    if (this.#origins === '*') return '*';
    return this.#origins.has(origin) ? origin : undefined;
  }

  /** The CORS headers of a priced route's answer (402, problem or paid content); empty for other origins. */
  answerHeaders(origin: string | undefined): Record<string, string> {
    const allowed = this.allowOrigin(origin);
    if (allowed === undefined) return {};
    return { 'access-control-allow-origin': allowed, 'access-control-expose-headers': CORS_EXPOSED_HEADERS };
  }

  /**
   * The answer to a preflight for a priced route whose priced methods are `methods`, or undefined when the origin
   * or the method is not allowed (the browser then refuses the request).
   */
  preflightHeaders(
    origin: string | undefined,
    requestMethod: string | undefined,
    methods: readonly string[],
  ): Record<string, string> | undefined {
    const allowed = this.allowOrigin(origin);
    if (allowed === undefined || requestMethod === undefined || !methods.includes(requestMethod.toUpperCase())) {
      return undefined;
    }
    return {
      'access-control-allow-origin': allowed,
      'access-control-allow-methods': methods.join(', '),
      'access-control-allow-headers': CORS_ALLOWED_HEADERS,
      'access-control-max-age': MAX_AGE_SECONDS,
    };
  }
}

function originOf(entry: unknown): string {
  let url: URL | undefined;
  try {
    url = new URL(String(entry));
  } catch {
    url = undefined;
  }
  const bare = url !== undefined && url.pathname === '/' && url.search === '' && url.hash === '';
  if (!url || !/^https?:$/.test(url.protocol) || !bare || url.username !== '' || url.password !== '') {
    throw new TypeError(`cors.origins: ${JSON.stringify(entry)} is not an origin like https://reader.example`);
  }
  return url.origin;
}

function addVary(reply: FastifyReply): void {
  const vary = reply.getHeader('vary');
  if (vary === undefined) reply.header('vary', 'Origin');
  else if (!/(^|,)\s*origin\s*(,|$)/i.test(String(vary))) reply.header('vary', `${String(vary)}, Origin`);
}

function headerOf(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Fastify: CORS on every route with `config.netpay`. Each priced URL gets an OPTIONS route answering preflights
 * (unless the app already routes OPTIONS there), so call this before the priced routes are added; every answer of
 * a priced route carries `Access-Control-Allow-Origin` and exposes `WWW-Authenticate` and `NetPay-Receipt`.
 */
export function corsForPricedRoutes(app: FastifyInstance, options: NetPayCorsOptions): void {
  const policy = new CorsPolicy(options);
  const methodsByUrl = new Map<string, string[]>();

  app.addHook('onRoute', (route: RouteOptions) => {
    if (!route.config?.netpay) return;
    const key = `${route.url}\n${JSON.stringify(route.constraints ?? {})}`;
    let methods = methodsByUrl.get(key);
    if (methods === undefined) {
      methods = [];
      methodsByUrl.set(key, methods);
      const priced = methods;
      if (!app.hasRoute({ method: 'OPTIONS', url: route.url, constraints: route.constraints })) {
        app.route({
          method: 'OPTIONS',
          url: route.url,
          constraints: route.constraints,
          handler: async (request, reply) => {
            const headers = policy.preflightHeaders(
              headerOf(request.headers.origin),
              headerOf(request.headers['access-control-request-method']),
              priced,
            );
            if (policy.variesByOrigin) addVary(reply);
            reply.header('allow', [...priced, 'OPTIONS'].join(', '));
            if (headers) reply.headers(headers);
            return reply.code(204).send();
          },
        });
      }
    }
    for (const method of [route.method].flat()) {
      if (!methods.includes(method.toUpperCase())) methods.push(method.toUpperCase());
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    if (!request.routeOptions.config.netpay) return;
    if (policy.variesByOrigin) addVary(reply);
    reply.headers(policy.answerHeaders(headerOf(request.headers.origin)));
  });
}

/**
 * Express: CORS for the route a `netpayExpress` middleware guards. Returns true when it dealt with the request
 * itself: a preflight it answered, or any other OPTIONS request passed on to the app (never charged). For
 * preflights to reach it, mount the same middleware for OPTIONS: `app.options(path, paid)`.
 */
export function corsForExpressRoute(
  options: NetPayCorsOptions,
): (req: Request, res: Response, next: NextFunction) => boolean {
  const policy = new CorsPolicy(options);
  return (req, res, next) => {
    if (policy.variesByOrigin) res.vary('Origin');
    const origin = req.get('origin');
    if (req.method !== 'OPTIONS') {
      for (const [name, value] of Object.entries(policy.answerHeaders(origin))) res.setHeader(name, value);
      return false;
    }
    const requestMethod = req.get('access-control-request-method');
    // Which methods the route prices is the app's routing, not this middleware's: the preflight is allowed the
    // method it asks for, and the answer to that request is then charged as usual.
    const headers = requestMethod
      ? policy.preflightHeaders(origin, requestMethod, [requestMethod.toUpperCase()])
      : undefined;
    if (headers === undefined) {
      next();
      return true;
    }
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.status(204).end();
    return true;
  };
}
