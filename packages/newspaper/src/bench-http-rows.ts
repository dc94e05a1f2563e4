/**
 * The benchmark's side-by-side HTTP rows, run in the same alternating rounds:
 *
 * - sqlite: a free and a paid article of a vendor whose spend store is SQLite (the default: commits in WAL NORMAL
 *   mode, made durable by the store's fsync of the WAL before anything is answered, on the event loop while this
 *   disk's fsyncs are fast and on the threadpool when they are not: NETPAY_SQLITE_FSYNC=auto);
 * - sqlite-threadpool: the same paid article on a vendor whose fsyncs always run on the threadpool
 *   (NETPAY_SQLITE_FSYNC=threadpool), beside the default: what the choice of place buys on this machine;
 * - sqlite-full: the same paid article on a vendor run with NETPAY_SQLITE_SYNCHRONOUS=FULL (SQLite's fsync inside
 *   every commit, on the event loop), beside the default;
 * - pg: the same on a vendor whose spend store is PostgreSQL (its paid route beside SQLite's);
 * - ed25519 / eip712: the paid article behind one signature check per request (the anchors: what a
 *   signature-per-payment scheme costs a vendor), beside the NetPay paid route;
 * - nginx: paid articles through nginx to two processes of one vendor on one PostgreSQL store, beside nginx to
 *   one of them.
 *
 * Each vendor is a process of its own (bench-vendor-process.ts); the load comes from the load process.
 */
import { join } from 'node:path';
import { makeEd25519Payments } from './bench-ed25519-payment.ts';
import { EIP712_PAYMENT_HEADER, makeEip712Payments } from './bench-eip712-payment.ts';
import { ED25519_PAYMENT_HEADER } from './bench-ed25519-payment.ts';
import type { LoadChain } from './bench-http-load.ts';
import type { LoadProcess } from './bench-load-process.ts';
import { findNginx, NGINX_MISSING, type RunningNginx, startNginx } from './bench-nginx.ts';
import { alternate, ratio, type Sample, summarize, type Variant, type VariantSummary } from './bench-rounds.ts';
import { ED25519_PATH, EIP712_PATH } from './bench-signature-routes.ts';
import { FREE_ID, PAID_ID } from './bench-site.ts';
import { type MachineLoad, machineLoad, processCpuMs, type Spread } from './bench-stats.ts';
import { startVendorProcess, type VendorProcess } from './bench-vendor-launch.ts';
import type { StoreCounts } from './bench-vendor-process.ts';

export const HTTP_ROWS = ['sqlite', 'sqlite-threadpool', 'sqlite-full', 'pg', 'ed25519', 'eip712', 'nginx'] as const;
export type HttpRow = (typeof HTTP_ROWS)[number];

export type VariantKey =
  | 'free-sqlite'
  | 'paid-sqlite'
  | 'paid-sqlite-threadpool'
  | 'paid-sqlite-full'
  | 'free-pg'
  | 'paid-pg'
  | 'ed25519'
  | 'eip712'
  | 'nginx-1-vendor'
  | 'nginx-2-vendors';

const LABELS: Record<VariantKey, string> = {
  'free-sqlite': 'free article, SQLite vendor',
  'paid-sqlite': 'paid article (1 payword), SQLite vendor',
  'paid-sqlite-threadpool': 'paid article (1 payword), SQLite vendor, fsync always on the threadpool',
  'paid-sqlite-full': 'paid article (1 payword), SQLite vendor, fsync in the commit (FULL)',
  'free-pg': 'free article, PostgreSQL vendor',
  'paid-pg': 'paid article (1 payword), PostgreSQL vendor',
  ed25519: 'article + 1 Ed25519 verification (node:crypto)',
  eip712: 'article + 1 EIP-712 secp256k1 recovery (x402-style)',
  'nginx-1-vendor': 'paid article, nginx → 1 vendor process (PostgreSQL)',
  'nginx-2-vendors': 'paid article, nginx → 2 vendor processes (PostgreSQL)',
};

