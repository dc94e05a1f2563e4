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
import { type WalletResult, fail, failed, ok } from './wallet-result.ts';

/**
 * The customer side of the broker API (PROTOCOL §3, §7) over an injected `fetch`. Stateless apart from the cached
 * discovery document; the wallet owns the token and passes it in. Every call answers a `WalletResult`: the
 * broker's problem (with its code and status), a malformed answer or an unreachable broker are values.
 */
export class BrokerClient {
  readonly brokerUrl: string;
  readonly #fetch: typeof fetch;
  #discovery: Promise<WalletResult<Discovery>> | undefined;

  constructor(brokerUrl: string, fetchImpl: typeof fetch) {
    this.brokerUrl = brokerUrl.replace(/\/+$/, '');
    this.#fetch = fetchImpl;
  }

  /** `GET {broker}/.well-known/netpay`, cached for the client's life (a failure is not cached). */
  discovery(): Promise<WalletResult<Discovery>> {
    if (!this.#discovery) {
      const pending = this.#json(
        'GET',
        `${this.brokerUrl}/.well-known/netpay`,
        (v) => parseWire(DiscoverySchema, v),
        'discovery',
      );
      this.#discovery = pending;
      pending.then((r) => {
        if (!r.ok && this.#discovery === pending) this.#discovery = undefined;
      });
    }
    return this.#discovery;
  }

  async register(email: string, password: string): Promise<WalletResult<void>> {
    const d = await this.discovery();
    if (!d.ok) return failed(d);
    const sent = await this.#send('POST', `${d.value.api}/customers`, { body: { email, password }, what: 'register' });
    if (!sent.ok) return failed(sent);
    await sent.value.body?.cancel().catch(() => {});
    return ok(undefined);
  }

  async login(email: string, password: string): Promise<WalletResult<string>> {
    const d = await this.discovery();
    if (!d.ok) return failed(d);
    const session = await this.#json(
      'POST',
      `${d.value.api}/sessions`,
      (v) => parseWire(SessionResponseSchema, v),
      'login',
      { body: { email, password } },
    );
    return session.ok ? ok(session.value.token) : failed(session);
  }

  async buyCoin(
    token: string,
    idempotencyKey: string,
    request: BuyCoinRequest,
  ): Promise<WalletResult<BuyCoinResponse>> {
    const d = await this.discovery();
    if (!d.ok) return failed(d);
    return this.#json('POST', `${d.value.api}/coins`, (v) => parseWire(BuyCoinResponseSchema, v), 'buy', {
      token,
      body: request,
      headers: { 'idempotency-key': idempotencyKey },
    });
  }

  async coins(token: string): Promise<WalletResult<CoinList>> {
    const d = await this.discovery();
    if (!d.ok) return failed(d);
    return this.#json('GET', `${d.value.api}/coins`, (v) => parseWire(CoinListSchema, v), 'coins', { token });
  }

  async history(token: string): Promise<WalletResult<History>> {
    const d = await this.discovery();
    if (!d.ok) return failed(d);
    return this.#json('GET', `${d.value.api}/history`, (v) => parseWire(HistorySchema, v), 'history', { token });
  }

  async refund(token: string, chainId: string): Promise<WalletResult<RefundResponse>> {
    const d = await this.discovery();
    if (!d.ok) return failed(d);
    return this.#json(
      'POST',
      `${d.value.api}/coins/${encodeURIComponent(chainId)}/refund`,
      (v) => parseWire(RefundResponseSchema, v),
      'refund',
      { token, body: {} },
    );
  }

  async #send(
    method: string,
    url: string,
    opts: { token?: string; body?: unknown; headers?: Record<string, string>; what: string },
  ): Promise<WalletResult<Response>> {
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
      return fail('network_error', `${opts.what}: cannot reach ${url}`, { cause });
    }
    if (!res.ok) return { ok: false, error: await errorFromResponse(res, opts.what) };
    return ok(res);
  }

  // Takes a parse function rather than a schema so that the wallet depends on @netpay/protocol alone.
  async #json<T>(
    method: string,
    url: string,
    parse: (value: unknown) => T,
    what: string,
    opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<WalletResult<T>> {
    const sent = await this.#send(method, url, { ...opts, what });
    if (!sent.ok) return failed(sent);
    let body: unknown;
    try {
      body = await readJson(sent.value);
    } catch (err) {
      if (err instanceof WalletError) return { ok: false, error: err };
      return fail('network_error', `${what}: the answer from ${url} was cut off`, { cause: err });
    }
    try {
      return ok(parse(body));
    } catch (err) {
      const detail = err instanceof ProtocolError ? err.detail : String(err);
      return fail('invalid_response', `the broker's answer to ${what} does not follow the protocol (${detail})`, {
        cause: err,
      });
    }
  }
}
