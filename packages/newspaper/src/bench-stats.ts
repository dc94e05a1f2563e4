/**
 * The benchmark's statistics: on a small, shared machine one run says little, so every figure is the median of
 * alternating rounds with the spread beside it, and every table carries the machine's load.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

/** A figure measured over several rounds: the median counts, min and max say how much to trust it. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Every round's value, in the order measured. */
  rounds: number[];
}

/**
 * The median (the mean of the middle two of an even count), min and max of some rounds.
 *
 * @example
 * spread([3, 1, 2]); // { median: 2, min: 1, max: 3, rounds: [3, 1, 2] }
 */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) throw new Error('a spread needs at least one value');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number, rounds: [...values] };
}

/**
 * The value at quantile `q` (0..1) of samples, nearest rank: p99 of 100 samples is the 99th smallest.
 *
 * @example
 * quantile([5, 1, 3], 0.5); // 3
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('a quantile needs at least one value');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] as number;
}

/** Clock ticks a second of /proc's CPU times (USER_HZ: 100 on every Linux the kernel ABI allows). */
const USER_HZ = 100;

/**
 * The CPU time a process used so far, every thread of it (user + system), in milliseconds; undefined where /proc
 * is missing. Read before and after a load run, it says what each request cost the server whatever else the
 * machine was doing, which a throughput on a shared 2-core box cannot.
 *
 * @example
 * const before = processCpuMs(child.pid);
 */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) in parentheses: utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / USER_HZ : undefined;
  } catch {
    return undefined;
  }
}

/** The run queue as the kernel reports it: 1, 5 and 15 minute averages, then running/total tasks. */
export interface MachineLoad {
  loadavg: string;
  /** When it was read (ISO 8601). */
  at: string;
}

/** `/proc/loadavg` as it reads now (the 1/5/15-minute averages from Node on systems without it). */
export function machineLoad(): MachineLoad {
  let text: string;
  try {
    text = readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    text = loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  }
  return { loadavg: text, at: new Date().toISOString() };
}
