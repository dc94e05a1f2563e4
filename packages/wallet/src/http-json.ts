import { isProblem } from '@netpay/protocol';
import { WalletError } from './wallet-error.ts';

/** The largest JSON answer the wallet reads from a broker or vendor (bound before parsing). */
export const MAX_JSON_BYTES = 4 * 1024 * 1024;

/** Reads a response body as text, refusing bodies above `maxBytes`. */
export async function readBoundedText(res: Response, maxBytes = MAX_JSON_BYTES): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new WalletError('invalid_response', `response body larger than ${maxBytes} bytes`);
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new WalletError('invalid_response', `response body larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** Parses a bounded JSON body; undefined when it is not JSON. */
export async function readJson(res: Response, maxBytes = MAX_JSON_BYTES): Promise<unknown> {
  const text = await readBoundedText(res, maxBytes);
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The problem body of a failed response, if it carries a NetPay problem. Reads a clone, leaving `res` unread. */
export async function peekProblem(res: Response): Promise<Record<string, unknown> | undefined> {
  const type = res.headers.get('content-type') ?? '';
  if (!type.includes('json')) return undefined;
  try {
    const body = await readJson(res.clone(), 64 * 1024);
    return isProblem(body) ? (body as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Turns a failed broker answer into a WalletError carrying the problem's code. */
export async function errorFromResponse(res: Response, what: string): Promise<WalletError> {
  let body: unknown;
  try {
    body = await readJson(res, 64 * 1024);
  } catch {
    body = undefined;
  }
  if (isProblem(body)) {
    const problem = body as Record<string, unknown> & { code: string; title: string; detail?: string };
    const text = `${what}: ${problem.detail ?? problem.title}`;
    return new WalletError(problem.code as never, text, { status: res.status, problem });
  }
  return new WalletError('broker_error', `${what}: HTTP ${res.status}`, { status: res.status });
}
