import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createLogger,
  listenUntilSignal,
  makePrivateDir,
  metricsPort,
  restrictUmask,
  serveMetrics,
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
import { laterVendorMetrics, meteredSpendStore, meterRefusals } from './payment-metrics.ts';
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
  /** The admin listener (Prometheus `/metrics`): loopback by default, on the public port + 200. */
  metricsHost: string;
  metricsPort: number;
}

const OPTIONS = {
  site: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  data: { type: 'string' },
  db: { type: 'string' },
  'broker-url': { type: 'string' },
  'public-url': { type: 'string' },
  'metrics-host': { type: 'string' },
  'metrics-port': { type: 'string' },
} as const;

const USAGE =
  'usage: netpay vendor --site <daily-planet|the-bugle|path.json> [--host 127.0.0.1] [--port N] [--data ./data] ' +
  '[--db URL] [--broker-url http://127.0.0.1:4000] [--public-url http://127.0.0.1:PORT] [--metrics-host 127.0.0.1] ' +
  '[--metrics-port PORT+200]';

/**
 * Reads `netpay vendor` arguments (those after `vendor`, or after `vendor redeem|account`).
 *
 * @throws Error with the usage line on a bad or missing argument
 * @example
 * parseVendorArgs(['--site', 'the-bugle', '--port', '5002']).publicUrl; // 'http://127.0.0.1:5002'
 */
export function parseVendorArgs(argv: string[]): VendorConfig {
  let values: { [K in keyof typeof OPTIONS]?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${USAGE}`);
  }
  if (!values.site) throw new Error(`--site is required\n${USAGE}`);
  const site = loadSite(values.site);
  const host = values.host ?? '127.0.0.1';
  const port = values.port === undefined ? site.port : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535\n${USAGE}`);
  const dataDir = resolve(values.data ?? './data');
  const vendorDir = join(dataDir, 'vendors', site.vendorId);
  const brokerUrl = (values['broker-url'] ?? demoBrokerUrl(dataDir) ?? 'http://127.0.0.1:4000').replace(/\/+$/, '');
  const publicUrl = (values['public-url'] ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(
    /\/+$/,
    '',
  );
  for (const [name, url] of [
    ['--broker-url', brokerUrl],
    ['--public-url', publicUrl],
  ] as const) {
    if (!/^https?:\/\/[^\s]+$/.test(url)) throw new Error(`${name} must be an http(s) URL\n${USAGE}`);
  }
  let adminPort: number;
  try {
    adminPort = metricsPort(values['metrics-port'], port);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${USAGE}`);
  }
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
  };
}

/** The API key the broker issued to this vendor, written by `netpay start` when it registered the vendor. */
export function readApiKey(vendorDir: string): string {
  const path = join(vendorDir, 'api-key');
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
  const apiKey = readApiKey(config.vendorDir);
  const raw = await createSpendStore(config.dbUrl);
  const store = metrics ? meteredSpendStore(raw, metrics) : raw;
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
  const config = parseVendorArgs(argv);
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
  const config = parseVendorArgs(argv);
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

/** The broker the start command ran with this data folder, so `vendor redeem` finds it on any port base. */
function demoBrokerUrl(dataDir: string): string | undefined {
  try {
    const demo = JSON.parse(readFileSync(join(dataDir, 'demo.json'), 'utf8')) as { broker?: { url?: unknown } };
    return typeof demo.broker?.url === 'string' ? demo.broker.url : undefined;
  } catch {
    return undefined;
  }
}
