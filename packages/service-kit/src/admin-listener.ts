import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.ts';
import { NON_PAGE_CSP } from './security-headers.ts';

/** A running admin listener: where Prometheus scrapes, and how to stop it. */
export interface AdminListener {
  /** e.g. `http://127.0.0.1:4200/metrics`. */
  metricsUrl: string;
  close(): Promise<void>;
}

export interface AdminListenerOptions {
  /** Default 127.0.0.1: metrics describe the business, so they stay off the public address. */
  host?: string;
  /** 0 for any free port. */
  port: number;
  logger?: Logger;
}

/**
 * Serves `GET /metrics` (and `GET /healthz`) on a port of its own, never the public one, so an operator can scrape
 * from the machine or a private network without the Internet seeing payment volumes. Nothing else is served.
 *
 * @example
 * const admin = await listenAdmin(app.metrics, { port: 4200 });
 * app.addHook('onClose', () => admin.close());
 */
export async function listenAdmin(metrics: Metrics, options: AdminListenerOptions): Promise<AdminListener> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    response.setHeader('x-content-type-options', 'nosniff');
    response.setHeader('content-security-policy', NON_PAGE_CSP);
    response.setHeader('cache-control', 'no-store');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('GET only\n');
      return;
    }
    if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
      return;
    }
    metrics.render().then(
      (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      (error: unknown) => {
        options.logger?.error({ err: error }, 'metrics could not be collected');
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics failed; see the log\n');
      },
    );
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const metricsUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`;
  options.logger?.info({ metricsUrl }, 'admin listener (metrics) up');
  return {
    metricsUrl,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * How far above its public port a service's admin port is by default: with the demo's ports (broker 4000, sites
 * 4001-4002, bank 4100) the admin ports 4200-4202 and 4300 meet none of them, even with every service on one host.
 */
export const METRICS_PORT_OFFSET = 200;

/**
 * The admin port from a `--metrics-port` value: the number given, else the public port plus `METRICS_PORT_OFFSET`
 * (0 stays 0: any free port).
 *
 * @throws Error when the value is not a port number
 * @example
 * metricsPort(undefined, 4000); // 4200
 */
export function metricsPort(option: string | undefined, publicPort: number): number {
  if (option === undefined) return publicPort === 0 ? 0 : publicPort + METRICS_PORT_OFFSET;
  const port = Number(option);
  if (!/^[0-9]+$/.test(option) || port > 65_535) throw new Error(`--metrics-port must be 0..65535, not ${option}`);
  return port;
}

/**
 * Starts the admin listener for an app that has not started yet, and closes it with the app.
 *
 * @example
 * await serveMetrics(app, { host: '127.0.0.1', port: metricsPort(values['metrics-port'], port) });
 * await listenUntilSignal(app, host, port);
 */
export async function serveMetrics(app: FastifyInstance, options: AdminListenerOptions): Promise<AdminListener> {
  // A FastifyBaseLogger is the pino logger createService was given.
  const admin = await listenAdmin(app.metrics, { ...options, logger: options.logger ?? (app.log as Logger) });
  app.addHook('onClose', () => admin.close());
  return admin;
}
