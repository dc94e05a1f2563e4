import {
  type AllowanceRequest,
  type AllowanceResponse,
  AllowanceResponseSchema,
  type CheckpointRequest,
  type CheckpointResponse,
  CheckpointResponseSchema,
  type ClaimRequest,
  type ClaimResponse,
  ClaimResponseSchema,
  type ConnectionGrantResponse,
  ConnectionGrantResponseSchema,
  type Discovery,
  DiscoverySchema,
  type ErrorCode,
  isProblem,
  parseWire,
  type RedemptionRequest,
  type RedemptionResponse,
  RedemptionResponseSchema,
  type ReleaseResponse,
  ReleaseResponseSchema,
  type VendorAccount,
  VendorAccountSchema,
  type VendorDirectoryEntry,
  VendorDirectoryEntrySchema,
} from '@netpay/protocol';
import type { TSchema } from '@sinclair/typebox';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** The `fetch` the SDK uses; injectable so tests can fake the network. */
export type FetchLike = typeof fetch;

/**
 * Why a call to another party failed: `unreachable` (network, timeout, 5xx, unparseable answer) or `refused`
 * (a 4xx problem, whose code is kept).
 */
export class RemoteError extends Error {
  readonly kind: 'unreachable' | 'refused';
  readonly status: number;
  readonly code: ErrorCode | undefined;
  readonly body: unknown;
  constructor(kind: 'unreachable' | 'refused', message: string, status = 0, code?: ErrorCode, body?: unknown) {
    super(message);
    this.name = 'RemoteError';
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export interface BrokerClientOptions {
  brokerUrl: string;
  apiKey: string;
  fetch?: FetchLike;
  timeoutMs?: number;
  /** How long discovery and directory entries stay cached. */
  cacheTtlMs?: number;
  now?: () => number;
}

/** The largest JSON answer the SDK reads from another party. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** One HTTP exchange as `requestJson` needs it: the request, then the status and the whole answer as text. */
export type Exchange = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: string | null; timeoutMs: number },
) => Promise<{ status: number; text: string }>;

/** An exchange over an injected `fetch` (tests fake the network this way). */
export function fetchExchange(fetchFn: FetchLike): Exchange {
  return async (url, init) => {
    const res = await fetchFn(url, {
      method: init.method,
      headers: init.headers,
      body: init.body,
      signal: AbortSignal.timeout(init.timeoutMs),
      redirect: 'error',
    });
    const text = await res.text();
    if (text.length > MAX_RESPONSE_BYTES) throw new Error('answer too large');
    return { status: res.status, text };
  };
}

/**
 * The default exchange: node:http(s) on the global agent, whose connections are kept alive. A claim is on the
 * critical path of a reader's first payment, and `fetch` (undici, with its web streams) cost about five times a
 * plain request's round trip on loopback (0.8-2 ms against 0.1-0.35 ms). A redirect is an error, as with
 * `redirect: 'error'`; the timeout covers the whole exchange; an answer over the size limit is cut off.
 */
