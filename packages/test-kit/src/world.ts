/**
 * Real services on loopback for integration tests: a sandbox bank, a broker, and vendors built with the SDK behind
 * Fastify, each on its own 127.0.0.1 port and all on one database engine. One customer buys server-made coins
 * through the broker's customer API, so every test pays with real chains.
 */
import { randomUUID } from 'node:crypto';
import { type BrokerConfig, type BrokerDb, registerVendor } from '@netpay/broker';
import { b64uEncode, generateSigningKey, PaywordChain, type Touchstone } from '@netpay/protocol';
import type { DatabaseEngine } from '@netpay/service-kit';
import { createTestDatabase, type TestDatabase } from '@netpay/service-kit/testing';
import { keyIdForPublicKey } from '@netpay/vendor-sdk';
import { type BankUnderTest, startBank } from './bank.ts';
import { type BrokerUnderTest, startBroker } from './broker.ts';
import { freePort } from './free-port.ts';
import { call, GOOD_CARD } from './http.ts';
import { startVendor, type TestVendor, type VendorIdentity, type VendorOptions } from './vendor.ts';

export interface World {
  engine: DatabaseEngine;
  bank: BankUnderTest;
  broker: BrokerUnderTest;
  brokerUrl: string;
  bankUrl: string;
  brokerDb: BrokerDb;
  feeBps: number;
  /** Registers a vendor at the broker and starts it with the SDK behind Fastify. */
  addVendor(id: string, options?: VendorOptions): Promise<TestVendor>;
  /** Registers a vendor and makes its store, without starting it. */
  registerVendorIdentity(id: string): Promise<VendorIdentity>;
  /** Starts a vendor for an identity made earlier (e.g. after a restart). */
  startVendor(identity: VendorIdentity, options?: VendorOptions): Promise<TestVendor>;
  /** Buys a server-made coin: its chain (with the seed) and touchstone. */
  buyCoin(amountMinor: number, unit?: number): Promise<{ chain: PaywordChain; touchstone: Touchstone }>;
  audit: BrokerUnderTest['audit'];
  /** The customer asks the broker to refund a coin (§7): the raw answer. */
  refund(chainId: string): Promise<{ status: number; body: unknown }>;
  /** The broker's view of a vendor's account. */
  vendorAccount(apiKey: string): Promise<{ balance: number; pending: number; paidOut: number }>;
  close(): Promise<void>;
}

export interface WorldOptions {
  /** Defaults to sqlite, or postgres when NETPAY_TEST_WORLD_ENGINE=postgres; tests loop over testEngines(). */
  engine?: DatabaseEngine;
  feeBps?: number;
  leaseTtlSeconds?: number;
  /** Further broker settings (allowance size, connection block, …). */
  broker?: Partial<Omit<BrokerConfig, 'publicUrl'>>;
}

export async function startWorld(options: WorldOptions = {}): Promise<World> {
  const engine = options.engine ?? (process.env.NETPAY_TEST_WORLD_ENGINE === 'postgres' ? 'postgres' : 'sqlite');
  const feeBps = options.feeBps ?? 200;
  const drops: TestDatabase[] = [];
  const vendors: TestVendor[] = [];

  const bank = await startBank(engine);
  const broker = await startBroker(engine, bank, {
    bankTimeoutMs: 5000,
    config: { ...options.broker, feeBps, leaseTtlSeconds: options.leaseTtlSeconds ?? 300 },
  });
  const brokerDb = broker.database.db as unknown as BrokerDb;
  const { token } = await broker.customer(`c-${randomUUID()}@netpay.test`);

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

  const start = async (identity: VendorIdentity, extra: VendorOptions = {}): Promise<TestVendor> => {
    const vendor = await startVendor(broker.url, identity, extra);
    vendors.push(vendor);
    return vendor;
  };

  return {
    engine,
    bank,
    broker,
    brokerUrl: broker.url,
    bankUrl: bank.url,
    brokerDb,
    feeBps,
    registerVendorIdentity,
    startVendor: start,
    addVendor: async (id, extra) => start(await registerVendorIdentity(id), extra),
    buyCoin: async (amountMinor, unit = 1) => {
      const res = await call(broker.api, 'POST', '/coins', {
        token,
        key: randomUUID(),
        body: { amount: amountMinor, unit, payment: { card: GOOD_CARD } },
      });
      if (res.status >= 300) throw new Error(`buying a coin failed: ${res.status} ${res.text}`);
      const body = res.body as { chainId: string; seed: string; touchstone: Touchstone };
      return {
        chain: PaywordChain.fromB64(body.chainId, body.seed, body.touchstone.length),
        touchstone: body.touchstone,
      };
    },
    audit: () => broker.audit(),
    refund: async (chainId) => {
      const res = await call(broker.api, 'POST', `/coins/${chainId}/refund`, { token, body: {} });
      return { status: res.status, body: res.body };
    },
    vendorAccount: async (apiKey) => {
      const res = await call(broker.api, 'GET', '/vendor/account', { token: apiKey });
      return res.body as { balance: number; pending: number; paidOut: number };
    },
    close: async () => {
      for (const v of vendors) await v.close();
      await broker.close();
      await bank.close();
      for (const d of drops) await d.drop();
    },
  };
}
