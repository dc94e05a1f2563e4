import { CookieJar } from '@netpay/test-kit/cookie-jar';

/**
 * A tiny browser for the web-page tests: fetch with manual redirects and a cookie jar, so each test sees
 * exactly the status, headers and Set-Cookie attributes a real browser would get.
 */
export interface WebReply {
  status: number;
  headers: Headers;
  text: string;
  location: string | null;
  /** Raw Set-Cookie header lines of this response. */
  setCookies: string[];
}

export class WebClient {
  readonly jar = new CookieJar();
  /**
   * Whether a GET is the reader's click (`Sec-Fetch-User: ?1`, as a browser sends on a navigation the reader
   * started): true unless a test plays a site sending the browser somewhere by itself.
   */
  clicked = true;
  constructor(readonly base: string) {}

  cookieHeader(): string {
    return this.jar.header();
  }

  async request(method: string, path: string, form?: Record<string, string>): Promise<WebReply> {
    const headers: Record<string, string> = { accept: 'text/html' };
    const cookie = this.cookieHeader();
    if (cookie) headers.cookie = cookie;
    if (method === 'GET' && this.clicked) headers['sec-fetch-user'] = '?1';
    let body: string | undefined;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(this.base + path, { method, headers, redirect: 'manual', ...(body ? { body } : {}) });
    const setCookies = res.headers.getSetCookie();
    this.jar.store(setCookies);
    return {
      status: res.status,
      headers: res.headers,
      text: await res.text(),
      location: res.headers.get('location'),
      setCookies,
    };
  }

  get(path: string): Promise<WebReply> {
    return this.request('GET', path);
  }

  post(path: string, form: Record<string, string>): Promise<WebReply> {
    return this.request('POST', path, form);
  }
}

/** The value attribute of the first input named `name` in a page. */
export function inputValue(html: string, name: string): string | undefined {
  const re = new RegExp(`<input[^>]*name="${name}"[^>]*>`, 'g');
  for (const tag of html.match(re) ?? []) {
    const value = /value="([^"]*)"/.exec(tag);
    if (value) return decodeEntities(value[1] ?? '');
  }
  return undefined;
}

export function decodeEntities(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#96;/g, '`')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** The CSRF token of the first form in a page. */
export function csrfOf(html: string): string {
  const token = inputValue(html, 'csrf');
  if (!token) throw new Error(`no csrf field in page:\n${html.slice(0, 500)}`);
  return token;
}

/** The Set-Cookie line for one cookie. */
export function setCookieLine(reply: WebReply, name: string): string | undefined {
  return reply.setCookies.find((l) => l.startsWith(`${name}=`));
}
