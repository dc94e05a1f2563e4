import { randomBytes } from 'node:crypto';
import { type DatabaseEngine, ManualClock, newSecret, openDatabase } from '@netpay/service-kit';
import { createTestDatabase } from '@netpay/service-kit/testing';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { createBankApp } from '../src/app.ts';
import { type BankSchema, ensureMerchant } from '../src/store.ts';

/** A test card that succeeds, valid until 2030 (the harness clock is 2026-11-24). */
export const GOOD_CARD = { number: '4242 4242 4242 4242', expiry: '12/30', cvc: '123' };

export interface Reply {
  status: number;
  contentType: string;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON members
  body: any;
}

export interface CallOptions {
  body?: unknown;
  /** Sent as is instead of JSON-encoding `body`. */
  rawBody?: string;
  idempotencyKey?: string;
  /** Authorization header value; defaults to the merchant's bearer key, `null` sends none. */
  authorization?: string | null;
  signal?: AbortSignal;
}

/** One merchant's view of the bank: a fetch wrapper that authenticates as it. */
export interface MerchantClient {
  id: string;
  apiKey: string;
  call(method: string, path: string, options?: CallOptions): Promise<Reply>;
  charge(amount: number, key: string, card?: typeof GOOD_CARD): Promise<Reply>;
  statement(): Promise<Reply>;
}

export interface BankUnderTest {
  baseUrl: string;
  app: FastifyInstance;
  database: ReturnType<typeof openDatabase<BankSchema>>;
  clock: ManualClock;
  /** A fresh merchant, so each test starts from a zero balance on the shared database. */
  newMerchant(): Promise<MerchantClient>;
  close(): Promise<void>;
}

/** Starts the bank on a real 127.0.0.1 port over a fresh database of the given engine. */
export async function startBank(engine: DatabaseEngine, apiKeyHash?: string): Promise<BankUnderTest> {
  const testDb = await createTestDatabase(engine);
  const database = openDatabase<BankSchema>(testDb.url);
  const clock = new ManualClock('2026-11-24T00:00:00Z');
  const app = createBankApp({
    db: database.db,
    engine,
    clock,
    logger: pino({ level: 'silent' }),
    ...(apiKeyHash ? { apiKeyHash } : {}),
  });
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });

  const newMerchant = async (): Promise<MerchantClient> => {
    const id = `m-${randomBytes(4).toString('hex')}`;
    const apiKey = newSecret('bk_');
    await ensureMerchant(database.db, id, apiKey);
    const call = (method: string, path: string, options: CallOptions = {}) =>
      request(baseUrl, method, path, { authorization: `Bearer ${apiKey}`, ...options });
    return {
      id,
      apiKey,
      call,
      charge: (amount, key, card = GOOD_CARD) =>
        call('POST', '/v1/charges', { idempotencyKey: key, body: { amount, currency: 'NZD', card } }),
      statement: () => call('GET', '/v1/statement'),
    };
  };

  return {
    baseUrl,
    app,
    database,
    clock,
    newMerchant,
    close: async () => {
      await app.close();
      await database.close();
      await testDb.drop();
    },
  };
}

export async function request(baseUrl: string, method: string, path: string, options: CallOptions): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (options.authorization) headers.authorization = options.authorization;
  if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
  let payload: string | undefined;
  if (options.rawBody !== undefined) payload = options.rawBody;
  else if (options.body !== undefined) payload = JSON.stringify(options.body);
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(baseUrl + path, {
    method,
    headers,
    ...(payload !== undefined ? { body: payload } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    headers: res.headers,
    body: text === '' ? undefined : JSON.parse(text),
  };
}
