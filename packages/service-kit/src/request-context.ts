import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/** The header that carries a request's id in and out of every service, and on to the services it calls. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** The longest request id taken from a caller; longer ones are replaced, never cut. */
export const MAX_REQUEST_ID_LENGTH = 128;

// Letters, digits and a few separators: enough for UUIDs, ULIDs and trace ids, nothing a log line or header
// could be confused by.
const REQUEST_ID = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,${MAX_REQUEST_ID_LENGTH - 1}}$`);

/**
 * The caller's request id when it is well-formed (1-128 of `A-Z a-z 0-9 . _ : -`, starting with a letter or
 * digit), else a new UUID. A malformed id is replaced rather than cleaned, so what is logged is either exactly what
 * the caller sent or ours.
 *
 * @example
 * requestIdFrom('3f2c-9a'); // '3f2c-9a'
 * requestIdFrom('a b'); // a fresh UUID
 */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? undefined : header;
  return value !== undefined && REQUEST_ID.test(value) ? value : randomUUID();
}

/** What a service knows about the request it is working for, wherever the work happens. */
export interface RequestContext {
  requestId: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` (and everything it awaits) as part of the request described by `context`. */
export function runInRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

/**
 * The id of the request the current code works for, or undefined outside a request (a background job). Clients
 * that call another NetPay service send it on as `X-Request-Id`, so one id follows a payment through the logs.
 *
 * @example
 * const id = currentRequestId();
 * await fetch(url, { headers: id ? { [REQUEST_ID_HEADER]: id } : {} });
 */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}

/** `{ 'x-request-id': id }` inside a request, `{}` outside: spread it into an outgoing call's headers. */
export function requestIdHeaders(): Record<string, string> {
  const id = currentRequestId();
  return id === undefined ? {} : { [REQUEST_ID_HEADER]: id };
}
