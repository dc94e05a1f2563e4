/**
 * §7 v1.1: a server-side wallet pays only for what the reader asked for on this site. A browser says where a
 * request comes from in `Sec-Fetch-Site`; a link on another site (or a page that navigates the reader here) is
 * `cross-site`, and must never spend the reader's money. These are the pure rules; the adapters pass the headers.
 */

/** The request headers the rules look at. */
export interface RequestOrigin {
  /** `Sec-Fetch-Site`: `same-origin`, `same-site`, `cross-site` or `none` (typed URL, bookmark). */
  secFetchSite?: string | undefined;
  /** `Sec-Fetch-Mode`: `navigate`, `cors`, `no-cors` (an image, a script), `same-origin`, `websocket`. */
  secFetchMode?: string | undefined;
  /** `Sec-Fetch-Dest`: `document`, `iframe`, `image`, `script`, `style`, `empty` (a page's own fetch), … */
  secFetchDest?: string | undefined;
  /** `Sec-Purpose` (or the older `Purpose`): `prefetch`, `prefetch;prerender` when the browser only guesses. */
  secPurpose?: string | undefined;
  referer?: string | undefined;
  /** `Accept`: a browser's navigation asks for `text/html`; an image, a script or a style sheet does not. */
  accept?: string | undefined;
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

/** Destinations a reader opens to read: a page, a frame, or the page's own script fetching it (`empty`). */
const READ_DESTINATIONS = new Set(['document', 'iframe', 'frame', 'empty']);

/**
 * Whether a GET may be paid from the session's wallet: `Sec-Fetch-Site` is `same-origin` or `none`; a browser too
 * old to send it must show a `Referer` on this origin. `same-site` is not enough: another origin of the site (a
 * subdomain) is another party. And it must be the reader asking: a prefetch or prerender (the browser guessing from
 * the address bar or a hint), a subresource (`<img src>` of a paid URL, which anyone who can put an image in a
 * comment on the site could plant) or a `no-cors` request never pays, whatever its origin.
 *
 * @example
 * sameSiteNavigation({ secFetchSite: 'cross-site' }, 'https://news.example'); // false
 * sameSiteNavigation({ secFetchSite: 'same-origin', secFetchDest: 'image' }, 'https://news.example'); // false
 * sameSiteNavigation({ referer: 'https://news.example/' }, 'https://news.example'); // true
 */
export function sameSiteNavigation(request: RequestOrigin, siteOrigin: string): boolean {
  if (request.secPurpose && /prefetch|prerender/i.test(request.secPurpose)) return false;
  const dest = request.secFetchDest?.trim().toLowerCase();
  if (dest && !READ_DESTINATIONS.has(dest)) return false;
  if (request.secFetchMode?.trim().toLowerCase() === 'no-cors') return false;
  const site = request.secFetchSite?.trim().toLowerCase();
  if (site) return site === 'same-origin' || site === 'none';
  // A browser without Fetch Metadata: a `Referer` on this origin, and a request for a page (an `<img>` of a paid URL
  // on the site's own page also carries its Referer, but never asks for text/html).
  return originOf(request.referer) === siteOrigin && /\btext\/html\b/i.test(request.accept ?? '');
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
