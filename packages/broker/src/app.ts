import cookie from '@fastify/cookie';
import {
  type Clock,
  createLogger,
  createService,
  type DatabaseEngine,
  isUniqueViolation,
  migrate,
  systemClock,
} from '@netpay/service-kit';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Bank } from './bank-port.ts';
import { type BrokerConfig, brokerConfig } from './config.ts';
import type { BrokerDeps } from './deps.ts';
import { HashPool } from './hash-pool.ts';
import { ensureFixedAccounts } from './ledger-store.ts';
import { migrations } from './migrations.ts';
import { httpReleaseClient, type ReleaseClient } from './release-client.ts';
import { apiEdge } from './routes/api-edge.ts';
import { balanceApiRoutes } from './routes/balance-api.ts';
import { customerApiRoutes } from './routes/customer-api.ts';
import { discoveryRoutes } from './routes/discovery.ts';
import { vendorApiRoutes } from './routes/vendor-api.ts';
import type { BrokerDb } from './schema.ts';
import { ensureSigningKey } from './signing-keys.ts';
import { scrubFreedPages, sealPlaintextRows, useMasterKey } from './store-secrets.ts';
import { ensureBrokerVendor } from './vendor-registry.ts';
import { contentSecurityPolicy } from './web/respond.ts';
import { registerWebRoutes } from './web/web-routes.ts';

/** A module of routes: the web pages and the connect flow plug in here without touching the API routes. */
export type BrokerRoutes = (app: FastifyInstance, deps: BrokerDeps) => void | Promise<void>;

export interface BrokerAppOptions {
  db: BrokerDb;
  engine: DatabaseEngine;
  bank: Bank;
  config: Partial<BrokerConfig> & { publicUrl: string };
  clock?: Clock;
  logger?: Logger;
  /** How the broker asks a vendor for a release (refunds); defaults to HTTP with the configured timeout. */
  releaseClient?: ReleaseClient;
  /** Extra route modules (web pages, connect). */
  routes?: BrokerRoutes[];
  /** Behind a TLS-terminating proxy (README, operators): true, or the proxy's addresses. */
  trustProxy?: boolean | string | string[];
  /**
   * The 32-byte key that seals the secrets in the store (signing seeds, coin seeds, the web HMAC key); keep it
   * outside the database (`loadMasterKey`). Without one, `NETPAY_MASTER_KEY` or a key for this process only.
   */
  masterKey?: Uint8Array;
}

declare module 'fastify' {
  interface FastifyInstance {
    broker: BrokerDeps;
  }
}

/**
 * Migrates the store and makes what the broker needs on first start: ledger accounts, a signing key, vendor
 * `broker`. Secrets an older version stored in plaintext are sealed under the process's master key.
 */
export async function prepareBrokerStore(db: BrokerDb, publicUrl: string | undefined, now: Date): Promise<void> {
  await migrate(db as unknown as Kysely<unknown>, migrations);
  const setUp = () =>
    db.transaction().execute(async (trx) => {
      await ensureFixedAccounts(trx);
      await ensureSigningKey(trx, now);
      await ensureBrokerVendor(trx, publicUrl?.replace(/\/+$/, ''), now);
      return sealPlaintextRows(trx);
    });
  // Processes of a fleet started together on a new store race to make the same first rows; the one that loses
  // (a unique key, its transaction rolled back) finds them made by the other on its second try.
  const sealed = await setUp().catch((error: unknown) => {
    if (!isUniqueViolation(error)) throw error;
    return setUp();
  });
  if (sealed > 0) await scrubFreedPages(db);
}

/**
 * The broker as a Fastify app: discovery, the vendor API (§5) and the customer API (§7), every error an
 * RFC 9457 problem. Migrates the database first. The caller owns the database and closes it.
 *
 * @example
 * const app = await createBrokerApp({ db, engine: 'sqlite', bank, config: { publicUrl: 'http://127.0.0.1:4000' } });
 * await app.listen({ host: '127.0.0.1', port: 4000 });
 */
export async function createBrokerApp(options: BrokerAppOptions): Promise<FastifyInstance> {
  const config = brokerConfig(options.config);
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger('broker');
  if (options.masterKey) useMasterKey(options.masterKey);
  await prepareBrokerStore(options.db, config.publicUrl, clock.now());

  const deps: BrokerDeps = {
    db: options.db,
    engine: options.engine,
    bank: options.bank,
    clock,
    config,
    logger,
    releaseClient: options.releaseClient ?? httpReleaseClient(config.releaseTimeoutMs),
    hasher: new HashPool(config.hashWorkers),
  };
  const app = createService({
    name: 'broker',
    logger,
    bodyLimitBytes: 64 * 1024,
    ...(options.trustProxy !== undefined ? { trustProxy: options.trustProxy } : {}),
    // The broker's pages load nothing inline: the strict page policy, not the service default.
    pageContentSecurityPolicy: contentSecurityPolicy(),
    // Its calls to the bank carry the id of the request they serve (http-bank.ts).
    requestContext: true,
  });
  app.decorate('broker', deps);
  app.addHook('onClose', () => deps.hasher.close());

  // An empty body with a JSON content type means "no body" (a claim sends none), not a parse error.
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') {
      done(null, undefined);
      return;
    }
    defaultJson(request, body as string, done);
  });
  await app.register(cookie);

  apiEdge(app, deps);
  discoveryRoutes(app, deps);
  vendorApiRoutes(app, deps);
  customerApiRoutes(app, deps);
  balanceApiRoutes(app, deps);
  await registerWebRoutes(app, deps);
  for (const routes of options.routes ?? []) await routes(app, deps);
  return app;
}