export const nodeExchange: Exchange = (url, init) =>
  new Promise((resolve, reject) => {
    // The scheme as the URL parser reads it: it is case-insensitive, and `HTTPS://` sent to node:http is refused.
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const headers: Record<string, string | number> = { ...init.headers };
    if (init.body !== null) headers['content-length'] = Buffer.byteLength(init.body);
    const req = send(target, { method: init.method, headers });
    const timer = setTimeout(() => req.destroy(new Error(`timed out after ${init.timeoutMs} ms`)), init.timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        req.destroy(new Error(`redirected (HTTP ${status})`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) req.destroy(new Error('answer too large'));
        else chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('close', () => {
        if (!res.complete) fail(new Error('the connection closed before the answer ended'));
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.end(init.body ?? undefined);
  });

/**
 * Sends a JSON request and parses the answer with a schema. Every failure becomes a `RemoteError`, so callers map
 * "could not reach" and "said no" onto their own problem codes.
 */
export async function requestJson<T extends TSchema>(
  exchange: Exchange,
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: unknown; timeoutMs: number },
  schema: T,
): Promise<import('@sinclair/typebox').Static<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...(init.headers ?? {}) };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let answer: { status: number; text: string };
  try {
    answer = await exchange(url, {
      method: init.method,
      headers,
      body: init.body === undefined ? null : JSON.stringify(init.body),
      timeoutMs: init.timeoutMs,
    });
  } catch (error) {
    throw new RemoteError('unreachable', `${init.method} ${url}: ${(error as Error).message}`);
  }
  // Each exchange refuses an answer over MAX_RESPONSE_BYTES itself (node:http while it reads, before holding it).
  const { status, text } = answer;
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (status < 200 || status > 299) {
    const code = isProblem(json) ? json.code : undefined;
    const kind = status >= 500 || status === 429 ? 'unreachable' : 'refused';
    throw new RemoteError(kind, `${init.method} ${url}: HTTP ${status} ${code ?? ''}`, status, code, json);
  }
  try {
    return parseWire(schema, json);
  } catch (error) {
    throw new RemoteError('unreachable', `${url}: unexpected answer: ${(error as Error).message}`, status);
  }
}

/**
 * The vendor's side of §3 and §5: discovery, the vendor directory, claim, checkpoint, redemptions and the
 * account, each one HTTP call with a timeout. Discovery and directory entries are cached.
 */
export class BrokerClient {
  readonly brokerUrl: string;
  readonly #apiKey: string;
  readonly #exchange: Exchange;
  readonly #timeoutMs: number;
  readonly #cacheTtlMs: number;
  readonly #now: () => number;
  #discovery: { value: Discovery; at: number } | undefined;
  #discovering: Promise<Discovery> | undefined;
  readonly #directory = new Map<string, { value: VendorDirectoryEntry; at: number }>();

  constructor(options: BrokerClientOptions) {
    this.brokerUrl = options.brokerUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#exchange = options.fetch ? fetchExchange(options.fetch) : nodeExchange;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#cacheTtlMs = options.cacheTtlMs ?? 5 * 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** §3 discovery, cached; `refresh` forces a new fetch (after an unknown keyId, say). */
  async discovery(refresh = false): Promise<Discovery> {
    const cached = this.#discovery;
    if (cached && !refresh && this.#now() - cached.at < this.#cacheTtlMs) return cached.value;
    if (!this.#discovering) {
      this.#discovering = requestJson(
        this.#exchange,
        `${this.brokerUrl}/.well-known/netpay`,
        { method: 'GET', timeoutMs: this.#timeoutMs },
        DiscoverySchema,
      )
        .then((value) => {
          this.#discovery = { value, at: this.#now() };
          return value;
        })
        .finally(() => {
          this.#discovering = undefined;
        });
    }
    try {
      return await this.#discovering;
    } catch (error) {
      // A stale discovery beats none when the broker blips; keys rarely change.
      if (cached && !refresh) return cached.value;
      throw error;
    }
  }

  /** The discovery already fetched, if any (no I/O). */
  get cachedDiscovery(): Discovery | undefined {
    return this.#discovery?.value;
  }

  async #api(): Promise<string> {
    return (await this.discovery()).api.replace(/\/+$/, '');
  }

  #auth(): Record<string, string> {
    return { authorization: `Bearer ${this.#apiKey}` };
  }

  /** §3 vendor directory entry, cached; `refresh` forces a new fetch. */
  async vendor(vendorId: string, refresh = false): Promise<VendorDirectoryEntry> {
    const cached = this.#directory.get(vendorId);
    if (cached && !refresh && this.#now() - cached.at < this.#cacheTtlMs) return cached.value;
    const value = await requestJson(
      this.#exchange,
      `${await this.#api()}/vendors/${encodeURIComponent(vendorId)}`,
      { method: 'GET', timeoutMs: this.#timeoutMs },
      VendorDirectoryEntrySchema,
    );
    this.#directory.set(vendorId, { value, at: this.#now() });
    return value;
  }

  /**
   * §5 claim. v1.1: `proof` is the payword the customer presented; a claim that would open a new epoch without
   * one is refused (402 `invalid_payword`).
   */
  async claim(chainId: string, request: ClaimRequest = {}): Promise<ClaimResponse> {
    return requestJson(
      this.#exchange,
      `${await this.#api()}/chains/${encodeURIComponent(chainId)}/claim`,
      { method: 'POST', headers: this.#auth(), body: request, timeoutMs: this.#timeoutMs },
      ClaimResponseSchema,
    );
  }

  /**
   * §7 v1.1 exchanges a connect code for a connection: a chain of the customer's connection to this vendor,
   * already claimed for it (like `claim`), an allowance on it and a refresh token. A used, expired or foreign code
   * is refused with `grant_invalid`; a customer at a limit or with an empty balance with `limit_reached` or
   * `balance_exhausted`.
   */
  async exchangeConnectionGrant(code: string): Promise<ConnectionGrantResponse> {
    return requestJson(
      this.#exchange,
      `${await this.#api()}/wallet-grants/${encodeURIComponent(code)}`,
      { method: 'POST', headers: this.#auth(), timeoutMs: this.#timeoutMs },
      ConnectionGrantResponseSchema,
    );
  }

  /**
   * §7 v1.1 the next allowance of a connection; refused with `connection_revoked`, `limit_reached` or
   * `balance_exhausted` (the last two carry `brokerUrl`).
   */
  async requestAllowance(request: AllowanceRequest): Promise<AllowanceResponse> {
    return requestJson(
      this.#exchange,
      `${await this.#api()}/allowances`,
      { method: 'POST', headers: this.#auth(), body: request, timeoutMs: this.#timeoutMs },
      AllowanceResponseSchema,
    );
  }

  /** §5 checkpoint: renews the lease; v1.1: may carry the release the epoch started from. */
  async checkpoint(chainId: string, point: CheckpointRequest): Promise<CheckpointResponse> {
    return requestJson(
      this.#exchange,
      `${await this.#api()}/chains/${encodeURIComponent(chainId)}/checkpoint`,
      { method: 'POST', headers: this.#auth(), body: point, timeoutMs: this.#timeoutMs },
      CheckpointResponseSchema,
    );
  }

  /** §5 redemption, with the caller's idempotency key. */
  async redeem(idempotencyKey: string, body: RedemptionRequest): Promise<RedemptionResponse> {
    return requestJson(
      this.#exchange,
      `${await this.#api()}/redemptions`,
      {
        method: 'POST',
        headers: { ...this.#auth(), 'idempotency-key': idempotencyKey },
        body,
        timeoutMs: Math.max(this.#timeoutMs, 30_000),
      },
      RedemptionResponseSchema,
    );
  }

  /** §5 the vendor's account at the broker. */
  async account(): Promise<VendorAccount> {
    return requestJson(
      this.#exchange,
      `${await this.#api()}/vendor/account`,
      { method: 'GET', headers: this.#auth(), timeoutMs: this.#timeoutMs },
      VendorAccountSchema,
    );
  }

  /** §6 asks a previous holder for its release statement (no broker credentials are sent). */
  async requestRelease(releaseUrl: string, holder: unknown): Promise<ReleaseResponse> {
    return requestJson(
      this.#exchange,
      releaseUrl,
      { method: 'POST', body: { holder }, timeoutMs: this.#timeoutMs },
      ReleaseResponseSchema,
    );
  }
}
