/**
 * `npm run bench`: what a payment costs a vendor.
 *
 * 1. HTTP: a real bank, broker and one newspaper vendor in this process on loopback; the same article route is
 *    loaded by autocannon in a separate process (bench-load.ts) once for a free article and once for a paid one (every paid request carries a fresh
 *    payword of the connection's own client-made chain), printing requests/s, the paid/free ratio and p99s.
 * 2. CPU: PayWord verification (one SHA-256) beside Ed25519 verification, each for about a second.
 *
 * Tooling only: this is the one file of the newspaper that imports the bank and the broker, and it is never run
 * by the tests.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import type { Logger } from 'pino';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  b64uEncode,
  formatAuthorization,
  generateSigningKey,
  PaywordChain,
  signTouchstone,
  verifyPayword,
  verifyTouchstone,
} from '@netpay/protocol';
import { type BankSchema, createBankApp } from '@netpay/bank';
import { type BrokerSchema, createBrokerApp, HttpBank, registerVendor } from '@netpay/broker';
import { createLogger, hashToken, newSecret, openDatabase, parseCommandLine, rfc3339 } from '@netpay/service-kit';
import { createNetPayVendor, createSpendStore, loadOrCreateVendorKey, type NetPayVendor } from '@netpay/vendor-sdk';
import type { Result } from 'autocannon';
import type { LoadPlan } from './bench-load.ts';
import { createNewspaperApp } from './app.ts';
import { BENCH_COMMAND } from './cli-commands.ts';
import { type Site, SITES } from './site.ts';

export interface BenchOptions {
  connections: number;
  durationSec: number;
  /** Length of each client-made chain (units of 1 cent). */
  chainLength: number;
  /** How long each CPU measurement runs. */
  cpuMs: number;
  /** Alternating free/paid rounds; the ratio printed is their median. */
  rounds: number;
}

/** The article served by both runs; only its price differs. */
const FREE_ID = 'bench-free';
const PAID_ID = 'bench-paid';

function benchSite(): Site {
  const base = SITES['daily-planet'];
  const model = base.articles.find((a) => a.priceMinor > 0) ?? (base.articles[0] as Site['articles'][number]);
  return {
    ...base,
    articles: [
      { ...model, id: FREE_ID, priceMinor: 0 },
      { ...model, id: PAID_ID, priceMinor: 1 },
    ],
  };
}

function intOption(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

/** How many times a second `fn` runs, measured for about `ms` after a short warm-up. */
export function opsPerSecond(fn: () => boolean, ms: number): number {
  const batch = 64;
  const warmUntil = performance.now() + Math.min(200, ms / 5);
  while (performance.now() < warmUntil) if (!fn()) throw new Error('benchmark function returned false');
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < batch; i++) if (!fn()) throw new Error('benchmark function returned false');
    count += batch;
    now = performance.now();
  }
  return (count * 1000) / (now - start);
}

/** PayWord (1 step) and Ed25519 verifications per second. */
export function cpuBench(ms: number): { paywordPerSec: number; ed25519PerSec: number } {
  const chain = PaywordChain.generate(2);
  const known = { index: 0, payword: chain.anchor };
  const presented = { index: 1, payword: chain.payword(1) };
  const paywordPerSec = opsPerSecond(() => verifyPayword({ chainId: chain.chainId, known, presented }), ms);

  const key = generateSigningKey();
  const now = new Date();
  const touchstone = signTouchstone(
    {
      chainId: chain.chainIdB64,
      anchor: chain.anchorB64,
      length: 2,
      unit: 1,
      currency: 'NZD',
      broker: 'http://127.0.0.1:4000',
      keyId: 'bench',
      issuedAt: rfc3339(now),
      expiresAt: rfc3339(new Date(now.getTime() + 86_400_000)),
    },
    key.privateSeed,
  );
  const ed25519PerSec = opsPerSecond(() => verifyTouchstone(touchstone, key.publicKey), ms);
  return { paywordPerSec, ed25519PerSec };
}

