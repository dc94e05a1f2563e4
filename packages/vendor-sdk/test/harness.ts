/**
 * Real services on loopback for the vendor SDK's integration tests: a sandbox bank, a broker, and vendors built
 * with the SDK behind Fastify (or Express), each on its own 127.0.0.1 port. Customers buy server-made coins
 * through the broker's customer API, so every test pays with real chains.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { createBankApp } from '@netpay/bank';
import { audit, type BrokerConfig, type BrokerDb, createBrokerApp, HttpBank, registerVendor } from '@netpay/broker';
import { b64uEncode, formatAuthorization, generateSigningKey, PaywordChain, type Touchstone } from '@netpay/protocol';
import { type DatabaseEngine, hashToken, newSecret, openDatabase } from '@netpay/service-kit';
import { createTestDatabase, type TestDatabase } from '@netpay/service-kit/testing';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import {
  createNetPayVendor,
  createSpendStore,
  keyIdForPublicKey,
  type NetPayVendor,
  type NetPayVendorOptions,
  netpayFastify,
  type SpendStore,
} from '../src/index.ts';

export const GOOD_CARD = { number: '4242 4242 4242 4242', expiry: '12/30', cvc: '123' };
const silent = pino({ level: process.env.NETPAY_LOG_LEVEL === 'debug' ? 'debug' : 'silent' });

/** A free port on 127.0.0.1 (released at once: a service that needs its URL before listening takes it). */
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

/** A vendor under test: the SDK core, its Fastify app, its store and how to reach it. */
export interface TestVendor extends VendorIdentity {
  vendor: NetPayVendor;
  store: SpendStore;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** A registered vendor identity without a running server (for a child-process vendor, say). */
export interface VendorIdentity {
  id: string;
  port: number;
  url: string;
  apiKey: string;
  signingKey: { privateSeed: Uint8Array; publicKey: Uint8Array; keyId: string };
  storeUrl: string;
}

export interface World {
  engine: DatabaseEngine;
  brokerUrl: string;
  bankUrl: string;
  brokerDb: BrokerDb;
  feeBps: number;
  /** Registers a vendor at the broker and starts it with the SDK behind Fastify. */
  addVendor(
    id: string,
    options?: Partial<NetPayVendorOptions> & { prices?: Record<string, number> },
  ): Promise<TestVendor>;
  /** Registers a vendor and makes its store, without starting it. */
  registerVendorIdentity(id: string): Promise<VendorIdentity>;
  /** Starts a vendor for an identity made earlier (e.g. after a restart). */
  startVendor(identity: VendorIdentity, options?: Partial<NetPayVendorOptions>): Promise<TestVendor>;
  /** Buys a server-made coin: its chain (with the seed) and touchstone. */
  buyCoin(amountMinor: number, unit?: number): Promise<{ chain: PaywordChain; touchstone: Touchstone }>;
  audit(): ReturnType<typeof audit>;
  /** The customer asks the broker to refund a coin (§7): the raw answer. */
  refund(chainId: string): Promise<{ status: number; body: unknown }>;
  /** The broker's view of a vendor's account. */
  vendorAccount(apiKey: string): Promise<{ balance: number; pending: number; paidOut: number }>;
  close(): Promise<void>;
}

/**
 * Priced routes every test vendor serves: /articles/:id (price from `prices`, default 1; sold as "Article <id>")
 * and /free.
 */
export function articleRoutes(app: FastifyInstance, prices: Record<string, number> = {}): void {
  const id = (req: { params: unknown }) => (req.params as { id: string }).id;
  app.get<{ Params: { id: string } }>(
    '/articles/:id',
    { config: { netpay: { price: (req) => prices[id(req)] ?? 1, description: (req) => `Article ${id(req)}` } } },
    async (request) => ({ article: request.params.id, paid: request.netpay }),
  );
  app.get('/free', async () => ({ free: true }));
}

export async function startWorld(
  options: {
    engine?: DatabaseEngine;
    feeBps?: number;
    leaseTtlSeconds?: number;
    /** Further broker settings (allowance size, connection block, …). */
    broker?: Partial<Omit<BrokerConfig, 'publicUrl'>>;
  } = {},
): Promise<World> {
  // NETPAY_TEST_WORLD_ENGINE=postgres runs the whole world (bank, broker, vendor stores) on PostgreSQL.
  const engine = options.engine ?? (process.env.NETPAY_TEST_WORLD_ENGINE === 'postgres' ? 'postgres' : 'sqlite');
  const feeBps = options.feeBps ?? 200;
  const drops: TestDatabase[] = [];
  const closers: (() => Promise<void>)[] = [];

  // Bank.
  const bankTestDb = await createTestDatabase(engine);
  drops.push(bankTestDb);
  const bankDatabase = openDatabase<never>(bankTestDb.url);
  const bankKey = newSecret('np_bank_');
  const bankApp = createBankApp({
    db: bankDatabase.db as never,
    engine,
    apiKeyHash: hashToken(bankKey),
    logger: silent,
  });
  const bankUrl = (await bankApp.listen({ host: '127.0.0.1', port: 0 })).replace('localhost', '127.0.0.1');
  closers.push(async () => {
    await bankApp.close();
    await bankDatabase.close();
  });

  // Broker.
  const brokerTestDb = await createTestDatabase(engine);
  drops.push(brokerTestDb);
  const brokerDatabase = openDatabase<never>(brokerTestDb.url);
  const brokerDb = brokerDatabase.db as unknown as BrokerDb;
  const brokerPort = await freePort();
  const brokerUrl = `http://127.0.0.1:${brokerPort}`;
  const brokerApp = await createBrokerApp({
    db: brokerDb,
    engine,
    bank: new HttpBank({ url: bankUrl, apiKey: bankKey }),
    config: { ...options.broker, publicUrl: brokerUrl, feeBps, leaseTtlSeconds: options.leaseTtlSeconds ?? 300 },
    logger: silent,
  });
  await brokerApp.listen({ host: '127.0.0.1', port: brokerPort });
  closers.push(async () => {
    await brokerApp.close();
    await brokerDatabase.close();
  });

  // One customer buys every coin.
  const email = `c-${randomUUID()}@netpay.test`;
  await post(`${brokerUrl}/api/v1/customers`, { email, password: 'correct-horse-battery' });
  const session = await post(`${brokerUrl}/api/v1/sessions`, { email, password: 'correct-horse-battery' });
  const token = (session.body as { token: string }).token;

  const vendors: TestVendor[] = [];

  const registerVendorIdentity = async (id: string): Promise<VendorIdentity> => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const key = generateSigningKey();
    const keyId = keyIdForPublicKey(key.publicKey);
    const { apiKey } = await registerVendor(brokerDb, {
      id,
      name: `Vendor ${id}`,
      url: `${url}/`,
      releaseUrl: `${url}/netpay/release`,
      publicKey: b64uEncode(key.publicKey),
      keyId,
    });
    const storeDb = await createTestDatabase(engine);
    drops.push(storeDb);
    return { id, port, url, apiKey, signingKey: { ...key, keyId }, storeUrl: storeDb.url };
  };

