/**
 * Two rows on one vendor process (SQLite spend store, started with --expose-gc) that sees many readers for the
 * first time:
 *
 * - first-payment: claim + first payment, p50/p99 in milliseconds, each chain paid once, in rounds of a
 *   sequential batch then a batch at modest concurrency;
 * - memory: the vendor's heap after a forced collection, read before the chains and after each round. What one
 *   chain costs is the growth from the end of the first round to the end of the last, divided by the chains paid
 *   in between: what the first round's new code paths and caches take once is then not counted per chain (with a
 *   single round, the whole growth is).
 */
import { join } from 'node:path';
import type { LoadProcess } from './bench-load-process.ts';
import { PAID_ID } from './bench-site.ts';
import { type MachineLoad, machineLoad, quantile, type Spread, spread } from './bench-stats.ts';
import { startVendorProcess } from './bench-vendor-launch.ts';

export interface FirstPaymentContext {
  brokerUrl: string;
  api: string;
  customerToken: string;
  addVendor(vendor: { vendorId: string; url: string; releaseUrl: string; keyDir: string }): Promise<string>;
  load: LoadProcess;
  dir: string;
  freePort(): Promise<number>;
}

export interface FirstPaymentOptions {
  /** New chains in all, split evenly over the rounds and, within a round, over the two batches. */
  chains: number;
  rounds: number;
  concurrency: number;
}

export interface LatencyFigures {
  p50Ms: Spread;
  p99Ms: Spread;
  perSec: Spread;
}

export interface FirstPaymentResult {
  load: { start: MachineLoad; end: MachineLoad };
  sequential: LatencyFigures;
  concurrent: LatencyFigures & { concurrency: number };
  memory: {
    chains: number;
    bytesPerChain: number;
    heapBefore: number;
    heapAfter: number;
    rssBefore: number;
    rssAfter: number;
    /** The chains `bytesPerChain` is measured over (those after the first round, when there are several). */
    countedChains: number;
    /** Whether the collection was forced (else the figure is rough). */
    gc: boolean;
  };
}

/**
 * Runs both rows.
 *
 * @example
 * const { sequential, memory } = await runFirstPayments(context, { chains: 2000, rounds: 3, concurrency: 8 }, console.error);
 */
export async function runFirstPayments(
  ctx: FirstPaymentContext,
  options: FirstPaymentOptions,
  progress: (line: string) => void,
): Promise<FirstPaymentResult> {
  const start = machineLoad();
  const vendorId = 'bench-first';
  const port = await ctx.freePort();
  const url = `http://127.0.0.1:${port}`;
  const keyDir = join(ctx.dir, 'vendors', vendorId);
  const releaseUrl = `${url}/netpay/release`;
  const apiKey = await ctx.addVendor({ vendorId, url: `${url}/`, releaseUrl, keyDir });
  const vendor = await startVendorProcess(
    {
      vendorId,
      brokerUrl: ctx.brokerUrl,
      apiKey,
      keyDir,
      storeUrl: `sqlite:${join(keyDir, 'spend.db')}`,
      releaseUrl,
      port,
    },
    { exposeGc: true },
  );
  try {
    const perBatch = Math.max(1, Math.floor(options.chains / options.rounds / 2));
    const total = perBatch * 2 * options.rounds;
    progress(`buying ${total + 8} coins for first payments …`);
    const { chains } = await ctx.load.run({
      kind: 'buy',
      api: ctx.api,
      customerToken: ctx.customerToken,
      count: total + 8,
      length: 10,
      concurrency: 8,
    });
    const paidUrl = `${url}/api/articles/${PAID_ID}`;
    // The first readers warm the vendor up (discovery, the broker's keys, compiled code): before the heap is read.
    const warm = await ctx.load.run({
      kind: 'first-payment',
      url: paidUrl,
      chains: chains.slice(0, 8),
      concurrency: 2,
    });
    if (warm.failures > 0) throw new Error(`${warm.failures} warm-up first payments were refused`);
    const before = await vendor.heap();
    const afterRound: Array<Awaited<ReturnType<typeof vendor.heap>>> = [];
    const rest = chains.slice(8);
    const seq = { p50: [] as number[], p99: [] as number[], rate: [] as number[] };
    const conc = { p50: [] as number[], p99: [] as number[], rate: [] as number[] };
    for (let r = 0; r < options.rounds; r++) {
      progress(
        `first payments, round ${r + 1}/${options.rounds}: ${perBatch} one at a time, ${perBatch} ${options.concurrency} at a time …`,
      );
      for (const [into, concurrency, offset] of [
        [seq, 1, 0],
        [conc, options.concurrency, perBatch],
      ] as const) {
        const batch = rest.slice(2 * r * perBatch + offset, 2 * r * perBatch + offset + perBatch);
        const out = await ctx.load.run({ kind: 'first-payment', url: paidUrl, chains: batch, concurrency });
        if (out.failures > 0) throw new Error(`${out.failures} first payments were refused`);
        into.p50.push(quantile(out.latenciesMs, 0.5));
        into.p99.push(quantile(out.latenciesMs, 0.99));
        into.rate.push(batch.length / out.seconds);
      }
      afterRound.push(await vendor.heap());
    }
    const after = afterRound[afterRound.length - 1] ?? before;
    const from = afterRound.length >= 2 ? (afterRound[0] ?? before) : before;
    const counted = afterRound.length >= 2 ? total - 2 * perBatch : total;
    const figures = (s: typeof seq): LatencyFigures => ({
      p50Ms: spread(s.p50),
      p99Ms: spread(s.p99),
      perSec: spread(s.rate),
    });
    return {
      load: { start, end: machineLoad() },
      sequential: figures(seq),
      concurrent: { ...figures(conc), concurrency: options.concurrency },
      memory: {
        chains: total,
        bytesPerChain: (after.heapUsed - from.heapUsed) / counted,
        countedChains: counted,
        heapBefore: before.heapUsed,
        heapAfter: after.heapUsed,
        rssBefore: before.rss,
        rssAfter: after.rss,
        gc: before.gc && after.gc,
      },
    };
  } finally {
    await vendor.close();
  }
}
