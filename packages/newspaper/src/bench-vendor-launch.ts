/** The benchmark's end of a vendor process (bench-vendor-process.ts): started, asked for its heap, stopped. */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childNodeFlags } from './bench-node-flags.ts';
import type { BenchVendorConfig, BenchVendorMessage, BenchVendorRequest, StoreCounts } from './bench-vendor-process.ts';

export interface VendorProcess {
  url: string;
  /** Its process id (for its CPU time). */
  pid: number | undefined;
  /** Heap used after a forced collection (the process must have been started with `exposeGc`). */
  heap(): Promise<{ heapUsed: number; rss: number; gc: boolean }>;
  /** What its spend store has committed and fsynced since it opened. */
  store(): Promise<StoreCounts>;
  close(): Promise<void>;
}

/**
 * Starts one vendor process and waits until it listens.
 *
 * @example
 * const vendor = await startVendorProcess({ vendorId, brokerUrl, apiKey, keyDir, storeUrl, releaseUrl, port });
 */
export async function startVendorProcess(
  config: BenchVendorConfig,
  options: { exposeGc?: boolean; env?: Record<string, string> } = {},
): Promise<VendorProcess> {
  const child: ChildProcess = fork(
    fileURLToPath(new URL('./bench-vendor-process.ts', import.meta.url)),
    [JSON.stringify(config)],
    {
      execArgv: childNodeFlags(options.exposeGc ? ['--expose-gc'] : []),
      env: { ...process.env, ...options.env },
      // Its logs go to stderr: stdout is the benchmark's report (one JSON object with --json).
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    },
  );
  child.stdout?.pipe(process.stderr);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const next = (type: BenchVendorMessage['type']) =>
    new Promise<BenchVendorMessage>((resolve, reject) => {
      const onMessage = (message: BenchVendorMessage) => {
        if (message.type !== type) return;
        child.off('message', onMessage);
        resolve(message);
      };
      child.on('message', onMessage);
      void exited.then((code) => reject(new Error(`vendor ${config.vendorId} exited with ${code}`)));
    });
  const ask = (request: BenchVendorRequest) => child.send(request);
  const ready = await next('ready');
  return {
    url: ready.type === 'ready' ? ready.url : '',
    pid: child.pid,
    heap: async () => {
      const answer = next('heap');
      ask({ type: 'heap' });
      const m = await answer;
      if (m.type !== 'heap') throw new Error('unexpected answer');
      return { heapUsed: m.heapUsed, rss: m.rss, gc: m.gc };
    },
    store: async () => {
      const answer = next('store');
      ask({ type: 'store' });
      const m = await answer;
      if (m.type !== 'store') throw new Error('unexpected answer');
      const { type: _, ...counts } = m;
      return counts;
    },
    close: async () => {
      if (child.exitCode === null && child.connected) ask({ type: 'close' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
