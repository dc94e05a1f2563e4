import { formatAuthorization, type PaywordChain } from '@netpay/protocol';

/** The sandbox bank's test cards (its card rules decide the outcome). */
export const GOOD_CARD = { number: '4242 4242 4242 4242', expiry: '12/30', cvc: '123' };
export const DECLINED_CARD = { number: '4000 0000 0000 0002', expiry: '12/30', cvc: '123' };
export const NO_FUNDS_CARD = { number: '4000 0000 0000 9995', expiry: '12/30', cvc: '123' };

/** An HTTP answer as tests look at it: JSON parsed when it is JSON, the text otherwise. */
export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON members
  body: any;
}

export interface CallOptions {
  body?: unknown;
  /** Sent as is instead of JSON-encoding `body`. */
  raw?: string;
  contentType?: string;
  /** A bearer token (customer session, vendor or bank key). */
  token?: string;
  /** The Idempotency-Key header. */
  key?: string;
}

/** One JSON API call. */
export async function call(baseUrl: string, method: string, path: string, options: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.key !== undefined) headers['idempotency-key'] = options.key;
  let payload: string | undefined;
  if (options.raw !== undefined) payload = options.raw;
  else if (options.body !== undefined) payload = JSON.stringify(options.body);
  if (payload !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const res = await fetch(baseUrl + path, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, text, body };
}

/** An answer of a vendor's route: `body` is undefined when it is not JSON. */
export interface Got {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON members
  body: any;
  text: string;
}

/** GET a URL, optionally paying with w_index of a chain (or another payword claimed to be it). */
export async function get(
  url: string,
  pay?: { chain: PaywordChain; index: number; payword?: string },
  headers: Record<string, string> = {},
): Promise<Got> {
  const h: Record<string, string> = { accept: 'application/json', ...headers };
  if (pay) {
    h.authorization = formatAuthorization({
      chain: pay.chain.chainIdB64,
      index: pay.index,
      payword: pay.payword ?? pay.chain.b64(pay.index),
    });
  }
  const res = await fetch(url, { headers: h });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body, text };
}
