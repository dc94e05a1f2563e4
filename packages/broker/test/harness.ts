import { createServer } from 'node:net';
import { createBankApp } from '@netpay/bank';
import {
  b64uEncode,
  generateSigningKey,
  type HolderCertificate,
  PaywordChain,
  type ReleaseStatement,
  signRelease,
} from '@netpay/protocol';
import { type Clock, type DatabaseEngine, hashToken, newSecret, openDatabase, rfc3339 } from '@netpay/service-kit';
import { createTestDatabase } from '@netpay/service-kit/testing';
import type { FastifyInstance } from 'fastify';
import { type Logger, pino } from 'pino';
import { createBrokerApp } from '../src/app.ts';
import { audit } from '../src/audit.ts';
import type { BrokerConfig } from '../src/config.ts';
import { HttpBank } from '../src/http-bank.ts';
import type { ReleaseClient } from '../src/release-client.ts';
import type { BrokerSchema } from '../src/schema.ts';
import { registerVendor } from '../src/vendor-registry.ts';

export const GOOD_CARD = { number: '4242 4242 4242 4242', expiry: '12/30', cvc: '123' };
export const DECLINED_CARD = { number: '4000 0000 0000 0002', expiry: '12/30', cvc: '123' };
export const NO_FUNDS_CARD = { number: '4000 0000 0000 9995', expiry: '12/30', cvc: '123' };

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON members
  body: any;
}

export interface CallOptions {
  body?: unknown;
  raw?: string;
  contentType?: string;
  token?: string;
  key?: string;
}

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

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface BankUnderTest {
  url: string;
  apiKey: string;
  faults(settings: { latencyMs?: number; failNext?: number }): Promise<void>;
  clearFaults(): Promise<void>;
  /** The bank's statement lines for the broker merchant. */
  statement(): Promise<Reply>;
  balance(): Promise<number>;
  close(): Promise<void>;
}

