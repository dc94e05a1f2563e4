/** The `Cookie` header as name → value (first occurrence wins); bounded, no decoding surprises. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.slice(0, 8192).split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (name && !out.has(name)) out.set(name, value);
  }
  return out;
}

/** Every value of one cookie name in a `Cookie` header, in order (a browser sends a name twice for two paths). */
export function cookieValues(header: string | undefined, name: string): string[] {
  const out: string[] = [];
  if (!header) return out;
  for (const part of header.slice(0, 8192).split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    out.push(value);
  }
  return out;
}

export interface CookieOptions {
  path: string;
  /** Seconds; 0 deletes the cookie. */
  maxAgeSeconds: number;
  secure: boolean;
}

/**
 * A `Set-Cookie` value: always HttpOnly and SameSite=Lax (the connect callback is a top-level GET from the
 * broker, which Lax lets through; cross-site subrequests get no cookie). Values must be cookie-safe already.
 *
 * @example
 * serializeCookie('np_wallet_session', id, { path: '/', maxAgeSeconds: 86400, secure: false });
 */
export function serializeCookie(name: string, value: string, options: CookieOptions): string {
  if (!/^[A-Za-z0-9_-]+$/.test(name) || !/^[A-Za-z0-9._~-]*$/.test(value)) {
    throw new TypeError(`cookie ${name} has characters that need encoding`);
  }
  let out = `${name}=${value}; Path=${options.path}; Max-Age=${options.maxAgeSeconds}; HttpOnly; SameSite=Lax`;
  if (options.secure) out += '; Secure';
  return out;
}