/** Which variants each row needs: its own and those it is compared with. */
const ROW_VARIANTS: Record<HttpRow, VariantKey[]> = {
  sqlite: ['free-sqlite', 'paid-sqlite'],
  'sqlite-threadpool': ['paid-sqlite', 'paid-sqlite-threadpool'],
  'sqlite-full': ['paid-sqlite', 'paid-sqlite-full'],
  pg: ['free-pg', 'paid-pg', 'paid-sqlite'],
  ed25519: ['paid-sqlite', 'ed25519'],
  eip712: ['paid-sqlite', 'eip712'],
  nginx: ['nginx-1-vendor', 'nginx-2-vendors'],
};
const ORDER: VariantKey[] = [
  'free-sqlite',
  'paid-sqlite',
  'paid-sqlite-threadpool',
  'paid-sqlite-full',
  'free-pg',
  'paid-pg',
  'ed25519',
  'eip712',
  'nginx-1-vendor',
  'nginx-2-vendors',
];

/** What the rows need from the benchmark: the broker to register vendors at, the load, free ports, stores. */
export interface HttpRowsContext {
  brokerUrl: string;
  /** The broker's API base, `…/api/v1`. */
  api: string;
  customerToken: string;
  /** Registers a vendor at the broker with a signing key made in `keyDir`; answers its API key. */
  addVendor(vendor: { vendorId: string; url: string; releaseUrl: string; keyDir: string }): Promise<string>;
  load: LoadProcess;
  dir: string;
  freePort(): Promise<number>;
  /** A PostgreSQL spend-store URL of its own; `drop` removes what the benchmark made. */
  pgStore(): Promise<{ url: string; drop(): Promise<void> }>;
}

export interface HttpRowsOptions {
  rows: ReadonlySet<HttpRow>;
  connections: number;
  durationSec: number;
  warmupSec: number;
  rounds: number;
  chainLength: number;
  /** Signed payments made ahead for the anchor routes. */
  signedPoolSize: number;
}

export interface HttpRowsResult {
  load: { start: MachineLoad; end: MachineLoad };
  variants: Partial<Record<VariantKey, VariantSummary & { label: string }>>;
  ratios: {
    paidOverFreeSqlite?: Spread;
    autoOverThreadpoolSqlite?: Spread;
    autoOverFullSqlite?: Spread;
    paidOverFreePg?: Spread;
    pgOverSqlitePaid?: Spread;
    paidOverEd25519?: Spread;
    paidOverEip712?: Spread;
    twoVendorsOverOne?: Spread;
  };
  /** Rows that could not run on this machine, with why. */
  skipped: Partial<Record<HttpRow, string>>;
}

/**
 * Starts the vendors the selected rows need, buys and claims their coins, runs the rounds and stops everything.
 *
 * @example
 * const result = await runHttpRows(context, { rows: new Set(['sqlite']), connections: 50, … }, console.error);
 */
