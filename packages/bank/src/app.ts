import { setTimeout as sleep } from 'node:timers/promises';
import { PROBLEM_CONTENT_TYPE, ProtocolError, parseWire } from '@netpay/protocol';
import {
  type Clock,
  createService,
  type DatabaseEngine,
  openApiDocument,
  sendProblem,
  systemClock,
} from '@netpay/service-kit';
import type { TSchema, Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { authenticateMerchant } from './auth.ts';
import { bankMetrics, type MoneyKind } from './bank-metrics.ts';
import { createCharge } from './charges.ts';
import type { BankDeps } from './deps.ts';
import { Faults } from './faults.ts';
import type { Answer } from './idempotency.ts';
import { migrateBankStore } from './migrations.ts';
import { createPayout } from './payouts.ts';
import { createRefund } from './refunds.ts';
import { BANK_API, BANK_OPENAPI_PATH } from './route-table.ts';
import {
  ChargeRequestSchema,
  CurrencyQuerySchema,
  DestinationParamsSchema,
  FaultsRequestSchema,
  IdempotencyKeySchema,
  PayoutRequestSchema,
  RefundRequestSchema,
  SaveCardRequestSchema,
} from './schemas.ts';
import { saveCard } from './saved-cards.ts';
import { type BankDb, ensureMerchantKeyHash, merchantBalance } from './store.ts';
import { destinationStatement, merchantStatement } from './statements.ts';

export interface BankAppOptions {
  db: BankDb;
  engine: DatabaseEngine;
  clock?: Clock;
  logger?: Logger;
  /** SHA-256 (`hashToken`) of the broker's API key; registered as merchant `broker` when the app starts. */
  apiKeyHash?: string;
  /** Behind a TLS-terminating proxy (README, operators): true, or the proxy's addresses. */
  trustProxy?: boolean | string | string[];
}

export const DEFAULT_CURRENCY = 'NZD';

/**
 * The sandbox bank as a Fastify app: saved cards, charges (by card or saved-card token), refunds, payouts with
 * idempotency keys, statements and fault injection. Migrates its store when it becomes ready. The caller owns
 * the database and closes it.
 *
 * @example
 * const { db, engine } = openDatabase<BankSchema>('sqlite:./data/bank.db');
 * const app = createBankApp({ db, engine, apiKeyHash: hashToken(apiKey) });
 * await app.listen({ host: '127.0.0.1', port: 4100 });
 */
export function createBankApp(options: BankAppOptions): FastifyInstance {
  const deps: BankDeps = { db: options.db, engine: options.engine, clock: options.clock ?? systemClock };
  const app = createService({
    name: 'bank',
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.trustProxy !== undefined ? { trustProxy: options.trustProxy } : {}),
  });
  const metrics = bankMetrics(app.metrics);
  const faults = new Faults();
  const merchantOf = new WeakMap<FastifyRequest, string>();
  const merchant = (request: FastifyRequest): string => {
    const id = merchantOf.get(request);
    if (id === undefined) throw new Error('route reached without an authenticated merchant');
    return id;
  };

  app.addHook('onReady', async () => {
    await migrateBankStore(deps.db as unknown as Kysely<unknown>, deps.engine);
    if (options.apiKeyHash) await ensureMerchantKeyHash(deps.db, 'broker', options.apiKeyHash);
  });

  app.register(
    async (v1) => {
      // Before the body is parsed, so an anonymous caller cannot make the bank read a large body.
      v1.addHook('onRequest', async (request, reply) => {
        const id = await authenticateMerchant(deps.db, request.headers.authorization);
        if (id === undefined) {
          reply.header('WWW-Authenticate', 'Bearer realm="netpay-bank"');
          return sendProblem(reply, 'unauthorized', 'send Authorization: Bearer <merchant API key>');
        }
        merchantOf.set(request, id);
      });

      const moneyRoute = <S extends TSchema>(
        kind: MoneyKind,
        path: string,
        schema: S,
        run: (deps: BankDeps, merchantId: string, key: string, body: Static<S>) => Promise<Answer>,
      ) =>
        v1.post(path, async (request, reply) => {
          const merchantId = merchant(request);
          if (faults.takeFailure(merchantId)) {
            metrics.faultInjected(kind);
            return sendProblem(reply, 'internal_error', 'sandbox fault injection: failed on purpose', {}, 503);
          }
          let answer: Answer;
          try {
            const key = idempotencyKey(request);
            answer = await run(deps, merchantId, key, parseWire(schema, request.body));
            metrics.answered(kind, answer);
          } catch (error) {
            metrics.failed(kind, error);
            throw error;
          } finally {
            // After the commit, before the answer: a client that gives up waiting has still been charged,
            // which is what makes retrying with the same key matter.
            const latencyMs = faults.latencyMs(merchantId);
            if (latencyMs > 0) await sleep(latencyMs);
          }
          return sendAnswer(reply, answer);
        });

      moneyRoute('charge', '/charges', ChargeRequestSchema, createCharge);
      moneyRoute('refund', '/refunds', RefundRequestSchema, createRefund);
      moneyRoute('payout', '/payouts', PayoutRequestSchema, createPayout);

      // Saving a card moves no money, so it needs no Idempotency-Key: a repeat saves the card again.
      v1.post('/cards', async (request, reply) => {
        const merchantId = merchant(request);
        if (faults.takeFailure(merchantId)) {
          return sendProblem(reply, 'internal_error', 'sandbox fault injection: failed on purpose', {}, 503);
        }
        return sendAnswer(reply, await saveCard(deps, merchantId, parseWire(SaveCardRequestSchema, request.body).card));
      });

      v1.get('/balance', async (request) => {
        const currency = parseWire(CurrencyQuerySchema, request.query).currency ?? DEFAULT_CURRENCY;
        return { available: await merchantBalance(deps.db, merchant(request), currency), currency };
      });

      v1.get('/statement', async (request) => {
        const currency = parseWire(CurrencyQuerySchema, request.query).currency ?? DEFAULT_CURRENCY;
        return merchantStatement(deps, merchant(request), currency);
      });

      v1.get('/accounts/:destination/statement', async (request) => {
        const { destination } = parseWire(DestinationParamsSchema, request.params);
        const currency = parseWire(CurrencyQuerySchema, request.query).currency ?? DEFAULT_CURRENCY;
        return destinationStatement(deps, merchant(request), destination, currency);
      });

      v1.post('/sandbox/faults', async (request) => {
        const body = parseWire(FaultsRequestSchema, request.body);
        const merchantId = merchant(request);
        const current = faults.get(merchantId);
        return faults.set(merchantId, {
          latencyMs: body.latencyMs ?? current.latencyMs,
          failNext: body.failNext ?? current.failNext,
        });
      });

      v1.delete('/sandbox/faults', async (request) => {
        faults.clear(merchant(request));
        return faults.get(merchant(request));
      });
    },
    { prefix: '/v1' },
  );

  const document = openApiDocument(BANK_API);
  app.get(BANK_OPENAPI_PATH, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return document;
  });
  return app;
}

function idempotencyKey(request: FastifyRequest): string {
  const value = request.headers['idempotency-key'];
  if (typeof value !== 'string') {
    throw new ProtocolError('bad_request', 'the Idempotency-Key header is required', { header: 'Idempotency-Key' });
  }
  try {
    return parseWire(IdempotencyKeySchema, value);
  } catch {
    throw new ProtocolError('bad_request', 'Idempotency-Key must be 1-200 visible ASCII characters', {
      header: 'Idempotency-Key',
    });
  }
}

function sendAnswer(reply: FastifyReply, answer: Answer): FastifyReply {
  reply.code(answer.status);
  if (answer.status >= 400) reply.type(PROBLEM_CONTENT_TYPE);
  return reply.send(answer.body);
}
