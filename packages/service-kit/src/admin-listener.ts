import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
