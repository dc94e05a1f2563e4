/**
 * The Content-Security-Policy of anything that is not a page (JSON, problems, text): nothing may load from it and
 * nothing may frame it.
 */
export const NON_PAGE_CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * The default Content-Security-Policy of a page: no scripts, no plugins, styles from the page itself or the site,
 * images from the site, forms to the site, no framing. A service with stricter pages passes its own.
 */
export const DEFAULT_PAGE_CSP =
  "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** One year, the usual HSTS lifetime; sent only on answers that came over https. */
export const HSTS = 'max-age=31536000; includeSubDomains';

/** The headers of one response, as an edge needs to read and set them. */
export interface HeaderTarget {
  hasHeader(name: string): boolean;
  getHeader(name: string): unknown;
  header(name: string, value: string): unknown;
}

/**
 * Sets the security headers every answer of every service carries (helmet's defaults where they apply to an API):
 * nosniff, no referrer, no framing, a CSP chosen by the content type unless the route set its own, and HSTS
 * when the request came over https (`request.protocol`, which honours X-Forwarded-Proto only with `trustProxy`).
 *
 * @example
 * app.addHook('onSend', async (request, reply, payload) => {
 *   setSecurityHeaders(reply, { https: request.protocol === 'https', pageCsp: DEFAULT_PAGE_CSP });
 *   return payload;
 * });
 */
export function setSecurityHeaders(reply: HeaderTarget, options: { https: boolean; pageCsp: string }): void {
  reply.header('x-content-type-options', 'nosniff');
  if (!reply.hasHeader('referrer-policy')) reply.header('referrer-policy', 'no-referrer');
  if (!reply.hasHeader('x-frame-options')) reply.header('x-frame-options', 'DENY');
  if (!reply.hasHeader('content-security-policy')) {
    const type = String(reply.getHeader('content-type') ?? '');
    reply.header('content-security-policy', type.startsWith('text/html') ? options.pageCsp : NON_PAGE_CSP);
  }
  if (options.https) reply.header('strict-transport-security', HSTS);
}
