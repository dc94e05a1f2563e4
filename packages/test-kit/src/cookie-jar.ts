/**
 * One cookie jar for every test client that plays a browser without being one: name to value, as a Map (tests read,
 * plant and steal cookies with get/set/has), fed by the Set-Cookie lines of each answer. Browsers share cookies
 * across the ports of a host, so one jar per 127.0.0.1 is what a real browser would hold.
 */
export class CookieJar extends Map<string, string> {
  /** The Cookie request header for everything in the jar, or '' when it is empty. */
  header(): string {
    return [...this].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** Takes an answer's Set-Cookie lines: a value is stored, an empty or expired one removes the cookie. */
  store(setCookies: readonly string[], now = Date.now()): void {
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';');
      const eq = (pair ?? '').indexOf('=');
      if (eq < 0) continue;
      const name = (pair ?? '').slice(0, eq).trim();
      const value = (pair ?? '').slice(eq + 1).trim();
      if (value === '' || expired(attrs, now)) this.delete(name);
      else this.set(name, value);
    }
  }
}

function expired(attributes: readonly string[], now: number): boolean {
  return attributes.some((a) => {
    const eq = a.indexOf('=');
    const key = (eq < 0 ? a : a.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? '' : a.slice(eq + 1).trim();
    if (key === 'max-age') return Number(value) <= 0;
    if (key === 'expires') return Date.parse(value) <= now;
    return false;
  });
}
