import { createBankApp } from '@netpay/bank';
import { type DatabaseEngine, hashToken, newSecret, openDatabase } from '@netpay/service-kit';
import { createTestDatabase } from '@netpay/service-kit/testing';
import { type Logger, pino } from 'pino';
import { call, type Reply } from './http.ts';

/** The sandbox bank on a real 127.0.0.1 port, with the broker's merchant key. */
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
    logger: options.logger ?? pino({ level: process.env.NETPAY_LOG_LEVEL === 'debug' ? 'debug' : 'silent' }),
    apiKeyHash: hashToken(apiKey),
  });
  const url = (await app.listen({ host: '127.0.0.1', port: 0 })).replace('localhost', '127.0.0.1');
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
