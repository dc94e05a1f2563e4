/**
 * nginx in front of vendor processes, from the shipped configuration (deploy/nginx/netpay-vendor.conf.template):
 * found on this machine, its template filled in, started in the foreground as the current user in a folder of
 * its own, and stopped again.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NGINX_TEMPLATE = fileURLToPath(
  new URL('../../../deploy/nginx/netpay-vendor.conf.template', import.meta.url),
);

/** What a missing nginx is reported as. */
export const NGINX_MISSING = 'nginx: not installed (apt-get install nginx)';

/** The nginx binary: on PATH, or where Debian puts it (outside a non-root user's PATH). */
export function findNginx(): string | undefined {
  for (const candidate of ['nginx', '/usr/sbin/nginx']) {
    const probe = spawnSync(candidate, ['-v'], { stdio: 'ignore' });
    if (probe.error === undefined && probe.status === 0) return candidate;
  }
  return undefined;
}

/**
 * The template with its placeholders filled in (outside comments).
 *
 * @example
 * nginxConfig(template, { prefix: '/tmp/x', listen: '127.0.0.1:8080', upstreams: ['127.0.0.1:5001'] });
 */
export function nginxConfig(
  template: string,
  values: { prefix: string; listen: string; upstreams: readonly string[] },
): string {
  if (values.upstreams.length === 0) throw new Error('nginx needs at least one upstream');
  // Comment lines name the placeholders too; they stay as they are.
  return template
    .split('\n')
    .map((line) =>
      line.trimStart().startsWith('#')
        ? line
        : line
            .replaceAll('{{PREFIX}}', values.prefix)
            .replaceAll('{{LISTEN}}', values.listen)
            .replaceAll('{{UPSTREAM_SERVERS}}', values.upstreams.map((u) => `server ${u};`).join('\n    ')),
    )
    .join('\n');
}

export interface RunningNginx {
  url: string;
  stop(): Promise<void>;
}

async function portOpen(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts nginx on `127.0.0.1:port` in front of `upstreams` and waits until it accepts connections.
 *
 * @throws Error with nginx's error log when it does not start
 * @example
 * const proxy = await startNginx({ nginx: findNginx()!, port: 8080, upstreams: ['127.0.0.1:5001'] });
 */
export async function startNginx(options: {
  nginx: string;
  port: number;
  upstreams: readonly string[];
}): Promise<RunningNginx> {
  const prefix = mkdtempSync(join(tmpdir(), 'netpay-nginx-'));
  // Started by root, nginx's workers run as nobody and must reach the temp folders.
  chmodSync(prefix, 0o755);
  const conf = join(prefix, 'netpay-vendor.conf');
  writeFileSync(
    conf,
    nginxConfig(readFileSync(NGINX_TEMPLATE, 'utf8'), {
      prefix,
      listen: `127.0.0.1:${options.port}`,
      upstreams: options.upstreams,
    }),
  );
  const errorLog = join(prefix, 'error.log');
  const child: ChildProcess = spawn(options.nginx, ['-p', prefix, '-e', errorLog, '-c', conf], { stdio: 'ignore' });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const stop = async () => {
    if (!exited) child.kill('SIGTERM');
    await exit;
    rmSync(prefix, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await portOpen(options.port))) {
    if (exited || Date.now() > deadline) {
      const log = existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '';
      await stop();
      throw new Error(`nginx did not start: ${log.trim() || 'no error log'}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `http://127.0.0.1:${options.port}`, stop };
}
