import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The `netpay` command, run from the sources as an operator would. */
export const NETPAY_BIN = fileURLToPath(new URL('../../cli/bin/netpay.mjs', import.meta.url));

/** A real `netpay broker` process and how to stop it. */
export interface BrokerProcess {
  url: string;
  api: string;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<unknown>;
  stop(): Promise<void>;
}

/**
 * Starts `netpay broker` with `args` after the port (`--data`, `--db`, `--bank-url`…) and waits until it answers
 * /healthz; rejects if it exits first. `env` is added to this process's environment.
 */
export async function startBrokerProcess(
  port: number,
  args: string[],
  env: Record<string, string> = {},
): Promise<BrokerProcess> {
  // Metrics on a port the system picks unless asked: the default (the port + 200) was never checked free.
  const metrics = args.includes('--metrics-port') ? [] : ['--metrics-port', '0'];
  const child = spawn(process.execPath, [NETPAY_BIN, 'broker', '--port', String(port), ...metrics, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NETPAY_LOG_LEVEL: 'warn', ...env },
  });
  // The last of what it said, for the error when it does not come up.
  let said = '';
  const listen = (chunk: Buffer) => {
    said = (said + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', listen);
  child.stderr?.on('data', listen);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await waitHealthy(url, child);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}:\n${said}`);
  }
  return { url, api: `${url}/api/v1`, child, exited, stop };
}

async function waitHealthy(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`broker on ${url} exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`broker on ${url} did not come up`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs `netpay …args` to completion without blocking the test's event loop (the bank under test lives there). */
export function runNetpay(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [NETPAY_BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}
