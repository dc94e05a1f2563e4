import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type CliValues,
  createLogger,
  listenUntilSignal,
  makePrivateDir,
  metricsPort,
  parseCommandLine,
  readDemoFile,
  restrictUmask,
  serveMetrics,
  UsageError,
  type VendorMetricsHook,
  vendorMetrics,
} from '@netpay/service-kit';
import {
  createNetPayVendor,
  createSpendStore,
  loadOrCreateVendorKey,
  type NetPayVendor,
  type RedemptionProgress,
} from '@netpay/vendor-sdk';
import type { Logger } from 'pino';
import { createNewspaperApp } from './app.ts';
import { VENDOR_ACCOUNT_COMMAND, VENDOR_COMMAND, type VENDOR_COMMANDS, VENDOR_REDEEM_COMMAND } from './cli-commands.ts';
import { laterVendorMetrics, meterRefusals, spendStoreMetrics } from './payment-metrics.ts';
import { loadSite, type Site } from './site.ts';

/** How often the running vendor redeems spent coins, and renews its holder leases. */
export const REDEEM_INTERVAL_MS = 30_000;
export const RENEW_INTERVAL_MS = 10_000;

/** Everything `netpay vendor` needs, read from its arguments. */
export interface VendorConfig {
  site: Site;
  host: string;
  port: number;
  dataDir: string;
  /** `<data>/vendors/<vendorId>/`: signing key, API key, default spend store. */
  vendorDir: string;
  dbUrl: string;
  brokerUrl: string;
  publicUrl: string;
  /** The broker's API key for this vendor: demo.json's apiKeyFile, else `<vendorDir>/api-key`. */
  apiKeyFile?: string;
  /** The admin listener (Prometheus `/metrics`): loopback by default, on the public port + 200. */
  metricsHost: string;
  metricsPort: number;
}

/**
 * Reads `netpay vendor` arguments (those after `vendor`, or after `vendor redeem|account` with that command). What
 * is not given comes from the data folder's demo.json (the broker, the site's URL and API key file) where it says.
 *
 * @throws UsageError on a bad or missing argument
 * @example
 * parseVendorArgs(['--site', 'the-bugle', '--port', '5002']).publicUrl; // 'http://127.0.0.1:5002'
 */
export function parseVendorArgs(
  argv: string[],
  command: (typeof VENDOR_COMMANDS)[number] = VENDOR_COMMAND,
): VendorConfig {
  // redeem and account take a subset of the running vendor's options; the others keep their defaults.
  const values: Partial<CliValues<typeof VENDOR_COMMAND>> = parseCommandLine(command, argv).values;
  if (!values.site) throw new UsageError(command.name, '--site is required');
  const site = loadSite(values.site);
  const host = values.host ?? '127.0.0.1';
  const port = values.port === undefined ? site.port : Number(values.port);
  const dataDir = resolve(values.data ?? './data');
  const vendorDir = join(dataDir, 'vendors', site.vendorId);
  const demo = readDemoFile(dataDir);
  const listed = demo?.vendors.find((v) => v.id === site.vendorId);
  const brokerUrl = (values['broker-url'] ?? demo?.broker?.url ?? 'http://127.0.0.1:4000').replace(/\/+$/, '');
  // A running vendor is where it listens; redeem and account speak for the site where the demo put it.
  const ownUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const publicUrl = (values['public-url'] ?? (command === VENDOR_COMMAND ? undefined : listed?.url) ?? ownUrl).replace(
    /\/+$/,
    '',
  );
  for (const [name, url] of [
    ['--broker-url', brokerUrl],
    ['--public-url', publicUrl],
  ] as const) {
    if (!/^https?:\/\/[^\s]+$/.test(url)) throw new UsageError(command.name, `${name} must be an http(s) URL`);
  }
  const adminPort = metricsPort(values['metrics-port'], port);
  return {
    site,
    host,
    port,
    metricsHost: values['metrics-host'] ?? '127.0.0.1',
    metricsPort: adminPort,
    dataDir,
    vendorDir,
    dbUrl: values.db ?? `sqlite:${join(vendorDir, 'spend.db')}`,
    brokerUrl,
    publicUrl,
    // A folder moved since demo.json was written names a key file that is gone: the site's own folder has it.
    ...(listed?.apiKeyFile && existsSync(listed.apiKeyFile) ? { apiKeyFile: listed.apiKeyFile } : {}),
  };
}

