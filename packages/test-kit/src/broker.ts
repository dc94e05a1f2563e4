import {
  type AuditResult,
  audit,
  type BrokerConfig,
  type BrokerSchema,
  createBrokerApp,
  HttpBank,
  type ReleaseClient,
  registerVendor,
} from '@netpay/broker';
import {
  b64uEncode,
  generateSigningKey,
  type HolderCertificate,
  type PaywordChain,
  type ReleaseStatement,
  signRelease,
} from '@netpay/protocol';
import { type Clock, type DatabaseEngine, openDatabase, rfc3339 } from '@netpay/service-kit';
import { createTestDatabase } from '@netpay/service-kit/testing';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { freePort } from './free-port.ts';
import { call, GOOD_CARD, type Reply } from './http.ts';

/** A vendor registered at the broker with no server of its own: its keys, to sign releases by hand. */
export interface RegisteredVendor {
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
  /** The customer and vendor API base (`{url}/api/v1`). */
  api: string;
  app: FastifyInstance;
  database: ReturnType<typeof openDatabase<BrokerSchema>>;
  addVendor(id: string, releaseUrl?: string): Promise<RegisteredVendor>;
  /** A new customer with a session token. */
  customer(email?: string): Promise<{ token: string; customerId: string; email: string }>;
  buyCoin(
    token: string,
    options?: { amount?: number; unit?: number; chain?: PaywordChain; key?: string },
  ): Promise<Reply>;
  audit(): Promise<AuditResult>;
  /** Row counts of every table, to prove a refused request changed nothing. */
  counts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export interface BrokerOptions {
  clock?: Clock;
  config?: Partial<BrokerConfig>;
  /** How long the broker waits for the bank (2 s by default, so fault tests stay short). */
  bankTimeoutMs?: number;
  releaseClient?: ReleaseClient;
}

let customerSeq = 0;

/** The broker on a real 127.0.0.1 port over a fresh database of `engine`, paying through `bank`. */
export async function startBroker(
  engine: DatabaseEngine,
  bank: { url: string; apiKey: string },
  options: BrokerOptions = {},
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

  const addVendor = async (id: string, releaseUrl = `http://127.0.0.1:9/${id}/release`): Promise<RegisteredVendor> => {
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
