/**
 * §7 v1.1: a server-side wallet pays only for what the reader asked for on this site. A browser says where a
 * request comes from in `Sec-Fetch-Site`; a link on another site (or a page that navigates the reader here) is
 * `cross-site`, and must never spend the reader's money. These are the pure rules; the adapters pass the headers.
 */

/** The request headers the rules look at. */
export interface RequestOrigin {
  /** `Sec-Fetch-Site`: `same-origin`, `same-site`, `cross-site` or `none` (typed URL, bookmark). */
  secFetchSite?: string | undefined;
  referer?: string | undefined;
  /** `Origin` (sent with a POST). */
  origin?: string | undefined;
}

function originOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/**
 * Whether a GET may be paid from the session's wallet: `Sec-Fetch-Site` is `same-origin` or `none`; a browser too
 * old to send it must show a `Referer` on this origin. `same-site` is not enough: another origin of the site (a
 * subdomain) is another party.
 *
 * @example
 * sameSiteNavigation({ secFetchSite: 'cross-site' }, 'https://news.example'); // false
 * sameSiteNavigation({ referer: 'https://news.example/' }, 'https://news.example'); // true
 */
export function sameSiteNavigation(request: RequestOrigin, siteOrigin: string): boolean {
  const site = request.secFetchSite?.trim().toLowerCase();
  if (site) return site === 'same-origin' || site === 'none';
  return originOf(request.referer) === siteOrigin;
}

/**
 * Whether a form POST comes from this origin: `Sec-Fetch-Site: same-origin`, or (older browsers) an `Origin`, else
 * a `Referer`, on this origin.
 *
 * @example
 * sameOriginPost({ secFetchSite: 'same-origin' }, 'https://news.example'); // true
 */
export function sameOriginPost(request: RequestOrigin, siteOrigin: string): boolean {
  const site = request.secFetchSite?.trim().toLowerCase();
  if (site) return site === 'same-origin';
  if (request.origin && request.origin !== 'null') return request.origin === siteOrigin;
  return originOf(request.referer) === siteOrigin;
}
