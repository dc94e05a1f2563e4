/**
 * `npm run bench`: what a payment costs, measured side by side in one run (BENCH_COMMAND lists the options).
 *
 * A real bank and broker run in this process on loopback; every measured vendor is a process of its own
 * (bench-vendor-process.ts) and every client runs in one load process (bench-load.ts), pinned to its own CPU
 * with --pin. The rows:
 *
 * - sqlite, sqlite-threadpool, sqlite-full, pg, ed25519, eip712, nginx (bench-http-rows.ts): throughput of routes in the same alternating rounds;
 * - first-payment, memory (bench-first-payment.ts): claim + first payment latency, vendor heap per chain;
 * - broker (bench-broker.ts): purchases, claims and redemption paywords per second;
 * - cpu (bench-cpu.ts): one check of each kind per second in this process.
 *
 * The machine's load is read at the start and end of each row; `--json` prints one object with every figure.
 *
 * Tooling, a composition root like the CLI: this is the one file of the newspaper that imports the bank and the
 * broker. Its test runs it once with --quick and checks only that every figure is there.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BankSchema, createBankApp } from '@netpay/bank';
import { type BrokerSchema, createBrokerApp, DEFAULT_CONFIG, HttpBank, registerVendor } from '@netpay/broker';
import { b64uEncode, PaywordChain } from '@netpay/protocol';
import {
  createLogger,
  freePort,
  hashToken,
  newSecret,
  openDatabase,
  parseCommandLine,
  UsageError,
} from '@netpay/service-kit';
import { createNetPayVendor, createSpendStore, loadOrCreateVendorKey, type NetPayVendor } from '@netpay/vendor-sdk';
import type { Logger } from 'pino';
import { createNewspaperApp } from './app.ts';
import { type BrokerResult, runBrokerRow } from './bench-broker.ts';
import { type CpuResult, cpuBench } from './bench-cpu.ts';
import { type FirstPaymentResult, runFirstPayments } from './bench-first-payment.ts';
import { HTTP_ROWS, type HttpRow, type HttpRowsResult, runHttpRows } from './bench-http-rows.ts';
import { startLoadProcess } from './bench-load-process.ts';
import { renderReport } from './bench-report.ts';
import { type MachineLoad, machineLoad } from './bench-stats.ts';
import { BENCH_COMMAND } from './cli-commands.ts';
import type { Site } from './site.ts';

export const BENCH_ROWS = [...HTTP_ROWS, 'first-payment', 'memory', 'broker', 'cpu'] as const;
export type BenchRow = (typeof BENCH_ROWS)[number];

export interface BenchOptions {
  rows: ReadonlySet<BenchRow>;
  json: boolean;
  quick: boolean;
  pgUrl?: string;
  connections: number;
  durationSec: number;
  warmupSec: number;
  rounds: number;
  /** Length of each client-made chain of the throughput rows (units of 1 cent). */
  chainLength: number;
  /** New chains paid once each (first payments, vendor memory). */
  chains: number;
  firstPaymentConcurrency: number;
  brokerChainsPerRound: number;
  /** Signed payments made ahead for the anchor routes. */
  signedPoolSize: number;
  /** How long each CPU check runs in all (split over the rounds). */
  cpuMs: number;
  pin: boolean;
}

/** Everything one run measured: what `--json` prints. */
export interface BenchReport {
  machine: { node: string; platform: string; arch: string; cpus: number; loadGeneratorCpu: number | null };
  options: Omit<BenchOptions, 'rows'> & { rows: BenchRow[] };
  load: { start: MachineLoad; end: MachineLoad };
  http?: HttpRowsResult;
  firstPayment?: Pick<FirstPaymentResult, 'load' | 'sequential' | 'concurrent'>;
  memory?: FirstPaymentResult['memory'] & { load: FirstPaymentResult['load'] };
  broker?: BrokerResult;
  cpu?: CpuResult;
  /** The medians of the headline ratios (each with its spread in its row). */
  ratios: Record<string, number>;
  /** Rows that could not run here, with why. */
  skipped: Record<string, string>;
}

