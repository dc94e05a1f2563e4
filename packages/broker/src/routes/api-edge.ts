import { openApiDocument, openToBrowsers } from '@netpay/service-kit';
import type { FastifyInstance } from 'fastify';
import { type BrokerMetrics, brokerMetrics } from '../broker-metrics.ts';
import type { BrokerDeps } from '../deps.ts';
import { brokerApiDescription, OPENAPI_PATH } from './route-table.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The broker's business metrics, on the service's registry (`app.metrics`). */
    brokerMetrics: BrokerMetrics;
  }
}

/**
 * What the broker's API offers beside its routes: business metrics the routes count into, the OpenAPI document
 * at `{api}/openapi.json` (made once from the route table), and CORS on the API and discovery, so a wallet in a
 * browser on any site can call them with its bearer token (never cookies: no credentials are allowed).
 * Registered before the route modules, which use `app.brokerMetrics`.
 *
 * @example
 * apiEdge(app, deps); // in createBrokerApp, before discoveryRoutes
 */
export function apiEdge(app: FastifyInstance, deps: BrokerDeps): void {
  app.decorate('brokerMetrics', brokerMetrics(app.metrics, deps.db, deps.logger));
  openToBrowsers(app, {
    paths: ['/api/v1/', '/.well-known/netpay'],
    methods: ['GET', 'POST'],
    allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-Id'],
    exposeHeaders: ['Retry-After', 'X-Request-Id'],
  });
  const document = openApiDocument(brokerApiDescription(deps.config.publicUrl));
  app.get(OPENAPI_PATH, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return document;
  });
}
