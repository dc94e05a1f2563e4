import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ProtocolError } from '@netpay/protocol';
import {
  commandHelp,
  createLogger,
  findSubcommand,
  groupHelp,
  listenUntilSignal,
  loadMasterKey,
  makePrivateDir,
  metricsPort,
  openDatabase,
  parseCommandLine,
  readDemoFile,
  restrictUmask,
  serveMetrics,
  systemClock,
  UsageError,
} from '@netpay/service-kit';
import { pino } from 'pino';
import { createBrokerApp, prepareBrokerStore } from './app.ts';
import { audit, auditFailure } from './audit.ts';
import {
  ADMIN_COMMANDS,
  ADMIN_SUMMARY,
  BROKER_COMMAND,
  DEFAULT_BANK_URL,
  VENDOR_ADD_REQUIRED,
} from './cli-commands.ts';
import { brokerConfig, DEFAULT_CONFIG } from './config.ts';
import { HashPool } from './hash-pool.ts';
import { HttpBank } from './http-bank.ts';
import { runPayouts } from './payouts.ts';
import { DEFAULT_RECONCILE_GRACE_MS, reconcilePurchases, startReconcileJob } from './reconcile.ts';
import { httpReleaseClient } from './release-client.ts';
import type { BrokerSchema } from './schema.ts';
import { rotateSigningKey } from './signing-keys.ts';
import { useMasterKey } from './store-secrets.ts';
import { BROKER_VENDOR_ID, listVendors, registerVendor } from './vendor-registry.ts';

const BANK_KEY_FILE = 'bank-api-key';

function databaseUrl(data: string, db: string | undefined): string {
  return db ?? `sqlite:${join(resolve(data), 'broker.db')}`;
}