/** `logger` lets a test read the bank's log (request ids); silent by default. */
export async function startBank(engine: DatabaseEngine, options: { logger?: Logger } = {}): Promise<BankUnderTest> {
  const testDb = await createTestDatabase(engine);
  // biome-ignore lint/suspicious/noExplicitAny: the bank's schema is its own business
  const database = openDatabase<any>(testDb.url);
  const apiKey = newSecret('bk_');
  const app = createBankApp({
    db: database.db,
    engine,
    logger: options.logger ?? pino({ level: 'silent' }),
    apiKeyHash: hashToken(apiKey),
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    apiKey,
    faults: async (settings) => {
      const r = await call(url, 'POST', '/v1/sandbox/faults', { token: apiKey, body: settings });
      if (r.status >= 300) throw new Error(`faults: ${r.status} ${r.text}`);
    },
    clearFaults: async () => {
      await call(url, 'DELETE', '/v1/sandbox/faults', { token: apiKey });
    },
    statement: () => call(url, 'GET', '/v1/statement', { token: apiKey }),
    balance: async () => Number((await call(url, 'GET', '/v1/balance', { token: apiKey })).body.available),
    close: async () => {
      await app.close();
      await database.close();
      await testDb.drop();
    },
  };
}

export interface TestVendor {
  id: string;
  apiKey: string;
  keyId: string;
  privateSeed: Uint8Array;
  publicKey: string;
  /** Signs a release of `epoch` at (index, payword) to the holder named by `to`. */
  release(to: HolderCertificate, index: number, payword: string, epoch?: number): ReleaseStatement;
}

export interface BrokerUnderTest {
  url: string;
  api: string;
  app: FastifyInstance;
  database: ReturnType<typeof openDatabase<BrokerSchema>>;
  addVendor(id: string, releaseUrl?: string): Promise<TestVendor>;
  /** A new customer with a session token. */
  customer(email?: string): Promise<{ token: string; customerId: string; email: string }>;
  buyCoin(
    token: string,
    options?: { amount?: number; unit?: number; chain?: PaywordChain; key?: string },
  ): Promise<Reply>;
  audit(): Promise<Awaited<ReturnType<typeof audit>>>;
  /** Row counts of every table, to prove a refused request changed nothing. */
  counts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

let customerSeq = 0;

export async function startBroker(
  engine: DatabaseEngine,
  bank: { url: string; apiKey: string },
  options: {
    clock?: Clock;
    config?: Partial<BrokerConfig>;
    bankTimeoutMs?: number;
    releaseClient?: ReleaseClient;
  } = {},
): Promise<BrokerUnderTest> {
  const testDb = await createTestDatabase(engine);
  const database = openDatabase<BrokerSchema>(testDb.url);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const app = await createBrokerApp({
    db: database.db,
    engine,
    bank: new HttpBank({ url: bank.url, apiKey: bank.apiKey, timeoutMs: options.bankTimeoutMs ?? 2000 }),
    logger: pino({ level: process.env.NETPAY_LOG_LEVEL === 'debug' ? 'debug' : 'silent' }),
    config: { publicUrl: url, ...(options.config ?? {}) },
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.releaseClient ? { releaseClient: options.releaseClient } : {}),
  });
  await app.listen({ host: '127.0.0.1', port });
  const api = `${url}/api/v1`;

  const addVendor = async (id: string, releaseUrl = `http://127.0.0.1:9/${id}/release`): Promise<TestVendor> => {
    const key = generateSigningKey();
    const publicKey = b64uEncode(key.publicKey);
    const { apiKey, keyId } = await registerVendor(database.db, {
      id,
      name: `Vendor ${id}`,
      url: `http://127.0.0.1:9/${id}/`,
      releaseUrl,
      publicKey,
    });
    return {
      id,
      apiKey,
      keyId,
      privateSeed: key.privateSeed,
      publicKey,
      release: (to, index, payword, epoch) =>
        signRelease(
          {
            chainId: to.chainId,
            epoch: epoch ?? to.prevEpoch,
            vendorId: id,
            index,
            payword,
            toVendorId: to.vendorId,
            toEpoch: to.epoch,
            keyId,
            releasedAt: rfc3339(new Date()),
          },
          key.privateSeed,
        ),
    };
  };

  const customer = async (email = `c${++customerSeq}-${Date.now()}@example.test`) => {
    const created = await call(api, 'POST', '/customers', { body: { email, password: 'correct horse' } });
    if (created.status !== 201) throw new Error(`customer: ${created.status} ${created.text}`);
    const session = await call(api, 'POST', '/sessions', { body: { email, password: 'correct horse' } });
    if (session.status !== 200) throw new Error(`session: ${session.status} ${session.text}`);
    return { token: session.body.token as string, customerId: created.body.customerId as string, email };
  };

  let keySeq = 0;
  const buyCoin = (
    token: string,
    o: { amount?: number; unit?: number; chain?: PaywordChain; key?: string } = {},
  ): Promise<Reply> =>
    call(api, 'POST', '/coins', {
      token,
      key: o.key ?? `buy-${++keySeq}-${Date.now()}`,
      body: {
        amount: o.amount ?? 100,
        ...(o.unit !== undefined ? { unit: o.unit } : {}),
        ...(o.chain ? { chainId: o.chain.chainIdB64, anchor: o.chain.anchorB64 } : {}),
        payment: { card: GOOD_CARD },
      },
    });

  const counts = async () => {
    const tables = [
      'chains',
      'epochs',
      'redeemed_ranges',
      'redemptions',
      'coin_purchases',
      'conflicts',
      'payouts',
      'ledger_entries',
      'postings',
      'customers',
      'sessions',
    ] as const;
    const out: Record<string, number> = {};
    for (const t of tables) {
      const row = await database.db
        .selectFrom(t)
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirstOrThrow();
      out[t] = Number(row.n);
    }
    return out;
  };

  return {
    url,
    api,
    app,
    database,
    addVendor,
    customer,
    buyCoin,
    audit: () => audit(database.db),
    counts,
    close: async () => {
      await app.close();
      await database.close();
      await testDb.drop();
    },
  };
}

/** A claim body carrying the customer's payword w_k as proof of payment (§5 v1.1). */
export function proof(chain: PaywordChain, index: number): { proof: { index: number; payword: string } } {
  return { proof: { index, payword: chain.b64(index) } };
}

/** Redemption item helper. */
export function item(
  chain: PaywordChain,
  epoch: number,
  from: number,
  to: number,
  release?: ReleaseStatement,
  ownRelease?: ReleaseStatement,
): Record<string, unknown> {
  return {
    chainId: chain.chainIdB64,
    epoch,
    from: { index: from, payword: chain.b64(from), ...(release ? { release } : {}) },
    to: { index: to, payword: chain.b64(to), ...(ownRelease ? { release: ownRelease } : {}) },
  };
}

export { PaywordChain };
