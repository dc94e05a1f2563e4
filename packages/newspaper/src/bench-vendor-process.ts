/**
 * One benchmark vendor in its own process: the bench site over the vendor SDK as it is, on the store it is given.
 * Each vendor the benchmark measures runs alone like this, so its event loop and heap are its own (and several
 * processes of one vendor can share a PostgreSQL store behind nginx). Started with the JSON of a
 * `BenchVendorConfig` as its one argument and an IPC channel; it says `ready` with its URL, answers `heap`
 * (after a forced collection when started with --expose-gc) and stops on `close` or SIGTERM.
 */
import { statSync } from 'node:fs';
import { createLogger } from '@netpay/service-kit';
import { createNetPayVendor, createSpendStore, loadOrCreateVendorKey } from '@netpay/vendor-sdk';
import { createNewspaperApp } from './app.ts';
import { addSignatureRoutes } from './bench-signature-routes.ts';
import { benchSite } from './bench-site.ts';

export interface BenchVendorConfig {
  vendorId: string;
  brokerUrl: string;
  apiKey: string;
  /** The folder holding the vendor's signing key (made and registered by the benchmark). */
  keyDir: string;
  /** `sqlite:PATH` or a postgres:// URL (`?schema=` for a schema of its own). */
  storeUrl: string;
  /** The release URL registered at the broker (nginx's, for a fleet). */
  releaseUrl: string;
  port: number;
  /** Adds the Ed25519 and EIP-712 anchor routes. */
  signatureRoutes?: boolean;
  logLevel?: string;
}

/** What the process sends its parent. */
/** What the vendor's spend store has done since it opened (its observer's counts). */
export interface StoreCounts {
  /** Durable group commits of payments, and the payments they committed. */
  commits: number;
  payments: number;
  /** Fsyncs of the SQLite WAL on the event loop and on the threadpool (none on PostgreSQL or at FULL). */
  fsyncsOnLoop: number;
  fsyncsOnThreadpool: number;
  /** Seconds the event loop spent in its fsyncs (blocked: nothing else runs meanwhile). */
  fsyncSecondsOnLoop: number;
  /** The size of the SQLite store's -wal file in bytes (0 when there is none, as on PostgreSQL). */
  walBytes: number;
}

export type BenchVendorMessage =
  | { type: 'ready'; url: string }
  | { type: 'heap'; heapUsed: number; rss: number; gc: boolean }
  | ({ type: 'store' } & StoreCounts);

/** What the parent may ask. */
export type BenchVendorRequest = { type: 'heap' } | { type: 'store' } | { type: 'close' };

const config = JSON.parse(process.argv[2] ?? '{}') as BenchVendorConfig;
const send = (message: BenchVendorMessage) => process.send?.(message);
const logger = createLogger(config.vendorId, config.logLevel ?? 'warn');
const site = benchSite(config.vendorId);
const key = loadOrCreateVendorKey(config.keyDir);
const counts: StoreCounts = {
  commits: 0,
  payments: 0,
  fsyncsOnLoop: 0,
  fsyncsOnThreadpool: 0,
  fsyncSecondsOnLoop: 0,
  walBytes: 0,
};
const walFile = config.storeUrl.startsWith('sqlite:') ? `${config.storeUrl.slice('sqlite:'.length)}-wal` : undefined;
/** The -wal file's size now (it is created on the first write and may be replaced). */
function walBytes(): number {
  if (walFile === undefined) return 0;
  try {
    return statSync(walFile).size;
  } catch {
    return 0;
  }
}
const store = await createSpendStore(config.storeUrl, {
  observer: {
    committed(_writes, results) {
      counts.commits++;
      for (const r of results) if (r === 'ok') counts.payments++;
    },
    fsynced(place, seconds) {
      if (place === 'loop') {
        counts.fsyncsOnLoop++;
        counts.fsyncSecondsOnLoop += seconds;
      } else counts.fsyncsOnThreadpool++;
    },
  },
});
const vendor = createNetPayVendor({
  vendorId: config.vendorId,
  brokerUrl: config.brokerUrl,
  apiKey: config.apiKey,
  signingKey: { privateSeed: key.privateSeed, keyId: key.keyId },
  releaseUrl: config.releaseUrl,
  store,
  logger,
  currency: site.currency,
});
const app = createNewspaperApp({ site, vendor, brokerUrl: config.brokerUrl, logger });
if (config.signatureRoutes) addSignatureRoutes(app, site);
await app.listen({ host: '127.0.0.1', port: config.port });

let closing: Promise<void> | undefined;
const close = () => {
  closing ??= (async () => {
    await app.close();
    await vendor.close();
    await store.close();
    process.disconnect?.();
  })();
  return closing;
};

/** The heap after a full collection, twice so that objects freed by finalisers of the first are gone too. */
function heap(): BenchVendorMessage {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  return { type: 'heap', heapUsed: usage.heapUsed, rss: usage.rss, gc: gc !== undefined };
}

process.on('message', (request: BenchVendorRequest) => {
  if (request.type === 'heap') send(heap());
  else if (request.type === 'store') send({ type: 'store', ...counts, walBytes: walBytes() });
  else if (request.type === 'close') void close();
});
process.on('SIGTERM', () => void close());
// The benchmark going away takes its vendors with it.
process.on('disconnect', () => void close());
send({ type: 'ready', url: `http://127.0.0.1:${config.port}` });
