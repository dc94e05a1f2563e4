import { CookieJar } from '@netpay/test-kit/cookie-jar';

/**
 * A tiny browser for connect tests: fetch with manual redirects and one cookie jar for 127.0.0.1 (browsers share
 * cookies across ports of a host, so the broker's and the vendors' cookies all travel together, as for real). It
 * sends `Sec-Fetch-Site` as a browser does for navigations: `none` for a typed URL, otherwise how the page the
 * request comes from (the last page shown) relates to the target, and across a redirect chain the most distant
 * relation of any hop.
 */
export interface Page {
  url: string;
  status: number;
  headers: Headers;
  text: string;
  location: string | null;
  setCookies: string[];
}

export type FetchSite = 'none' | 'same-origin' | 'same-site' | 'cross-site';

const DISTANCE: Record<FetchSite, number> = { none: 0, 'same-origin': 1, 'same-site': 2, 'cross-site': 3 };

/** How a page at `from` relates to `to`, as `Sec-Fetch-Site` says it (a site here is the scheme and host). */
export function relation(from: string | undefined, to: string): FetchSite {
  if (!from) return 'none';
  const a = new URL(from);
  const b = new URL(to);
  if (a.origin === b.origin) return 'same-origin';
  return a.protocol === b.protocol && a.hostname === b.hostname ? 'same-site' : 'cross-site';
}

function farther(a: FetchSite, b: FetchSite): FetchSite {
  return DISTANCE[a] >= DISTANCE[b] ? a : b;
}

/** How a request is made: typed into the address bar, or from a page (by default the one shown). */
export interface RequestOptions {
  /** Force a value (`cross-site`: a link on another site); null sends no header (an old browser). */
  site?: FetchSite | null;
  /** The page the request comes from, instead of the one shown. */
  from?: string;
  /** Sends `Referer` (the page the request comes from). */
  referer?: boolean;
  /** The reader's own click started it: `Sec-Fetch-User: ?1`, kept across the redirects it leads to. */
  user?: boolean;
}

export class Browser {
  readonly jar = new CookieJar();
  /** The page shown: the last answer that was not a redirect. */
  at: string | undefined;
  /** The redirect being followed: where it goes, and the farthest relation of its chain so far. */
  #redirect: { location: string; initiator: string | undefined; site: FetchSite; user: boolean } | undefined;

  cookieHeader(): string {
    return this.jar.header();
  }

  async request(
    method: string,
    url: string,
    form?: Record<string, string>,
    options: RequestOptions = {},
  ): Promise<Page> {
    const headers: Record<string, string> = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };
    const cookie = this.cookieHeader();
    if (cookie) headers.cookie = cookie;
    const hop = this.#redirect?.location === url && method === 'GET' ? this.#redirect : undefined;
    const initiator = hop ? hop.initiator : (options.from ?? this.at);
    let site = relation(initiator, url);
    if (hop) site = farther(hop.site, site);
    const user = hop ? hop.user : options.user === true;
    if (user && method === 'GET') headers['sec-fetch-user'] = '?1';
    if (options.site !== undefined) {
      if (options.site !== null) headers['sec-fetch-site'] = options.site;
      if (options.site !== null) site = options.site;
    } else {
      headers['sec-fetch-site'] = site;
    }
    if (options.referer && initiator) headers.referer = initiator;
    if (method === 'POST' && initiator && options.site !== null) headers.origin = new URL(initiator).origin;
    let body: string | undefined;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(url, { method, headers, redirect: 'manual', ...(body ? { body } : {}) });
    const setCookies = res.headers.getSetCookie();
    this.jar.store(setCookies);
    const location = res.headers.get('location');
    const next = location ? new URL(location, url).toString() : null;
    if (res.status >= 300 && res.status < 400 && next) {
      this.#redirect = { location: next, initiator, site, user };
    } else {
      this.#redirect = undefined;
      this.at = url;
    }
    return {
      url,
      status: res.status,
      headers: res.headers,
      text: await res.text(),
      location: next,
      setCookies,
    };
  }

  get(url: string, options?: RequestOptions): Promise<Page> {
    return this.request('GET', url, undefined, options);
  }

  post(url: string, form: Record<string, string>, options?: RequestOptions): Promise<Page> {
    return this.request('POST', url, form, options);
  }

  /** GET, then follow redirects (GET) up to `max` times; every hop is returned, the last one last. */
  async follow(url: string, max = 6, options?: RequestOptions): Promise<Page[]> {
    const hops: Page[] = [];
    let next: string | null = url;
    while (next && hops.length <= max) {
      const page = await this.get(next, hops.length === 0 ? options : undefined);
      hops.push(page);
      next = page.status >= 300 && page.status < 400 ? page.location : null;
    }
    return hops;
  }
}

/** The value attribute of the first input named `name` in a page. */
export function inputValue(html: string, name: string): string | undefined {
  for (const tag of html.match(new RegExp(`<input[^>]*name="${name}"[^>]*>`, 'g')) ?? []) {
    const value = /value="([^"]*)"/.exec(tag);
    if (value) return decode(value[1] ?? '');
  }
  return undefined;
}

/** Every value of the radio inputs named `name`. */
export function radioValues(html: string, name: string): string[] {
  const out: string[] = [];
  for (const tag of html.match(new RegExp(`<input[^>]*name="${name}"[^>]*>`, 'g')) ?? []) {
    const value = /value="([^"]*)"/.exec(tag);
    if (value) out.push(decode(value[1] ?? ''));
  }
  return out;
}

function decode(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