function positive(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(BENCH_COMMAND.name, `--${name} must be at least 1`);
  return n;
}

/**
 * Reads the command line; `--quick` changes the defaults (not what is given).
 *
 * @throws UsageError on a bad option or an unknown row
 * @example
 * benchOptions(['--only', 'sqlite,pg', '--json']).rows; // Set { 'sqlite', 'pg' }
 */
export function benchOptions(argv: string[]): BenchOptions {
  const { values } = parseCommandLine(BENCH_COMMAND, argv);
  const quick = values.quick === true;
  let rows: Set<BenchRow> = new Set(BENCH_ROWS);
  if (values['skip-http']) rows = new Set(['cpu']);
  if (values.only !== undefined) {
    const named = values.only.split(',').map((r) => r.trim());
    for (const r of named) {
      if (!(BENCH_ROWS as readonly string[]).includes(r)) {
        throw new UsageError(BENCH_COMMAND.name, `unknown row '${r}' (rows: ${BENCH_ROWS.join(', ')})`);
      }
    }
    rows = new Set(named as BenchRow[]);
  }
  const rounds = positive(values.rounds, quick ? 1 : 3, 'rounds');
  return {
    rows,
    json: values.json === true,
    quick,
    ...(values.pg !== undefined ? { pgUrl: values.pg } : {}),
    connections: positive(values.connections, quick ? 2 : 50, 'connections'),
    durationSec: positive(values.duration, quick ? 1 : 5, 'duration'),
    warmupSec: quick ? 0 : 1,
    rounds,
    chainLength: positive(values['chain-length'], 20_000, 'chain-length'),
    chains: positive(values.chains, quick ? 60 : 1000, 'chains'),
    firstPaymentConcurrency: quick ? 2 : 8,
    brokerChainsPerRound: positive(values['broker-chains'], quick ? 8 : 200, 'broker-chains'),
    signedPoolSize: quick ? 20 : 1000,
    cpuMs: positive(values['cpu-ms'], quick ? 60 : 900, 'cpu-ms'),
    pin: values.pin === true,
  };
}

/** The sandbox bank's always-approved test card. */
export const TEST_CARD = { number: '4242424242424242', expiry: '12/39', cvc: '123' };

