/**
 * The anchor routes of the benchmark: the paid article's JSON behind one signature check per request instead of a
 * payword, Ed25519 (node:crypto) on one and x402-style EIP-712 over secp256k1 on the other. They answer the same
 * body as `GET /api/articles/:id`, so beside the NetPay route only the payment check differs.
 */
import { sendProblem } from '@netpay/service-kit';
import type { FastifyInstance } from 'fastify';
import { ED25519_PAYMENT_HEADER, ed25519PaymentVerifier } from './bench-ed25519-payment.ts';
import { EIP712_PAYMENT_HEADER, verifyEip712Payment } from './bench-eip712-payment.ts';
import { findArticle, type Site } from './site.ts';

export const ED25519_PATH = '/bench/ed25519/articles';
export const EIP712_PATH = '/bench/eip712/articles';

/**
 * Adds `GET /bench/ed25519/articles/:id` and `GET /bench/eip712/articles/:id` to a site's app (before it listens).
 *
 * @example
 * addSignatureRoutes(app, site);
 */
export function addSignatureRoutes(app: FastifyInstance, site: Site): void {
  const verifyEd25519 = ed25519PaymentVerifier({ payTo: site.vendorId, amountMinor: 1 });
  const article = (id: string) => {
    const a = findArticle(site, id);
    return a && { id: a.id, title: a.title, author: a.author, date: a.date, body: a.body };
  };
  const route = (path: string, check: (header: string | undefined) => string, header: string) =>
    app.get<{ Params: { id: string } }>(`${path}/:id`, async (request, reply) => {
      const value = request.headers[header];
      const verdict = check(typeof value === 'string' ? value : undefined);
      if (verdict !== 'ok') return sendProblem(reply, 'payment_required', verdict);
      const body = article(request.params.id);
      if (!body) return sendProblem(reply, 'not_found', `no article ${request.params.id}`);
      reply.header('cache-control', 'private, no-store');
      return body;
    });
  route(ED25519_PATH, verifyEd25519, ED25519_PAYMENT_HEADER);
  route(EIP712_PATH, (h) => verifyEip712Payment(h), EIP712_PAYMENT_HEADER);
}