/** A free loopback port (closed again before the caller listens on it). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
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

/**
 * Starts a real bank, broker and newspaper vendor on loopback, registers the vendor and signs up a customer.
 * Used by the benchmark and by the newspaper's over-HTTP test.
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
      config: { publicUrl: brokerUrl, ...(options.feeBps !== undefined ? { feeBps: options.feeBps } : {}) },
      logger,
    });
    closers.push(() => broker.close());
    await broker.listen({ host: '127.0.0.1', port: Number(new URL(brokerUrl).port) });

    const vendorUrl = `http://127.0.0.1:${options.vendorPort ?? (await freePort())}`;
    const vendorDir = join(dir, 'vendors', site.vendorId);
    const key = loadOrCreateVendorKey(vendorDir);
    const { apiKey } = await registerVendor(brokerDb.db, {
      id: site.vendorId,
      name: site.name,
      url: `${vendorUrl}/`,
      releaseUrl: `${vendorUrl}/netpay/release`,
      publicKey: b64uEncode(key.publicKey),
      keyId: key.keyId,
    });
    const store = await createSpendStore(`sqlite:${join(vendorDir, 'spend.db')}`);
    closers.push(() => store.close());
    const vendor = createNetPayVendor({
      vendorId: site.vendorId,
      brokerUrl,
      apiKey,
      signingKey: { privateSeed: key.privateSeed, keyId: key.keyId },
      releaseUrl: `${vendorUrl}/netpay/release`,
      store,
      logger,
      currency: site.currency,
    });
    closers.push(() => vendor.close());
    const app = createNewspaperApp({ site, vendor, brokerUrl, logger });
    closers.push(() => app.close());
    await app.listen({ host: '127.0.0.1', port: Number(new URL(vendorUrl).port) });

    const api = `${brokerUrl}/api/v1`;
    const email = `reader-${Date.now()}@example.test`;
    const password = 'correct horse battery staple';
    await postJson(`${api}/customers`, { email, password });
    const { token } = (await postJson(`${api}/sessions`, { email, password })) as { token: string };

    const buyChain = async (length: number): Promise<PaywordChain> => {
      const chain = PaywordChain.generate(length);
      await postJson(
        `${api}/coins`,
        { amount: length, unit: 1, chainId: chain.chainIdB64, anchor: chain.anchorB64, payment: { card: TEST_CARD } },
        { authorization: `Bearer ${token}`, 'idempotency-key': newSecret('bench_') },
      );
      return chain;
    };
    return { bankUrl, brokerUrl, vendorUrl, vendor, apiKey, customerToken: token, buyChain, close };
  } catch (err) {
    await close();
    throw err;
  }
}

let PIN_CPUS: { load: number } | undefined;

/** Pins this process (the vendor, broker and bank) to every CPU but the last, which the load generator gets. */
function pinCpus(): void {
  const cpus = availableParallelism();
  if (cpus < 2) throw new Error('--pin needs at least 2 CPUs');
  const result = spawnSync('taskset', ['-a', '-cp', `0-${cpus - 2}`, String(process.pid)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`taskset failed: ${result.stderr || result.error}`);
  PIN_CPUS = { load: cpus - 1 };
}

/** Runs one load in a separate process (see bench-load.ts); returns autocannon's result and the last index sent per chain. */
async function runLoad(plan: LoadPlan): Promise<{ result: Result; lastSent: Record<string, number> }> {
  const loadArgs = ['--import', 'tsx', fileURLToPath(new URL('./bench-load.ts', import.meta.url))];
  // With --pin, the load generator gets the last CPU and the vendor the others, so neither steals the other's
  // core mid-run (on a 2-core machine this is what makes rounds comparable).
  const child = spawn(
    PIN_CPUS ? 'taskset' : process.execPath,
    PIN_CPUS ? ['-c', String(PIN_CPUS.load), process.execPath, ...loadArgs] : loadArgs,
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const out: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stdin.end(JSON.stringify(plan));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the load generator exited with ${code}`);
  return JSON.parse(Buffer.concat(out).toString('utf8')) as { result: Result; lastSent: Record<string, number> };
}

interface Row {
  name: string;
  reqPerSec: number;
  p50: number;
  p99: number;
  ok: number;
  other: number;
}

function row(name: string, r: Result): Row {
  const ok = r['2xx'];
  return {
    name,
    reqPerSec: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    ok,
    other: r.non2xx + r.errors,
  };
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? ':' : '-') + '-'.repeat(w) + (i === 0 ? '-' : ':')).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** autocannon records latency in whole milliseconds, so 0 means under one. */
const ms = (n: number) => (n < 1 ? '<1' : fmt(n));
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function httpBench(
  options: BenchOptions,
  print: (line: string) => void,
): Promise<Array<{ free: Row; paid: Row }>> {
  const dir = mkdtempSync(join(tmpdir(), 'netpay-bench-'));
  const logger = createLogger('bench', process.env.NETPAY_LOG_LEVEL ?? 'warn');
  const site = benchSite();
  const network = await startBenchNetwork({ dir, site, logger });
  try {
    // One coin per connection plus spares: purchases are rate-limited per customer, as in production.
    const coins = options.connections + 2;
    print(
      `buying ${coins} coins of ${options.chainLength} units and paying once with each (the first payment claims)…`,
    );
    const chains: PaywordChain[] = [];
    for (let i = 0; i < coins; i++) chains.push(await network.buyChain(options.chainLength));
    // The first payment on a chain claims it from the broker; pay index 1 now so the runs measure steady state.
    const start = new Map<PaywordChain, number>();
    for (const chain of chains) {
      const res = await fetch(`${network.vendorUrl}/api/articles/${PAID_ID}`, {
        headers: {
          accept: 'application/json',
          authorization: formatAuthorization({ chain: chain.chainIdB64, index: 1, payword: chain.b64(1) }),
        },
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`warm-up payment answered ${res.status}`);
      start.set(chain, 1);
    }
    // Free and paid alternate, after a warm-up of each, so that drift of the machine (JIT, CPU frequency,
    // neighbours) falls on both alike; the ratio is the median of the rounds. Each paid round carries on every
    // chain from the last index the previous one sent (a request cut off at the end of a round only makes the
    // next payment a unit larger, which the protocol accepts).
    const next = new Map(chains.map((chain) => [chain.chainIdB64, start.get(chain) ?? 0]));
    const paidLoad = async (durationSec: number): Promise<Result> => {
      const { result, lastSent } = await runLoad({
        url: network.vendorUrl,
        connections: options.connections,
        durationSec,
        path: `/api/articles/${PAID_ID}`,
        chains: chains.map((chain) => ({
          chainId: chain.chainIdB64,
          seed: chain.seedB64,
          length: chain.length,
          startIndex: next.get(chain.chainIdB64) ?? 0,
        })),
      });
      for (const [chainId, index] of Object.entries(lastSent)) next.set(chainId, index);
      return result;
    };
    const freeLoad = async (durationSec: number): Promise<Result> =>
      (
        await runLoad({
          url: network.vendorUrl,
          connections: options.connections,
          durationSec,
          path: `/api/articles/${FREE_ID}`,
        })
      ).result;
    print('warming up both routes (1 s each) …');
    await freeLoad(1);
    await paidLoad(1);
    const rounds: Array<{ free: Row; paid: Row }> = [];
    for (let r = 1; r <= options.rounds; r++) {
      print(
        `round ${r}/${options.rounds}: free then paid, ${options.connections} connections × ${options.durationSec} s each …`,
      );
      const free = row(`GET /api/articles/${FREE_ID} (free)`, await freeLoad(options.durationSec));
      const paid = row(`GET /api/articles/${PAID_ID} (1 cent)`, await paidLoad(options.durationSec));
      rounds.push({ free, paid });
    }
    return rounds;
  } finally {
    await network.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs the benchmark and prints its tables; BENCH_COMMAND lists its options.
 *
 * @example
 * await runBench(['--duration', '5']);
 */
export async function runBench(argv: string[], print: (line: string) => void = console.log): Promise<void> {
  const { values } = parseCommandLine(BENCH_COMMAND, argv);
  const options: BenchOptions = {
    connections: intOption(values.connections, 10, 'connections'),
    durationSec: intOption(values.duration, 5, 'duration'),
    chainLength: intOption(values['chain-length'], 20_000, 'chain-length'),
    cpuMs: intOption(values['cpu-ms'], 1000, 'cpu-ms'),
    rounds: intOption(values.rounds, 3, 'rounds'),
  };
  const cpus = availableParallelism();
  if (values.pin) pinCpus();
  print(
    `NetPay benchmark (Node ${process.version}, ${process.platform}/${process.arch}, ${cpus} CPUs` +
      `${PIN_CPUS ? `, load generator pinned to CPU ${PIN_CPUS.load}` : ''})\n`,
  );
  if (!values['skip-http']) {
    const rounds = await httpBench(options, print);
    print('');
    print(
      table(
        ['round', 'route', 'req/s', 'p50 ms', 'p99 ms', '2xx', 'other', 'paid/free'],
        rounds.flatMap(({ free, paid }, i) =>
          [free, paid].map((r) => [
            String(i + 1),
            r.name,
            fmt(r.reqPerSec),
            ms(r.p50),
            ms(r.p99),
            String(r.ok),
            String(r.other),
            r === paid ? fmt(paid.reqPerSec / free.reqPerSec, 2) : '',
          ]),
        ),
      ),
    );
    const ratios = rounds.map(({ free, paid }) => paid.reqPerSec / free.reqPerSec).sort((x, y) => x - y);
    const median = ratios[Math.floor(ratios.length / 2)] ?? 0;
    const p99 = (pick: (r: { free: Row; paid: Row }) => Row) => Math.max(...rounds.map((r) => pick(r).p99)).toString();
    print(
      `\npaid / free throughput (median of ${rounds.length} rounds): ${fmt(median, 2)};` +
        ` worst p99 free ${p99((r) => r.free)} ms, paid ${p99((r) => r.paid)} ms` +
        `\n(each paid request parses the header, verifies the payword by hashing and commits it to the spend store` +
        ` before answering; autocannon measures latency in whole ms)\n`,
    );
  }
  print(`verifying for ~${options.cpuMs} ms each …`);
  const cpu = cpuBench(options.cpuMs);
  print('');
  print(
    table(
      ['verification', 'per second'],
      [
        ['PayWord, 1 step (SHA-256)', fmt(cpu.paywordPerSec)],
        ['Ed25519 signature (touchstone)', fmt(cpu.ed25519PerSec)],
      ],
    ),
  );
  print(`\nPayWord / Ed25519: ${fmt(cpu.paywordPerSec / cpu.ed25519PerSec, 1)}× faster`);
}
