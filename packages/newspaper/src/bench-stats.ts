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