  const startVendor = async (
    identity: VendorIdentity,
    extra: Partial<NetPayVendorOptions> & { prices?: Record<string, number> } = {},
  ): Promise<TestVendor> => {
    const store = await createSpendStore(identity.storeUrl);
    const { prices, ...rest } = extra;
    const vendor = createNetPayVendor({
      vendorId: identity.id,
      brokerUrl,
      apiKey: identity.apiKey,
      signingKey: identity.signingKey,
      releaseUrl: `${identity.url}/netpay/release`,
      store,
      ...rest,
    });
    const app = Fastify({ logger: false });
    await app.register(netpayFastify, { vendor });
    articleRoutes(app, prices);
    await app.listen({ host: '127.0.0.1', port: identity.port });
    let closed = false;
    const tv: TestVendor = {
      ...identity,
      vendor,
      store,
      app,
      close: async () => {
        if (closed) return;
        closed = true;
        await app.close();
        await vendor.close();
        await store.close();
      },
    };
    vendors.push(tv);
    return tv;
  };

  return {
    engine,
    brokerUrl,
    bankUrl,
    brokerDb,
    feeBps,
    registerVendorIdentity,
    startVendor,
    addVendor: async (id, extra) => startVendor(await registerVendorIdentity(id), extra),
    buyCoin: async (amountMinor, unit = 1) => {
      const res = await post(
        `${brokerUrl}/api/v1/coins`,
        { amount: amountMinor, unit, payment: { card: GOOD_CARD } },
        { authorization: `Bearer ${token}`, 'idempotency-key': randomUUID() },
      );
      if (res.status >= 300) throw new Error(`buying a coin failed: ${res.status} ${JSON.stringify(res.body)}`);
      const body = res.body as { chainId: string; seed: string; touchstone: Touchstone };
      return {
        chain: PaywordChain.fromB64(body.chainId, body.seed, body.touchstone.length),
        touchstone: body.touchstone,
      };
    },
    audit: () => audit(brokerDb),
    refund: (chainId) => post(`${brokerUrl}/api/v1/coins/${chainId}/refund`, {}, { authorization: `Bearer ${token}` }),
    vendorAccount: async (apiKey) => {
      const res = await fetch(`${brokerUrl}/api/v1/vendor/account`, { headers: { authorization: `Bearer ${apiKey}` } });
      return (await res.json()) as { balance: number; pending: number; paidOut: number };
    },
    close: async () => {
      for (const v of vendors) await v.close();
      for (const c of closers) await c();
      for (const d of drops) await d.drop();
    },
  };
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

/** An HTTP answer as tests look at it. */
export interface Got {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON members
  body: any;
  text: string;
}

/** GET a URL, optionally paying with w_index of a chain. */
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
