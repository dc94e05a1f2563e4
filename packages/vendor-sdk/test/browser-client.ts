/**
 * A tiny browser for connect tests: fetch with manual redirects and one cookie jar for 127.0.0.1 (browsers share
 * cookies across ports of a host, so the broker's and the vendors' cookies all travel together, as for real).
 */
export interface Page {
  url: string;
  status: number;
  headers: Headers;
  text: string;
  location: string | null;
  setCookies: string[];
}

export class Browser {
  readonly jar = new Map<string, string>();

  cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(method: string, url: string, form?: Record<string, string>): Promise<Page> {
    const headers: Record<string, string> = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };
    const cookie = this.cookieHeader();
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(url, { method, headers, redirect: 'manual', ...(body ? { body } : {}) });
    const setCookies = res.headers.getSetCookie();
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';');
      const eq = (pair ?? '').indexOf('=');
      const name = (pair ?? '').slice(0, eq).trim();
      const value = (pair ?? '').slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v] = a.trim().split('=');
        return k?.toLowerCase() === 'max-age' && Number(v) <= 0;
      });
      if (expired || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    const location = res.headers.get('location');
    return {
      url,
      status: res.status,
      headers: res.headers,
      text: await res.text(),
      location: location ? new URL(location, url).toString() : null,
      setCookies,
    };
  }

  get(url: string): Promise<Page> {
    return this.request('GET', url);
  }

  post(url: string, form: Record<string, string>): Promise<Page> {
    return this.request('POST', url, form);
  }

  /** GET, then follow redirects (GET) up to `max` times; every hop is returned, the last one last. */
  async follow(url: string, max = 6): Promise<Page[]> {
    const hops: Page[] = [];
    let next: string | null = url;
    while (next && hops.length <= max) {
      const page = await this.get(next);
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