/** The bank's API key from the data folder; the bank writes it on its first start, so wait for it a little. */
async function readBankKey(data: string, waitMs: number): Promise<string> {
  const file = join(resolve(data), BANK_KEY_FILE);
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (existsSync(file)) {
      const key = readFileSync(file, 'utf8').trim();
      if (key) return key;
    }
    if (Date.now() > deadline)
      throw new Error(`no bank API key at ${file}: start the bank first (netpay bank --data ${data})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Makes the data folder private (0700, and every file this process creates 0600) and returns the master key that
 * seals the store's secrets: `NETPAY_MASTER_KEY`, else `<data>/master-key`, made on first start.
 */
function privateDataFolder(data: string): Uint8Array {
  restrictUmask();
  const dataDir = resolve(data);
  makePrivateDir(dataDir);
  return loadMasterKey({ dataDir });
}

/** Where the bank is: `--bank-url`, else where `netpay start` put it (demo.json), else the usual address. */
function bankUrlOf(values: { data: string; 'bank-url'?: string | undefined }): string {
  return values['bank-url'] ?? readDemoFile(values.data)?.bank?.url ?? DEFAULT_BANK_URL;
}

function integerOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value)) throw new Error(`--${name} must be a non-negative integer`);
  return Number(value);
}

/** `N/SECONDS`: a budget of N at once that refills N every SECONDS, as [capacity, per second]. */
function budgetOption(name: string, value: string | undefined): [number, number] | undefined {
  if (value === undefined) return undefined;
  const match = /^([1-9][0-9]*)\/([1-9][0-9]*)$/.exec(value);
  if (!match) throw new Error(`--${name} must be N/SECONDS, such as 120/24`);
  const capacity = Number(match[1]);
  return [capacity, capacity / Number(match[2])];
}

/**
 * `netpay broker [--host 127.0.0.1] [--port 4000] [--data ./data] [--db URL] [--bank-url URL] [--public-url URL]
 * [--fee-bps N] [--lease-ttl-seconds N] [--bank-timeout-ms N] [--reconcile-interval-ms N] [--reconcile-grace-ms N]
 * [--metrics-host 127.0.0.1] [--metrics-port PORT+200]`: runs the broker until SIGINT/SIGTERM, with Prometheus metrics
 * on the admin listener (`/metrics` on its own port). Every reconcile interval (default 60 s, 0 turns it off) it settles coin
 * purchases left charged without a coin for longer than the grace (default 60 s; keep it above the bank timeout).
 * `--coin-purchases-per-customer N/SECONDS`: each customer may buy N coins at once, refilled N every SECONDS
 * (default 120/24); one budget in the store, shared by every broker process on it.
 */
export async function runBroker(argv: string[]): Promise<void> {
  const { values } = parseCommandLine(BROKER_COMMAND, argv);
  const purchaseBudget = budgetOption('coin-purchases-per-customer', values['coin-purchases-per-customer']);
  const port = integerOption('port', values.port) ?? 4000;
  const publicUrl = values['public-url'] ?? `http://${values.host}:${port}`;
  const logger = createLogger('broker');
  const masterKey = privateDataFolder(values.data);
  const apiKey = await readBankKey(values.data, 30_000);
  // The operator view opens with the token in this file, made (mode 0600) on first start.
  process.env.NETPAY_OPERATOR_TOKEN_FILE ??= join(resolve(values.data), 'operator-token');
  const database = openDatabase<BrokerSchema>(databaseUrl(values.data, values.db));
  const bankTimeoutMs = integerOption('bank-timeout-ms', values['bank-timeout-ms']) ?? 5000;
  const app = await createBrokerApp({
    db: database.db,
    engine: database.engine,
    bank: new HttpBank({ url: bankUrlOf(values), apiKey, timeoutMs: bankTimeoutMs }),
    logger,
    masterKey,
    config: {
      publicUrl,
      feeBps: integerOption('fee-bps', values['fee-bps']) ?? DEFAULT_CONFIG.feeBps,
      leaseTtlSeconds:
        integerOption('lease-ttl-seconds', values['lease-ttl-seconds']) ?? DEFAULT_CONFIG.leaseTtlSeconds,
      maxChainLength: integerOption('max-chain-length', values['max-chain-length']) ?? DEFAULT_CONFIG.maxChainLength,
      hashWorkers: integerOption('hash-workers', values['hash-workers']) ?? DEFAULT_CONFIG.hashWorkers,
      ...(purchaseBudget
        ? { rateLimits: { ...DEFAULT_CONFIG.rateLimits, coinPurchasesPerCustomer: purchaseBudget } }
        : {}),
    },
  });
  app.addHook('onClose', async () => database.close());
  const reconcileIntervalMs = integerOption('reconcile-interval-ms', values['reconcile-interval-ms']) ?? 60_000;
  if (reconcileIntervalMs > 0) {
    const graceMs = integerOption('reconcile-grace-ms', values['reconcile-grace-ms']) ?? DEFAULT_RECONCILE_GRACE_MS;
    if (graceMs < bankTimeoutMs) logger.warn({ graceMs, bankTimeoutMs }, 'reconcile grace below the bank timeout');
    const job = startReconcileJob(app.broker, { intervalMs: reconcileIntervalMs, graceMs });
    // Before onClose closes the database, so a run in progress finishes first.
    app.addHook('preClose', () => job.stop());
  }
  await serveMetrics(app, { host: values['metrics-host'], port: metricsPort(values['metrics-port'], port) });
  const address = await listenUntilSignal(app, values.host, port);
  logger.info({ address, publicUrl, db: database.engine }, 'broker listening');
}

/** `netpay admin …`: returns the process exit code. */
export async function runAdmin(argv: string[]): Promise<number> {
  const found = findSubcommand('netpay admin', ADMIN_COMMANDS, argv);
  if (found === undefined) {
    if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
      process.stdout.write(groupHelp('netpay admin', ADMIN_SUMMARY, ADMIN_COMMANDS));
      return 0;
    }
    throw new UsageError('netpay admin', `unknown command '${argv[0]}'`);
  }
  const parsed = parseCommandLine(found.command as (typeof ADMIN_COMMANDS)[number], found.rest);
  if (parsed.help) {
    process.stdout.write(commandHelp(found.command));
    return 0;
  }
  const { values } = parsed;
  const command = found.command.name.slice('netpay admin '.length);
  const missing =
    command === 'vendor add' ? VENDOR_ADD_REQUIRED.filter((k) => values[k as keyof typeof values] === undefined) : [];
  if (missing.length) throw new UsageError(found.command.name, `missing --${missing.join(', --')}`);
  useMasterKey(privateDataFolder(values.data));
  const database = openDatabase<BrokerSchema>(databaseUrl(values.data, values.db));
  const out = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  try {
    await prepareBrokerStore(database.db, undefined, new Date());
    switch (command) {
      case 'vendor add': {
        const result = await registerVendor(database.db, {
          id: values.id as string,
          name: values.name as string,
          url: values.url as string,
          releaseUrl: values['release-url'] as string,
          publicKey: values['public-key'] as string,
          ...(values['key-id'] ? { keyId: values['key-id'] } : {}),
        });
        out(result);
        return 0;
      }
      case 'vendor list':
        out(await listVendors(database.db));
        return 0;
      case 'audit': {
        const result = await audit(database.db);
        out(result);
        if (!result.ok) {
          process.stderr.write(auditFailure(result));
          return 1;
        }
        return 0;
      }
      case 'payouts': {
        const apiKey = await readBankKey(values.data, 0);
        const settlementWindowSeconds =
          integerOption('settlement-window-seconds', values['settlement-window-seconds']) ??
          DEFAULT_CONFIG.settlementWindowSeconds;
        const report = await runPayouts({
          db: database.db,
          engine: database.engine,
          bank: new HttpBank({ url: bankUrlOf(values), apiKey }),
          clock: systemClock,
          config: { currency: DEFAULT_CONFIG.currency, settlementWindowSeconds },
        });
        out(report);
        return report.failed.length > 0 ? 1 : 0;
      }
      case 'reconcile': {
        const apiKey = await readBankKey(values.data, 0);
        // The touchstones of coins made here must name the broker as it names itself: the URL it last started with.
        const stored = await database.db
          .selectFrom('vendors')
          .select('url')
          .where('id', '=', BROKER_VENDOR_ID)
          .executeTakeFirst();
        const publicUrl = values['public-url'] ?? stored?.url ?? 'http://127.0.0.1:4000';
        // Coins it issues are made like the running broker's: long chains in a worker.
        const hasher = new HashPool(1);
        const report = await reconcilePurchases(
          {
            db: database.db,
            engine: database.engine,
            bank: new HttpBank({ url: bankUrlOf(values), apiKey }),
            clock: systemClock,
            config: brokerConfig({ publicUrl }),
            logger: pino({ name: 'broker', level: process.env.NETPAY_LOG_LEVEL ?? 'info' }, pino.destination(2)),
            releaseClient: httpReleaseClient(DEFAULT_CONFIG.releaseTimeoutMs),
            hasher,
          },
          { graceMs: integerOption('grace-ms', values['grace-ms']) ?? DEFAULT_RECONCILE_GRACE_MS },
        ).finally(() => hasher.close());
        out(report);
        return report.deferred + report.held > 0 ? 1 : 0;
      }
      case 'rotate-key': {
        const keyId = await database.db.transaction().execute((trx) => rotateSigningKey(trx, new Date()));
        out({ keyId });
        return 0;
      }
    }
    return 2;
  } catch (error) {
    const message = error instanceof ProtocolError ? (error.detail ?? error.code) : (error as Error).message;
    process.stderr.write(`netpay admin ${command}: ${message}\n`);
    return 1;
  } finally {
    await database.close();
  }
}