/** The API key the broker issued to this vendor, written by `netpay start` when it registered the vendor. */
export function readApiKey(vendorDir: string, path = join(vendorDir, 'api-key')): string {
  if (!existsSync(path)) {
    throw new Error(
      `no broker API key at ${path}: register the vendor with the broker first (\`netpay start\` does this and writes the key there)`,
    );
  }
  const key = readFileSync(path, 'utf8').trim();
  if (key.length === 0) throw new Error(`the API key file ${path} is empty`);
  return key;
}

/** A vendor and the one call that stops its jobs and then closes its spend store. */
export interface OpenedVendor {
  vendor: NetPayVendor;
  close(): Promise<void>;
}

/** Builds the vendor for a config: signing key, API key, spend store, release URL. The caller closes it. */
export async function openVendor(
  config: VendorConfig,
  logger: Logger,
  metrics?: VendorMetricsHook,
): Promise<OpenedVendor> {
  // The signing key, the API key and the spend store (it holds server-side wallets' seeds) are the owner's only.
  restrictUmask();
  makePrivateDir(config.vendorDir);
  const key = await loadOrCreateVendorKey(config.vendorDir);
  const apiKey = readApiKey(config.vendorDir, config.apiKeyFile);
  const store = await createSpendStore(config.dbUrl, metrics ? { observer: spendStoreMetrics(metrics) } : {});
  const vendor = createNetPayVendor({
    vendorId: config.site.vendorId,
    brokerUrl: config.brokerUrl,
    apiKey,
    signingKey: { privateSeed: key.privateSeed, keyId: key.keyId },
    releaseUrl: `${config.publicUrl}/netpay/release`,
    publicUrl: config.publicUrl,
    store,
    logger,
    currency: config.site.currency,
  });
  return {
    vendor,
    // The vendor stops its jobs; the store is ours to close, after it.
    close: async () => {
      await vendor.close();
      await store.close();
    },
  };
}

/**
 * `netpay vendor --site …`: serves one newspaper site, redeems every 30 s, renews leases every 10 s, and stops
 * cleanly on SIGINT/SIGTERM (in-flight requests finish, background jobs stop, the spend store closes).
 *
 * @example
 * await runVendor(['--site', 'daily-planet', '--data', './data']);
 */
export async function runVendor(argv: string[]): Promise<string> {
  const config = parseVendorArgs(argv);
  const logger = createLogger(config.site.vendorId);
  const metrics = laterVendorMetrics();
  const { vendor, close } = await openVendor(config, logger, metrics);
  const app = createNewspaperApp({ site: config.site, vendor, brokerUrl: config.brokerUrl, logger });
  metrics.connect(vendorMetrics(app.metrics));
  meterRefusals(app, metrics);
  app.addHook('onClose', close);
  await serveMetrics(app, { host: config.metricsHost, port: config.metricsPort });
  vendor.startBackgroundJobs({ redeemIntervalMs: REDEEM_INTERVAL_MS, renewIntervalMs: RENEW_INTERVAL_MS });
  const address = await listenUntilSignal(app, config.host, config.port);
  logger.info({ address, publicUrl: config.publicUrl, site: config.site.name }, 'newspaper listening');
  return address;
}

/**
 * `netpay vendor redeem --site …`: one redemption pass now, a line per progress event, then a JSON summary.
 *
 * @example
 * await runVendorRedeem(['--site', 'the-bugle']);
 */
export async function runVendorRedeem(argv: string[], out: (line: string) => void = console.log): Promise<void> {
  const config = parseVendorArgs(argv, VENDOR_REDEEM_COMMAND);
  const logger = createLogger(config.site.vendorId, process.env.NETPAY_LOG_LEVEL ?? 'warn');
  const { vendor, close } = await openVendor(config, logger);
  try {
    const summary = await vendor.redeemNow({ onProgress: (p) => out(progressLine(p)) });
    out(JSON.stringify(summary, null, 2));
  } finally {
    await close();
  }
}

/**
 * `netpay vendor account --site …`: prints the vendor's account view as JSON.
 *
 * @example
 * await runVendorAccount(['--site', 'daily-planet']);
 */
export async function runVendorAccount(argv: string[], out: (line: string) => void = console.log): Promise<void> {
  const config = parseVendorArgs(argv, VENDOR_ACCOUNT_COMMAND);
  const logger = createLogger(config.site.vendorId, process.env.NETPAY_LOG_LEVEL ?? 'warn');
  const { vendor, close } = await openVendor(config, logger);
  try {
    out(JSON.stringify(await vendor.account(), null, 2));
  } finally {
    await close();
  }
}

function progressLine(p: RedemptionProgress): string {
  return `batch ${p.batch}/${p.batches}: ${p.accepted} accepted, ${p.rejected} rejected, ${p.credited} credited so far`;
}
