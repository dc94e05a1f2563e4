import {
  type BuyCoinRequest,
  type BuyCoinResponse,
  BuyCoinResponseSchema,
  type CoinList,
  CoinListSchema,
  type Discovery,
  DiscoverySchema,
  type History,
  HistorySchema,
  ProtocolError,
  type RefundResponse,
  RefundResponseSchema,
  SessionResponseSchema,
  parseWire,
} from '@netpay/protocol';
import { errorFromResponse, readJson } from './http-json.ts';
import { WalletError } from './wallet-error.ts';

/**
 * The customer side of the broker API (PROTOCOL §3, §7) over an injected `fetch`. Stateless apart from the cached
 * discovery document; the wallet owns the token and passes it in.
 */
export class BrokerClient {
  readonly brokerUrl: string;
  readonly #fetch: typeof fetch;
  #discovery: Promise<Discovery> | undefined;

  constructor(brokerUrl: string, fetchImpl: typeof fetch) {
    this.brokerUrl = brokerUrl.replace(/\/+$/, '');
    this.#fetch = fetchImpl;
  }

  /** `GET {broker}/.well-known/netpay`, cached for the client's life (a failure is not cached). */
  discovery(): Promise<Discovery> {
    if (!this.#discovery) {
      this.#discovery = this.#json(
        'GET',
        `${this.brokerUrl}/.well-known/netpay`,
        (v) => parseWire(DiscoverySchema, v),
        'discovery',
      );
      this.#discovery.catch(() => {
        this.#discovery = undefined;
      });
    }
    return this.#discovery;
  }

  async register(email: string, password: string): Promise<void> {
    const api = (await this.discovery()).api;
    await this.#send('POST', `${api}/customers`, { body: { email, password }, what: 'register' });
  }

  async login(email: string, password: string): Promise<string> {
    const api = (await this.discovery()).api;
    return (
      await this.#json('POST', `${api}/sessions`, (v) => parseWire(SessionResponseSchema, v), 'login', {
        body: { email, password },
      })
    ).token;
  }

  async buyCoin(token: string, idempotencyKey: string, request: BuyCoinRequest): Promise<BuyCoinResponse> {
    const api = (await this.discovery()).api;
    return this.#json('POST', `${api}/coins`, (v) => parseWire(BuyCoinResponseSchema, v), 'buy', {
      token,
      body: request,
      headers: { 'idempotency-key': idempotencyKey },
    });
  }

  async coins(token: string): Promise<CoinList> {
    const api = (await this.discovery()).api;
    return this.#json('GET', `${api}/coins`, (v) => parseWire(CoinListSchema, v), 'coins', { token });
  }

  async history(token: string): Promise<History> {
    const api = (await this.discovery()).api;
    return this.#json('GET', `${api}/history`, (v) => parseWire(HistorySchema, v), 'history', { token });
  }

  async refund(token: string, chainId: string): Promise<RefundResponse> {
    const api = (await this.discovery()).api;
    return this.#json(
      'POST',
      `${api}/coins/${encodeURIComponent(chainId)}/refund`,
      (v) => parseWire(RefundResponseSchema, v),
      'refund',
      {
        token,
        body: {},
      },
    );
  }

  async #send(
    method: string,
    url: string,
    opts: { token?: string; body?: unknown; headers?: Record<string, string>; what: string },
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    const init: RequestInit = { method, headers };
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      res = await this.#fetch(url, init);
    } catch (cause) {
      throw new WalletError('network_error', `${opts.what}: cannot reach ${url}`, { cause });
    }
    if (!res.ok) throw await errorFromResponse(res, opts.what);
    return res;
  }

  // Takes a parse function rather than a schema so that the wallet depends on @netpay/protocol alone.
  async #json<T>(
    method: string,
    url: string,
    parse: (value: unknown) => T,
    what: string,
    opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<T> {
    const res = await this.#send(method, url, { ...opts, what });
    const body = await readJson(res);
    try {
      return parse(body);
    } catch (err) {
      const detail = err instanceof ProtocolError ? err.detail : String(err);
      throw new WalletError('invalid_response', `${what}: ${detail}`, { cause: err });
    }
  }
}
