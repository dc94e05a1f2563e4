import { ERROR_CODES, type ErrorCode, PROBLEM_CONTENT_TYPE, ProtocolError, problemDetails } from '@netpay/protocol';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { type Logger, pino } from 'pino';
import { Metrics } from './metrics.ts';
import { REQUEST_ID_HEADER, requestIdFrom, runInRequestContext } from './request-context.ts';
import { DEFAULT_PAGE_CSP, setSecurityHeaders } from './security-headers.ts';

export interface ServiceOptions {
  /** Service name for logs and metrics. */
  name: string;
  logger?: Logger;
  /** Largest request body accepted; anything larger is a 413 problem before it is parsed. */
  bodyLimitBytes?: number;
  /** The registry the edge times requests into; default a new one for `name`. */
  metrics?: Metrics;
  /**
   * Behind a TLS-terminating proxy: trust its X-Forwarded-For/-Proto (true, or the proxy's addresses or CIDR
   * ranges, comma-separated or as a list), so client addresses, `request.protocol` (and with it HSTS) and Secure
   * cookies are right.
   */
  trustProxy?: boolean | string | string[];
  /** The Content-Security-Policy of HTML answers whose route set none (default `DEFAULT_PAGE_CSP`). */
  pageContentSecurityPolicy?: string;
  /**
   * Makes each request's id readable anywhere in its work (`currentRequestId()`), for a service that passes it on
   * to the services it calls (the broker to the bank). Off unless asked for: on Node 20 the AsyncLocalStorage behind
   * it installs promise hooks that tax every promise of the process, and a vendor's paid answer, measured side by
   * side, took 40.6 µs of CPU with it and 34.6 without (14 % of its throughput). The id is echoed and logged either
   * way.
   */
  requestContext?: boolean;
}

/** A route as it was declared on the app (HEAD routes Fastify adds for GET are left out). */
export interface DeclaredRoute {
  method: string;
  url: string;
}

/**
 * `NETPAY_TRUST_PROXY`, for operators behind a TLS-terminating proxy: `true`, or the proxy's addresses or CIDR
 * ranges, comma-separated. Unset, empty or `false`: trust nobody (X-Forwarded-* ignored, no HSTS on plain http).
 *
 * @example
 * trustProxyFromEnv('10.0.0.0/8,127.0.0.1'); // '10.0.0.0/8,127.0.0.1'
 */
export function trustProxyFromEnv(value: string | undefined): boolean | string {
  const v = value?.trim() ?? '';
  if (v === '' || v === 'false') return false;
  return v === 'true' ? true : v;
}

/** A pino logger; level from NETPAY_LOG_LEVEL (default info, silent under tests unless asked). */
export function createLogger(name: string, level = process.env.NETPAY_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { service: name } });
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
    /** Every route declared on the app, for tests that hold it to its route table. */
    declaredRoutes: readonly DeclaredRoute[];
  }
}

/**
 * A Fastify instance with NetPay's edge rules: every error leaves as an RFC 9457 problem with a
 * registered code, unexpected errors are logged with their cause and shown only as `internal_error`,
 * bodies are bounded, every request is timed into the service's Prometheus registry (served by `listenAdmin`
 * on its own port, never here), every answer carries the security headers (`setSecurityHeaders`), and every
 * request has an id: the caller's well-formed `X-Request-Id` or a new one, echoed on the answer, logged as
 * `reqId` and, with `requestContext`, readable anywhere in the request's work through `currentRequestId()`.
 *
 * Handlers validate inputs themselves with `parseWire` from the protocol package, so the same
 * schema that types a message also rejects it: Fastify's own Ajv pass is not used for bodies.
 */
export function createService(options: ServiceOptions): FastifyInstance {
  const logger = options.logger ?? createLogger(options.name);
  const metrics = options.metrics ?? new Metrics(options.name);
  const pageCsp = options.pageContentSecurityPolicy ?? DEFAULT_PAGE_CSP;
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: options.bodyLimitBytes ?? 64 * 1024,
    trustProxy: options.trustProxy ?? trustProxyFromEnv(process.env.NETPAY_TRUST_PROXY),
    // The id is checked before it is trusted (requestIdFrom), so Fastify must not take the header as it is.
    requestIdHeader: false,
    genReqId: (raw) => requestIdFrom(raw.headers[REQUEST_ID_HEADER]),
    // One structured line per request comes from the onResponse hook below, with the route and timing.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
  });
  app.decorate('metrics', metrics);
  const declared: DeclaredRoute[] = [];
  app.decorate('declaredRoutes', declared);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') declared.push({ method, url: route.url });
    }
  });

  // Callback hooks, so the rest of the request runs inside the context; entered again before the handler because
  // body parsing continues from the socket's events, outside it.
  const requestContext = options.requestContext === true;
  app.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    if (requestContext) runInRequestContext({ requestId: request.id }, done);
    else done();
  });
  if (requestContext) {
    app.addHook('preHandler', (request, _reply, done) => {
      runInRequestContext({ requestId: request.id }, done);
    });
  }

  app.addHook('onSend', async (request, reply, payload) => {
    setSecurityHeaders(reply, { https: request.protocol === 'https', pageCsp });
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequestDuration.observe(
      { method: request.method, route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    request.log.info(
      { method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    );
  });

  app.setErrorHandler((error, request, reply) => {
    const problem = toProblem(error);
    if (problem.status >= 500 && !(error instanceof ProtocolError)) {
      request.log.error({ err: error }, 'unexpected error');
    }
    return sendProblemObject(reply, problem);
  });

  app.setNotFoundHandler((request, reply) => {
    return sendProblem(reply, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  // A pino Logger is a FastifyBaseLogger; the generic only records which one, and callers need not care.
  return app as unknown as FastifyInstance;
}

type Problem = ReturnType<typeof problemDetails>;

function toProblem(error: unknown): Problem {
  if (error instanceof ProtocolError) return problemDetails(error.code, error.detail, error.extra, error.status);
  const e = error as { statusCode?: number; code?: string; message?: string };
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    const byStatus: Record<number, ErrorCode> = {
      400: 'bad_request',
      401: 'unauthorized',
      403: 'forbidden',
      404: 'not_found',
      405: 'method_not_allowed',
      413: 'payload_too_large',
      415: 'unsupported_media_type',
      429: 'rate_limited',
    };
    const code = byStatus[status] ?? 'bad_request';
    // Fastify's own 4xx messages (bad JSON, too large, wrong media type) are safe to show.
    return problemDetails(code, e.message);
  }
  return problemDetails('internal_error', 'an unexpected error occurred; it has been logged');
}

/** Sends a registered problem; `extra` members are merged into the body as RFC 9457 extensions. */
export function sendProblem(
  reply: FastifyReply,
  code: ErrorCode,
  detail?: string,
  extra?: Record<string, unknown>,
  status?: number,
): FastifyReply {
  return sendProblemObject(reply, problemDetails(code, detail, extra, status));
}

function sendProblemObject(reply: FastifyReply, problem: Problem): FastifyReply {
  // A problem that says when to come back says it in the header too (RFC 9110 §10.2.3), for clients that only read it.
  const retryAfter = (problem as { retryAfter?: unknown }).retryAfter;
  if (Number.isSafeInteger(retryAfter) && (retryAfter as number) >= 0) reply.header('retry-after', String(retryAfter));
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem);
}

/** The client address used for rate limits. */
export function clientKey(request: FastifyRequest): string {
  return request.ip;
}

export { ERROR_CODES };