async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${url} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/** A real bank and broker in this process on loopback, with a signed-in customer. */
export interface BenchBroker {
  bankUrl: string;
  brokerUrl: string;
  /** The broker's API base, `…/api/v1`. */
  api: string;
  /** The customer's bearer token at the broker. */
  customerToken: string;
  /** Registers a vendor with its signing key made (or found) in `keyDir`; answers its API key. */
  addVendor(vendor: {
    vendorId: string;
    name?: string;
    url: string;
    releaseUrl: string;
    keyDir: string;
  }): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts a sandbox bank and a broker (both on SQLite files in `dir`) and signs up a customer.
 *
 * @example
 * const broker = await startBankAndBroker({ dir, logger });
 * const apiKey = await broker.addVendor({ vendorId: 'v', url, releaseUrl, keyDir });
 */
export async function startBankAndBroker(options: {
  dir: string;
  logger: Logger;
  feeBps?: number;
  /** Coin purchases one customer may make: burst and per second (the benchmark measures the broker, not this). */
  purchasesPerCustomer?: [capacity: number, perSecond: number];
  /** The broker's hash workers (its default leaves a core to the event loop). */
  hashWorkers?: number;
}): Promise<BenchBroker> {
  const { dir, logger } = options;
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const fn of closers.reverse()) await fn();
  };
  try {
    const bankDb = openDatabase<BankSchema>(`sqlite:${join(dir, 'bank.db')}`);
    closers.push(() => bankDb.close());
    const bankKey = newSecret('bk_');
    const bank = createBankApp({ db: bankDb.db, engine: bankDb.engine, apiKeyHash: hashToken(bankKey), logger });
    closers.push(() => bank.close());
    const bankUrl = (await bank.listen({ host: '127.0.0.1', port: 0 })).replace('localhost', '127.0.0.1');

    const brokerDb = openDatabase<BrokerSchema>(`sqlite:${join(dir, 'broker.db')}`);
    closers.push(() => brokerDb.close());
    const brokerUrl = `http://127.0.0.1:${await freePort()}`;
    const broker = await createBrokerApp({
      db: brokerDb.db,
      engine: brokerDb.engine,
      bank: new HttpBank({ url: bankUrl, apiKey: bankKey }),
      config: {
        publicUrl: brokerUrl,
        ...(options.feeBps !== undefined ? { feeBps: options.feeBps } : {}),
        ...(options.hashWorkers !== undefined ? { hashWorkers: options.hashWorkers } : {}),
        ...(options.purchasesPerCustomer
          ? {
              rateLimits: { ...DEFAULT_CONFIG.rateLimits, coinPurchasesPerCustomer: options.purchasesPerCustomer },
            }
          : {}),
      },
      logger,
    });
    closers.push(() => broker.close());
    await broker.listen({ host: '127.0.0.1', port: Number(new URL(brokerUrl).port) });

    const api = `${brokerUrl}/api/v1`;
    const email = `reader-${Date.now()}@example.test`;
    const password = 'correct horse battery staple';
    await postJson(`${api}/customers`, { email, password });
    const { token } = (await postJson(`${api}/sessions`, { email, password })) as { token: string };

    const addVendor: BenchBroker['addVendor'] = async (v) => {
      const key = loadOrCreateVendorKey(v.keyDir);
      const { apiKey } = await registerVendor(brokerDb.db, {
        id: v.vendorId,
        name: v.name ?? v.vendorId,
        url: v.url,
        releaseUrl: v.releaseUrl,
        publicKey: b64uEncode(key.publicKey),
        keyId: key.keyId,
      });
      return apiKey;
    };
    return { bankUrl, brokerUrl, api, customerToken: token, addVendor, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A bank, a broker and one newspaper vendor running in this process on loopback, and a customer of the broker. */
export interface BenchNetwork {
  bankUrl: string;
  brokerUrl: string;
  vendorUrl: string;
  vendor: NetPayVendor;
  /** The vendor's API key at the broker; its key and spend store live in `<dir>/vendors/<vendorId>/`. */
  apiKey: string;
  /** The customer's bearer token at the broker. */
  customerToken: string;
  /** Buys a coin made here (client-side wallet style: the broker sees only the anchor) of `length` 1-cent units. */
  buyChain(length: number): Promise<PaywordChain>;
  close(): Promise<void>;
}

/**
 * Starts a real bank, broker and newspaper vendor on loopback, registers the vendor and signs up a customer.
 * Used by the newspaper's and the CLI's over-HTTP tests.
 *
 * @example
 * const net = await startBenchNetwork({ dir, site: SITES['the-bugle'], logger });
 * const chain = await net.buyChain(100);
 */
export async function startBenchNetwork(options: {
  dir: string;
  site: Site;
  logger: Logger;
  vendorPort?: number;
  feeBps?: number;
}): Promise<BenchNetwork> {
  const { dir, site, logger } = options;
  const base = await startBankAndBroker({
    dir,
    logger,
    ...(options.feeBps !== undefined ? { feeBps: options.feeBps } : {}),
  });
  const closers: (() => Promise<void>)[] = [() => base.close()];
  const close = async () => {
    for (const fn of closers.reverse()) await fn();
  };
  try {
    const vendorUrl = `http://127.0.0.1:${options.vendorPort ?? (await freePort())}`;
    const vendorDir = join(dir, 'vendors', site.vendorId);
    const apiKey = await base.addVendor({
      vendorId: site.vendorId,
      name: site.name,
      url: `${vendorUrl}/`,
      releaseUrl: `${vendorUrl}/netpay/release`,
      keyDir: vendorDir,
    });
    const key = loadOrCreateVendorKey(vendorDir);
    const store = await createSpendStore(`sqlite:${join(vendorDir, 'spend.db')}`);
    closers.push(() => store.close());
    const vendor = createNetPayVendor({
      vendorId: site.vendorId,
      brokerUrl: base.brokerUrl,
      apiKey,
      signingKey: { privateSeed: key.privateSeed, keyId: key.keyId },
      releaseUrl: `${vendorUrl}/netpay/release`,
      store,
      logger,
      currency: site.currency,
    });
    closers.push(() => vendor.close());
    const app = createNewspaperApp({ site, vendor, brokerUrl: base.brokerUrl, logger });
    closers.push(() => app.close());
    await app.listen({ host: '127.0.0.1', port: Number(new URL(vendorUrl).port) });

    const buyChain = async (length: number): Promise<PaywordChain> => {
      const chain = PaywordChain.generate(length);
      await postJson(
        `${base.api}/coins`,
        { amount: length, unit: 1, chainId: chain.chainIdB64, anchor: chain.anchorB64, payment: { card: TEST_CARD } },
        { authorization: `Bearer ${base.customerToken}`, 'idempotency-key': newSecret('bench_') },
      );
      return chain;
    };
    return {
      bankUrl: base.bankUrl,
      brokerUrl: base.brokerUrl,
      vendorUrl,
      vendor,
      apiKey,
      customerToken: base.customerToken,
      buyChain,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Pins this process (bank, broker, and the vendors and nginx it starts) to every CPU but the last; answers that one. */
function pinCpus(): number {
  const cpus = availableParallelism();
  if (cpus < 2) throw new Error('--pin needs at least 2 CPUs');
  setAffinity(`0-${cpus - 2}`);
  return cpus - 1;
}

/** Every thread of this process (the broker's hash workers too) on `cpus`, a taskset list. */
function setAffinity(cpus: string): void {
  const result = spawnSync('taskset', ['-a', '-cp', cpus, String(process.pid)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`taskset failed: ${result.stderr || result.error}`);
}

/** A fresh PostgreSQL schema for a spend store, or the URL given with --pg (left as it is). */
async function pgStore(url: string | undefined): Promise<{ url: string; drop(): Promise<void> }> {
  if (url !== undefined) return { url, drop: async () => undefined };
  const { createTestDatabase } = await import('@netpay/service-kit/testing');
  const db = await createTestDatabase('postgres');
  return { url: db.url, drop: () => db.drop() };
}

/**
 * Runs the rows asked for and answers every figure; `progress` hears what it is doing.
 *
 * @example
 * const report = await measure(benchOptions(['--quick']), console.error);
 */
export async function measure(options: BenchOptions, progress: (line: string) => void): Promise<BenchReport> {
  // Read before pinning: a pinned process sees only its own CPUs.
  const cpus = availableParallelism();
  const loadCpu = options.pin ? pinCpus() : null;
  const start = machineLoad();
  const report: BenchReport = {
    machine: {
      node: process.version,
      platform: process.platform,
      arch: process.arch,
      cpus,
      loadGeneratorCpu: loadCpu,
    },
    options: { ...options, rows: BENCH_ROWS.filter((r) => options.rows.has(r)) },
    load: { start, end: start },
    ratios: {},
    skipped: {},
  };
  const dir = mkdtempSync(join(tmpdir(), 'netpay-bench-'));
  const logger = createLogger('bench', process.env.NETPAY_LOG_LEVEL ?? 'warn');
  const needsNetwork = [...options.rows].some((r) => r !== 'cpu');
  const broker = needsNetwork
    ? await startBankAndBroker({
        dir,
        logger,
        purchasesPerCustomer: [1_000_000_000, 1_000_000_000],
        // A hash worker per CPU: the broker row runs on every CPU (the issue's aim for redemption is "with both
        // cores"); while the other rows run pinned to one, the workers only share it.
        ...(options.pin ? { hashWorkers: cpus } : {}),
      })
    : undefined;
  const load = needsNetwork ? startLoadProcess(loadCpu === null ? {} : { cpu: loadCpu }) : undefined;
  try {
    if (broker && load) {
      const context = { ...broker, load, dir, freePort, pgStore: () => pgStore(options.pgUrl) };
      const httpRows = new Set(HTTP_ROWS.filter((r): r is HttpRow => options.rows.has(r)));
      if (httpRows.size > 0) {
        report.http = await runHttpRows(context, { ...options, rows: httpRows }, progress);
        Object.assign(report.skipped, report.http.skipped);
      }
      if (options.rows.has('first-payment') || options.rows.has('memory')) {
        const first = await runFirstPayments(
          context,
          { chains: options.chains, rounds: options.rounds, concurrency: options.firstPaymentConcurrency },
          progress,
        );
        if (options.rows.has('first-payment')) {
          report.firstPayment = { load: first.load, sequential: first.sequential, concurrent: first.concurrent };
        }
        if (options.rows.has('memory')) report.memory = { ...first.memory, load: first.load };
      }
      if (options.rows.has('broker')) {
        const row = await runBrokerRow(
          { ...context, keyDir: join(dir, 'vendors', 'bench-broker') },
          {
            chainsPerRound: options.brokerChainsPerRound,
            rounds: options.rounds,
            unitsPerItem: 1000,
            itemsPerRequest: 100,
            concurrency: 8,
            // Redemptions alone get every CPU: their load (two large requests at a time) is light, and their hash
            // checks are what a second core is for (the aim: 1 M paywords/s "with both cores").
            ...(loadCpu !== null
              ? {
                  async aroundRedemption<T>(redeem: () => Promise<T>): Promise<T> {
                    setAffinity(`0-${cpus - 1}`);
                    try {
                      return await redeem();
                    } finally {
                      setAffinity(`0-${cpus - 2}`);
                    }
                  },
                }
              : {}),
          },
          progress,
        );
        report.broker = { ...row, cpus: loadCpu !== null ? cpus : null };
      }
    }
    if (options.rows.has('cpu')) {
      progress('cpu: one check of each kind at a time …');
      report.cpu = cpuBench({ rounds: options.rounds, roundMs: Math.max(20, options.cpuMs / options.rounds) });
    }
  } finally {
    await load?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  report.load.end = machineLoad();
  const r = report.http?.ratios;
  const put = (name: string, value: number | undefined) => {
    if (value !== undefined) report.ratios[name] = value;
  };
  put('paidOverFreeSqlite', r?.paidOverFreeSqlite?.median);
  put('autoOverThreadpoolSqlite', r?.autoOverThreadpoolSqlite?.median);
  put('autoOverFullSqlite', r?.autoOverFullSqlite?.median);
  put('paidOverFreePg', r?.paidOverFreePg?.median);
  put('pgOverSqlitePaid', r?.pgOverSqlitePaid?.median);
  put('paidOverEd25519', r?.paidOverEd25519?.median);
  put('paidOverEip712', r?.paidOverEip712?.median);
  put('twoVendorsOverOne', r?.twoVendorsOverOne?.median);
  return report;
}

/**
 * `netpay bench`: runs the benchmark and prints its tables, or with `--json` one JSON object; progress goes to
 * stderr.
 *
 * @example
 * await runBench(['--only', 'sqlite', '--duration', '5']);
 */
export async function runBench(argv: string[], print: (line: string) => void = console.log): Promise<void> {
  const options = benchOptions(argv);
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  const report = await measure(options, progress);
  print(options.json ? JSON.stringify(report, null, 2) : renderReport(report));
}