export async function runHttpRows(
  ctx: HttpRowsContext,
  options: HttpRowsOptions,
  progress: (line: string) => void,
): Promise<HttpRowsResult> {
  const start = machineLoad();
  const skipped: HttpRowsResult['skipped'] = {};
  const rows = new Set(options.rows);
  const stops: Array<() => Promise<void>> = [];
  const vendorUrls = new Map<VariantKey, string>();
  // The one vendor process that answers a variant (none behind nginx): its CPU per request and its store's counts
  // are reported.
  const vendorProcesses = new Map<VariantKey, VendorProcess>();
  const answers = (keys: readonly VariantKey[], v: VendorProcess) => {
    for (const k of keys) {
      vendorUrls.set(k, v.url);
      vendorProcesses.set(k, v);
    }
  };
  try {
    const nginx = rows.has('nginx') ? findNginx() : undefined;
    if (rows.has('nginx') && !nginx) {
      skipped.nginx = NGINX_MISSING;
      rows.delete('nginx');
    }
    const wantedBy = (selected: ReadonlySet<HttpRow>) => new Set([...selected].flatMap((r) => ROW_VARIANTS[r]));
    let wanted = wantedBy(rows);
    // A row whose vendors cannot start here (no PostgreSQL server, nginx failing) is reported, and the rest run.
    const orSkip = async (row: HttpRow, start: () => Promise<void>) => {
      try {
        await start();
      } catch (error) {
        skipped[row] = `${row}: could not start (${error instanceof Error ? error.message : String(error)})`;
        rows.delete(row);
      }
    };

    // One vendor: its own signing key, registered at the broker under its URL, then started as a process.
    const vendor = async (
      vendorId: string,
      storeUrl: string,
      signatureRoutes: boolean,
      env: Record<string, string> = {},
    ): Promise<VendorProcess> => {
      const port = await ctx.freePort();
      const url = `http://127.0.0.1:${port}`;
      const keyDir = join(ctx.dir, 'vendors', vendorId);
      const releaseUrl = `${url}/netpay/release`;
      const apiKey = await ctx.addVendor({ vendorId, url: `${url}/`, releaseUrl, keyDir });
      const child = await startVendorProcess(
        {
          vendorId,
          brokerUrl: ctx.brokerUrl,
          apiKey,
          keyDir,
          storeUrl,
          releaseUrl,
          port,
          signatureRoutes,
        },
        { env },
      );
      stops.push(() => child.close());
      return child;
    };

    if (wanted.has('paid-sqlite') || wanted.has('free-sqlite')) {
      progress('starting the SQLite vendor …');
      const v = await vendor('bench-sqlite', `sqlite:${join(ctx.dir, 'vendors', 'bench-sqlite', 'spend.db')}`, true);
      answers(['free-sqlite', 'paid-sqlite', 'ed25519', 'eip712'], v);
    }
    // The same paid article on SQLite vendors whose durable write differs: only the environment tells them apart.
    const sqliteVariants = [
      {
        key: 'paid-sqlite-threadpool',
        what: 'with every fsync on the threadpool',
        env: { NETPAY_SQLITE_FSYNC: 'threadpool' },
      },
      {
        key: 'paid-sqlite-full',
        what: 'with the fsync in every commit (FULL)',
        env: { NETPAY_SQLITE_SYNCHRONOUS: 'FULL' },
      },
    ] as const;
    for (const { key, what, env } of sqliteVariants) {
      if (!wanted.has(key)) continue;
      progress(`starting the SQLite vendor ${what} …`);
      const name = `bench-${key.slice('paid-'.length)}`;
      answers([key], await vendor(name, `sqlite:${join(ctx.dir, 'vendors', name, 'spend.db')}`, false, env));
    }
    if (wanted.has('paid-pg')) {
      await orSkip('pg', async () => {
        progress('starting the PostgreSQL vendor …');
        const store = await ctx.pgStore();
        stops.push(() => store.drop());
        const v = await vendor('bench-pg', store.url, false);
        answers(['free-pg', 'paid-pg'], v);
      });
    }
    if (wanted.has('nginx-2-vendors') && nginx)
      await orSkip('nginx', async () => {
        progress('starting two processes of one vendor on one PostgreSQL store, and nginx in front …');
        const store = await ctx.pgStore();
        stops.push(() => store.drop());
        const [front2, front1, port1, port2] = await Promise.all([
          ctx.freePort(),
          ctx.freePort(),
          ctx.freePort(),
          ctx.freePort(),
        ]);
        const vendorId = 'bench-fleet';
        const keyDir = join(ctx.dir, 'vendors', vendorId);
        const releaseUrl = `http://127.0.0.1:${front2}/netpay/release`;
        const apiKey = await ctx.addVendor({ vendorId, url: `http://127.0.0.1:${front2}/`, releaseUrl, keyDir });
        const common = { vendorId, brokerUrl: ctx.brokerUrl, apiKey, keyDir, storeUrl: store.url, releaseUrl };
        // One after the other: the first migrates the empty store.
        for (const port of [port1, port2]) {
          const p = await startVendorProcess({ ...common, port });
          stops.push(() => p.close());
        }
        const proxies: RunningNginx[] = [];
        for (const [port, upstreams] of [
          [front1, [`127.0.0.1:${port1}`]],
          [front2, [`127.0.0.1:${port1}`, `127.0.0.1:${port2}`]],
        ] as const) {
          const proxy = await startNginx({ nginx, port, upstreams });
          proxies.push(proxy);
          stops.push(() => proxy.stop());
        }
        vendorUrls.set('nginx-1-vendor', (proxies[0] as RunningNginx).url);
        vendorUrls.set('nginx-2-vendors', (proxies[1] as RunningNginx).url);
      });
    wanted = wantedBy(rows);

    // Coins for every paid variant: one a connection and spares, each claimed by its first payment now so that
    // the rounds measure payments at a vendor that holds the chain.
    const paidKeys = (
      [
        'paid-sqlite',
        'paid-sqlite-threadpool',
        'paid-sqlite-full',
        'paid-pg',
        'nginx-1-vendor',
        'nginx-2-vendors',
      ] as const
    ).filter((k) => wanted.has(k));
    const coins = options.connections + Math.ceil(options.connections / 5) + 2;
    const pools = new Map<VariantKey, LoadChain[]>();
    for (const key of paidKeys) {
      progress(`buying ${coins} coins of ${options.chainLength} units for ${key} and paying once with each …`);
      const { chains } = await ctx.load.run({
        kind: 'buy',
        api: ctx.api,
        customerToken: ctx.customerToken,
        count: coins,
        length: options.chainLength,
        concurrency: 4,
      });
      const first = await ctx.load.run({
        kind: 'first-payment',
        url: `${vendorUrls.get(key)}/api/articles/${PAID_ID}`,
        chains,
        concurrency: 4,
      });
      if (first.failures > 0) throw new Error(`${first.failures} first payments at ${key} were refused`);
      pools.set(
        key,
        chains.map((c) => ({ ...c, startIndex: 1 })),
      );
    }

    const signed = new Map<VariantKey, { name: string; values: string[] }>();
    if (wanted.has('ed25519')) {
      const values = makeEd25519Payments(options.signedPoolSize, { payTo: 'bench-sqlite', amountMinor: 1 });
      signed.set('ed25519', { name: ED25519_PAYMENT_HEADER, values });
    }
    if (wanted.has('eip712')) {
      progress(`signing ${options.signedPoolSize} EIP-712 payments ahead …`);
      signed.set('eip712', { name: EIP712_PAYMENT_HEADER, values: makeEip712Payments(options.signedPoolSize) });
    }

    const pathOf: Record<VariantKey, string> = {
      'free-sqlite': `/api/articles/${FREE_ID}`,
      'paid-sqlite': `/api/articles/${PAID_ID}`,
      'paid-sqlite-threadpool': `/api/articles/${PAID_ID}`,
      'paid-sqlite-full': `/api/articles/${PAID_ID}`,
      'free-pg': `/api/articles/${FREE_ID}`,
      'paid-pg': `/api/articles/${PAID_ID}`,
      ed25519: `${ED25519_PATH}/${PAID_ID}`,
      eip712: `${EIP712_PATH}/${PAID_ID}`,
      'nginx-1-vendor': `/api/articles/${PAID_ID}`,
      'nginx-2-vendors': `/api/articles/${PAID_ID}`,
    };
    const variants: Variant<VariantKey>[] = ORDER.filter((k) => wanted.has(k)).map((key) => ({
      key,
      label: LABELS[key],
      ...(SQLITE_PAID.has(key) ? { settle: () => settleWal(key) } : {}),
      run: async (durationSec: number) => {
        const pool = pools.get(key);
        const store = vendorProcesses.get(key);
        const pid = store?.pid;
        const storeBefore = await store?.store();
        const cpuBefore = processCpuMs(pid);
        const loadBefore = processCpuMs(ctx.load.pid);
        const { result, lastSent } = await ctx.load.run({
          kind: 'http',
          url: vendorUrls.get(key) as string,
          path: pathOf[key],
          connections: options.connections,
          durationSec,
          ...(pool ? { chains: pool } : {}),
          ...(signed.has(key) ? { headerPool: signed.get(key) } : {}),
        });
        // Each paid round carries on every chain from the last index the previous one sent (a request cut off
        // at the end of a round only makes the next payment a unit larger, which the protocol accepts).
        if (pool) for (const c of pool) c.startIndex = lastSent[c.chainId] ?? c.startIndex;
        const figures: Sample = result;
        const cpuAfter = processCpuMs(pid);
        const loadAfter = processCpuMs(ctx.load.pid);
        const storeAfter = await store?.store();
        const answers = figures.ok + figures.other;
        const perAnswer = (before: number | undefined, after: number | undefined) =>
          before === undefined || after === undefined || answers === 0
            ? undefined
            : ((after - before) * 1000) / answers;
        const vendorCpu = perAnswer(cpuBefore, cpuAfter);
        const loadCpu = perAnswer(loadBefore, loadAfter);
        return {
          ...figures,
          ...storeFigures(storeBefore, storeAfter),
          ...(vendorCpu === undefined ? {} : { cpuUsPerRequest: vendorCpu }),
          ...(loadCpu === undefined ? {} : { loadCpuUsPerRequest: loadCpu }),
        };
      },
    }));
    // A SQLite vendor just started writes its WAL into new blocks until the WAL first restarts (at about
    // WAL_RESTART_FRAMES frames), and each of those fsyncs also carries the file's new size: measured here, 0.44 ms
    // against 0.26 ms once SQLite overwrites the file in place, as it does for the rest of a vendor's life. The
    // rounds measure that steady state: each SQLite vendor is paid until its -wal file stops growing.
    const settleWal = async (key: VariantKey): Promise<string> => {
      const store = vendorProcesses.get(key);
      if (!store) return 'no store to settle';
      let seconds = 0;
      let size = (await store.store()).walBytes;
      while (seconds < WAL_SETTLE_MAX_SEC) {
        await variants.find((v) => v.key === key)?.run(WAL_SETTLE_STEP_SEC);
        seconds += WAL_SETTLE_STEP_SEC;
        const now = (await store.store()).walBytes;
        if (now > 0 && now === size) {
          return `its WAL file stopped growing at ${(now / 1e6).toFixed(1)} MB after ${seconds} s of payments`;
        }
        size = now;
      }
      return `its WAL file still grew after ${seconds} s of payments (${(size / 1e6).toFixed(1)} MB): measured growing`;
    };
    const samples = await alternate(
      variants,
      { rounds: options.rounds, durationSec: options.durationSec, warmupSec: options.warmupSec },
      progress,
    );

    const result: HttpRowsResult = { load: { start, end: machineLoad() }, variants: {}, ratios: {}, skipped };
    for (const v of variants) result.variants[v.key] = { label: v.label, ...summarize(samples[v.key]) };
    const both = (a: VariantKey, b: VariantKey) => wanted.has(a) && wanted.has(b);
    if (rows.has('sqlite')) result.ratios.paidOverFreeSqlite = ratio(samples['paid-sqlite'], samples['free-sqlite']);
    if (rows.has('sqlite-threadpool') && both('paid-sqlite', 'paid-sqlite-threadpool')) {
      result.ratios.autoOverThreadpoolSqlite = ratio(samples['paid-sqlite'], samples['paid-sqlite-threadpool']);
    }
    if (rows.has('sqlite-full') && both('paid-sqlite', 'paid-sqlite-full')) {
      result.ratios.autoOverFullSqlite = ratio(samples['paid-sqlite'], samples['paid-sqlite-full']);
    }
    if (rows.has('pg') && both('paid-pg', 'free-pg')) {
      result.ratios.paidOverFreePg = ratio(samples['paid-pg'], samples['free-pg']);
      result.ratios.pgOverSqlitePaid = ratio(samples['paid-pg'], samples['paid-sqlite']);
    }
    if (rows.has('ed25519')) result.ratios.paidOverEd25519 = ratio(samples['paid-sqlite'], samples.ed25519);
    if (rows.has('eip712')) result.ratios.paidOverEip712 = ratio(samples['paid-sqlite'], samples.eip712);
    if (rows.has('nginx')) {
      result.ratios.twoVendorsOverOne = ratio(samples['nginx-2-vendors'], samples['nginx-1-vendor']);
    }
    return result;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

/** The paid variants on SQLite stores, whose WAL files are brought to their steady size before the rounds. */
const SQLITE_PAID: ReadonlySet<VariantKey> = new Set<VariantKey>([
  'paid-sqlite',
  'paid-sqlite-threadpool',
  'paid-sqlite-full',
]);
/** Payments run in steps of this long until the -wal file keeps its size over one, for at most the second figure. */
const WAL_SETTLE_STEP_SEC = 2;
const WAL_SETTLE_MAX_SEC = 30;

/**
 * Payments a commit, the share of fsyncs on the event loop, and the loop's time in them per payment over one run,
 * from the store's counts around it.
 */
function storeFigures(
  before: StoreCounts | undefined,
  after: StoreCounts | undefined,
): Pick<Sample, 'paymentsPerCommit' | 'fsyncsOnLoop' | 'loopFsyncUsPerPayment'> {
  if (!before || !after) return {};
  const commits = after.commits - before.commits;
  const payments = after.payments - before.payments;
  const onLoop = after.fsyncsOnLoop - before.fsyncsOnLoop;
  const fsyncs = onLoop + after.fsyncsOnThreadpool - before.fsyncsOnThreadpool;
  const loopSeconds = after.fsyncSecondsOnLoop - before.fsyncSecondsOnLoop;
  return {
    ...(commits > 0 ? { paymentsPerCommit: payments / commits } : {}),
    ...(fsyncs > 0 ? { fsyncsOnLoop: onLoop / fsyncs } : {}),
    ...(payments > 0 && fsyncs > 0 ? { loopFsyncUsPerPayment: (loopSeconds * 1e6) / payments } : {}),
  };
}
