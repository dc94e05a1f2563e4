import { ProtocolError } from '@netpay/protocol';
import type { FastifyRequest } from 'fastify';
import { customerBySession } from './customers.ts';
import type { BrokerDeps } from './deps.ts';
import { type VendorRow, vendorByApiKey } from './vendor-registry.ts';

const MAX_TOKEN_LENGTH = 512;

/** The token of `Authorization: Bearer <token>`, if well formed. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string' || header.length > MAX_TOKEN_LENGTH + 7) return undefined;
  const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim());
  return match?.[1];
}

/** The vendor calling (§5 vendor API keys), or a 401 problem. */
export async function requireVendor(deps: BrokerDeps, request: FastifyRequest): Promise<VendorRow> {
  const token = bearerToken(request);
  const vendor = token ? await vendorByApiKey(deps.db, token) : undefined;
  if (!vendor) throw new ProtocolError('unauthorized', 'a vendor API key is required (Authorization: Bearer …)');
  return vendor;
}

/** The customer calling the JSON API: an API session token as Bearer; else 401. */
export async function requireCustomer(
  deps: BrokerDeps,
  request: FastifyRequest,
): Promise<{ id: string; email: string }> {
  const customer = await optionalCustomer(deps, request);
  if (!customer) throw new ProtocolError('unauthorized', 'a customer session is required (Authorization: Bearer …)');
  return customer;
}

export async function optionalCustomer(
  deps: BrokerDeps,
  request: FastifyRequest,
): Promise<{ id: string; email: string } | undefined> {
  // Bearer only: the JSON API has no CSRF tokens, so a cookie must never authenticate it (pages use np_session).
  // And only an API session: a web session's token (the cookie's value) is refused here even as a Bearer.
  const token = bearerToken(request);
  if (!token || token.length > MAX_TOKEN_LENGTH) return undefined;
  return customerBySession(deps.db, token, deps.clock.now(), 'api');
}

/** The `Idempotency-Key` header: required, 1-200 visible ASCII characters. */
export function idempotencyKey(request: FastifyRequest): string {
  const value = request.headers['idempotency-key'];
  if (typeof value !== 'string' || value.length === 0) {
    throw new ProtocolError('bad_request', 'the Idempotency-Key header is required');
  }
  if (value.length > 200 || !/^[\x21-\x7e]+$/.test(value)) {
    throw new ProtocolError('bad_request', 'Idempotency-Key must be 1-200 visible ASCII characters');
  }
  return value;
}
