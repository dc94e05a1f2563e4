import type { FastifyInstance } from 'fastify';

export interface CorsOptions {
  /** Path prefixes (or exact paths) open to scripts of any origin, e.g. `['/api/v1/', '/.well-known/netpay']`. */
  paths: readonly string[];
  methods: readonly string[];
  /** Request headers a script may send. */
  allowHeaders: readonly string[];
  /** Response headers a script may read beyond the CORS-safelisted ones. */
  exposeHeaders: readonly string[];
  /** How long a browser may cache a preflight answer. */
  maxAgeSeconds?: number;
}

/**
 * Opens an API to browser scripts of any origin. The API authenticates with bearer tokens only, never cookies, so
 * `Access-Control-Allow-Origin: *` without credentials is exactly right: a page can call it with a token it holds,
 * and a browser never attaches the user's cookies. Preflights (OPTIONS with Access-Control-Request-Method) are
 * answered 204 for the listed paths (in `onRequest`, which also runs for the not-found handler, so no OPTIONS routes
 * are needed); other paths answer no CORS headers and so stay same-origin.
 *
 * @example
 * openToBrowsers(app, { paths: ['/api/v1/'], methods: ['GET', 'POST'], allowHeaders: ['Authorization'], exposeHeaders: [] });
 */
export function openToBrowsers(app: FastifyInstance, options: CorsOptions): void {
  const covered = (url: string) => {
    const path = url.split('?')[0] ?? '';
    return options.paths.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p));
  };
  const allowMethods = options.methods.join(', ');
  const allowHeaders = options.allowHeaders.join(', ');
  const exposeHeaders = options.exposeHeaders.join(', ');
  const maxAge = String(options.maxAgeSeconds ?? 600);

  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.origin === undefined || !covered(request.url)) return;
    reply.header('access-control-allow-origin', '*');
    if (exposeHeaders) reply.header('access-control-expose-headers', exposeHeaders);
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
      reply.header('access-control-allow-methods', allowMethods);
      reply.header('access-control-allow-headers', allowHeaders);
      reply.header('access-control-max-age', maxAge);
      return reply.code(204).send();
    }
  });
}
