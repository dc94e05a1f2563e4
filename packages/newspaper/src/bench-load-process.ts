/**
 * The benchmark's end of its load process (bench-load.ts): started once, pinned to its own CPU when asked, and
 * given one plan at a time.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BoughtChain, BuyPlan, ClaimPlan, RedeemPlan, Timed } from './bench-broker-load.ts';
import type { FirstPaymentOutcome, FirstPaymentPlan } from './bench-first-payment-load.ts';
import type { HttpOutcome, HttpPlan } from './bench-http-load.ts';
import type { LoadPlan } from './bench-load.ts';
import { childNodeFlags } from './bench-node-flags.ts';

/** The answer to each kind of plan. */
export interface LoadAnswers {
  http: HttpOutcome;
  buy: Timed & { chains: BoughtChain[] };
  claim: Timed & { epochs: number[] };
  redeem: Timed & { paywords: number; rejected: number };
  'first-payment': FirstPaymentOutcome;
}

export interface LoadProcess {
  /** Its process id (for its CPU time: a load process at its CPU's limit measures itself, not the server). */
  pid: number | undefined;
  run<P extends HttpPlan | BuyPlan | ClaimPlan | RedeemPlan | FirstPaymentPlan>(
    plan: P,
  ): Promise<LoadAnswers[P['kind']]>;
  close(): Promise<void>;
}

/**
 * Starts the load process; with `cpu`, under `taskset` on that CPU alone.
 *
 * @example
 * const load = startLoadProcess({ cpu: 1 });
 * const { result } = await load.run({ kind: 'http', url, path, connections: 10, durationSec: 5 });
 */
export function startLoadProcess(options: { cpu?: number } = {}): LoadProcess {
  const args = [...childNodeFlags(), fileURLToPath(new URL('./bench-load.ts', import.meta.url))];
  const child: ChildProcessWithoutNullStreams =
    options.cpu === undefined
      ? spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn('taskset', ['-c', String(options.cpu), process.execPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const waiting: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  let ended: Error | undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const next = waiting.shift();
    if (!next) return;
    try {
      const answer = JSON.parse(line) as { ok?: unknown; error?: string };
      if (answer.error !== undefined) next.reject(new Error(`load process: ${answer.error}`));
      else next.resolve(answer.ok);
    } catch {
      next.reject(new Error(`load process wrote ${line.slice(0, 200)}`));
    }
  });
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      ended = new Error(`the load process exited with ${code}`);
      for (const w of waiting.splice(0)) w.reject(ended);
      resolve();
    }),
  );
  return {
    pid: child.pid,
    run: <P extends LoadPlan>(plan: P) =>
      new Promise<LoadAnswers[P['kind']]>((resolve, reject) => {
        if (ended) return reject(ended);
        waiting.push({ resolve: resolve as (v: unknown) => void, reject });
        child.stdin.write(`${JSON.stringify(plan)}\n`);
      }),
    close: async () => {
      child.stdin.end();
      await exited;
    },
  };
}
