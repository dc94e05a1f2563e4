/**
 * Side by side, in turns: every variant runs once per round, in the same order, after one warm-up run each. Drift
 * of the machine (JIT, CPU frequency, neighbours) then falls on all variants alike, and each ratio is taken within
 * a round before the rounds' median is.
 */
import { type Spread, spread } from './bench-stats.ts';

/** One load run's figures. */
export interface Sample {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  ok: number;
  /** Non-2xx answers, errors and timeouts. */
  other: number;
  /** CPU time of the server process per answer, in µs (every thread of it), where it could be read. */
  cpuUsPerRequest?: number;
  /** CPU time of the load process per answer, in µs: near its round's length it, not the server, set the pace. */
  loadCpuUsPerRequest?: number;
  /** Payments per durable group commit of the vendor's spend store, where it committed any. */
  paymentsPerCommit?: number;
  /** The share of the SQLite WAL's fsyncs that ran on the event loop (0-1), where it fsynced any itself. */
  fsyncsOnLoop?: number;
  /** The event loop's time blocked in the WAL's fsyncs, per payment, in µs (wall time, not only CPU). */
  loopFsyncUsPerPayment?: number;
}

export interface Variant<K extends string> {
  key: K;
  label: string;
  run(durationSec: number): Promise<Sample>;
  /**
   * Brings the variant to its steady state after its warm-up, where the warm-up alone does not (a SQLite vendor's
   * WAL file still growing to its restart size): answers what it did, for the report.
   */
  settle?(): Promise<string>;
}

export interface RoundsPlan {
  rounds: number;
  durationSec: number;
  /** Length of the warm-up run of each variant; 0 skips it. */
  warmupSec: number;
}

/**
 * Runs the warm-up (and settles the variants that need it), then `rounds` rounds of every variant in order; answers each variant's samples by round.
 *
 * @example
 * const samples = await alternate([free, paid], { rounds: 3, durationSec: 5, warmupSec: 1 }, console.log);
 * samples.paid[0].reqPerSec / samples.free[0].reqPerSec;
 */
export async function alternate<K extends string>(
  variants: ReadonlyArray<Variant<K>>,
  plan: RoundsPlan,
  progress: (line: string) => void,
): Promise<Record<K, Sample[]>> {
  const samples = Object.fromEntries(variants.map((v) => [v.key, [] as Sample[]])) as Record<K, Sample[]>;
  if (variants.length === 0) return samples;
  if (plan.warmupSec > 0) {
    progress(`warming up ${variants.length} routes (${plan.warmupSec} s each) …`);
    for (const v of variants) await v.run(plan.warmupSec);
    for (const v of variants) if (v.settle) progress(`${v.key}: ${await v.settle()}`);
  }
  for (let r = 1; r <= plan.rounds; r++) {
    progress(`round ${r}/${plan.rounds}: ${variants.map((v) => v.key).join(', ')} × ${plan.durationSec} s …`);
    for (const v of variants) samples[v.key].push(await v.run(plan.durationSec));
  }
  return samples;
}

/** A variant's figures over the rounds. */
export interface VariantSummary {
  reqPerSec: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  ok: number;
  other: number;
  cpuUsPerRequest?: Spread;
  loadCpuUsPerRequest?: Spread;
  paymentsPerCommit?: Spread;
  fsyncsOnLoop?: Spread;
  loopFsyncUsPerPayment?: Spread;
}

export function summarize(samples: readonly Sample[]): VariantSummary {
  const cpu = samples.flatMap((s) => (s.cpuUsPerRequest === undefined ? [] : [s.cpuUsPerRequest]));
  const loadCpu = samples.flatMap((s) => (s.loadCpuUsPerRequest === undefined ? [] : [s.loadCpuUsPerRequest]));
  const perCommit = samples.flatMap((s) => (s.paymentsPerCommit === undefined ? [] : [s.paymentsPerCommit]));
  const onLoop = samples.flatMap((s) => (s.fsyncsOnLoop === undefined ? [] : [s.fsyncsOnLoop]));
  const loopFsync = samples.flatMap((s) => (s.loopFsyncUsPerPayment === undefined ? [] : [s.loopFsyncUsPerPayment]));
  return {
    reqPerSec: spread(samples.map((s) => s.reqPerSec)),
    p50Ms: spread(samples.map((s) => s.p50Ms)),
    p99Ms: spread(samples.map((s) => s.p99Ms)),
    ok: samples.reduce((n, s) => n + s.ok, 0),
    other: samples.reduce((n, s) => n + s.other, 0),
    ...(cpu.length === samples.length && cpu.length > 0 ? { cpuUsPerRequest: spread(cpu) } : {}),
    ...(loadCpu.length === samples.length && loadCpu.length > 0 ? { loadCpuUsPerRequest: spread(loadCpu) } : {}),
    ...(perCommit.length > 0 ? { paymentsPerCommit: spread(perCommit) } : {}),
    ...(onLoop.length > 0 ? { fsyncsOnLoop: spread(onLoop) } : {}),
    ...(loopFsync.length > 0 ? { loopFsyncUsPerPayment: spread(loopFsync) } : {}),
  };
}

/**
 * The ratio of two variants' throughput, round by round.
 *
 * @example
 * ratio(samples.paid, samples.free).median;
 */
export function ratio(numerator: readonly Sample[], denominator: readonly Sample[]): Spread {
  return spread(numerator.map((s, i) => s.reqPerSec / (denominator[i]?.reqPerSec ?? Number.NaN)));
}
