import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * How long a vendor or wallet may reuse discovery and vendor-directory answers before asking again. Short, because
 * they carry keys: a rotated key reaches every reader within a minute, and an answer asked again with its ETag costs
 * a 304 and no body.
 */
export const DIRECTORY_MAX_AGE_SECONDS = 60;

/**
 * Sends `body` as JSON that caches may keep for `maxAgeSeconds` (public: it names no customer), with a strong ETag
 * of its bytes; a request whose If-None-Match names that tag gets 304 and no body. Returns the reply, sent.
 */
export function sendCacheable(
  request: FastifyRequest,
  reply: FastifyReply,
  body: unknown,
  maxAgeSeconds = DIRECTORY_MAX_AGE_SECONDS,
): FastifyReply {
  const text = JSON.stringify(body);
  const tag = `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`;
  reply.header('cache-control', `public, max-age=${maxAgeSeconds}`);
  reply.header('etag', tag);
  if (matches(request.headers['if-none-match'], tag)) return reply.code(304).send();
  return reply.type('application/json; charset=utf-8').send(text);
}

/** RFC 9110 §13.1.2: `*`, or a list of tags (weak comparison: W/ prefixes ignored). */
function matches(header: string | undefined, tag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === tag);
}
