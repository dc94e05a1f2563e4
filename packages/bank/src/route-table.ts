import { CurrencySchema, TimestampSchema } from '@netpay/protocol';
import {
  type ApiDescription,
  type ApiHeader,
  type ApiRoute,
  HEALTH_ROUTE,
  named,
  openApiRoute,
} from '@netpay/service-kit';
import { Type } from '@sinclair/typebox';
import {
  AmountSchema,
  CardTokenSchema,
  ChargeRequestSchema,
  DestinationSchema,
  FaultsRequestSchema,
  IdempotencyKeySchema,
  ObjectIdSchema,
  PayoutRequestSchema,
  RefundRequestSchema,
  SaveCardRequestSchema,
} from './schemas.ts';

// The sandbox bank's JSON API in one table: `/openapi.json` is made from it and the tests hold the app to it. The
// answers' schemas live here: the handlers build them in charges.ts, refunds.ts, payouts.ts, saved-cards.ts and
// statements.ts, and the tests check real answers against these.

const strict = { additionalProperties: false } as const;
const MERCHANT = 'merchantKey';

/** Where the OpenAPI document is served. */
export const BANK_OPENAPI_PATH = '/openapi.json';

const SignedAmountSchema = Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER });

const IDEMPOTENCY_KEY: ApiHeader = {
  name: 'Idempotency-Key',
  required: true,
  description: 'Made by the client; a retry with the same key and request gets the stored answer, nothing twice',
  schema: IdempotencyKeySchema,
};

export const ChargeSchema = Type.Object(
  {
    id: ObjectIdSchema,
    status: Type.Literal('succeeded'),
    amount: AmountSchema,
    currency: CurrencySchema,
    cardLast4: Type.String({ pattern: '^[0-9]{4}$' }),
    createdAt: TimestampSchema,
  },
  strict,
);

export const RefundSchema = Type.Object(
  { id: ObjectIdSchema, chargeId: ObjectIdSchema, amount: AmountSchema, createdAt: TimestampSchema },
  strict,
);

export const PayoutSchema = Type.Object(
  {
    id: ObjectIdSchema,
    status: Type.Literal('paid'),
    amount: AmountSchema,
    currency: CurrencySchema,
    destination: DestinationSchema,
    createdAt: TimestampSchema,
  },
  strict,
);

export const SavedCardSchema = Type.Object(
  { cardToken: CardTokenSchema, last4: Type.String({ pattern: '^[0-9]{4}$' }), expiry: Type.String({ maxLength: 16 }) },
  strict,
);

export const BalanceSchema = Type.Object({ available: SignedAmountSchema, currency: CurrencySchema }, strict);

export const StatementSchema = Type.Object(
  {
    merchant: Type.String({ maxLength: 100 }),
    currency: CurrencySchema,
    lines: Type.Array(
      Type.Object(
        {
          id: ObjectIdSchema,
          kind: Type.Union([Type.Literal('charge'), Type.Literal('refund'), Type.Literal('payout')]),
          amount: SignedAmountSchema,
          at: TimestampSchema,
          reference: Type.String(),
        },
        strict,
      ),
    ),
    available: SignedAmountSchema,
  },
  strict,
);

export const DestinationStatementSchema = Type.Object(
  {
    destination: DestinationSchema,
    currency: CurrencySchema,
    payouts: Type.Array(Type.Object({ id: ObjectIdSchema, amount: AmountSchema, createdAt: TimestampSchema }, strict)),
    total: Type.Integer({ minimum: 0 }),
  },
  strict,
);

export const FaultSettingsSchema = Type.Object(
  { latencyMs: Type.Integer({ minimum: 0 }), failNext: Type.Integer({ minimum: 0 }) },
  strict,
);

/** Every authenticated route: no or a wrong key, a malformed request, an unexpected error, a stopping bank. */
const ALWAYS = [400, 401, 500, 503];
const BODY = [...ALWAYS, 413, 415];
const currencyQuery = { currency: CurrencySchema };

export const BANK_API_ROUTES: readonly ApiRoute[] = [
  {
    method: 'POST',
    path: '/v1/charges',
    operationId: 'createCharge',
    summary: 'Charge a card, by its details or a saved card’s token; a decline is a 402 problem with its chargeId',
    tag: 'money',
    auth: MERCHANT,
    headers: [IDEMPOTENCY_KEY],
    body: named('ChargeRequest', ChargeRequestSchema),
    responses: { 201: { description: 'Charged', schema: named('Charge', ChargeSchema) } },
    problems: [...BODY, 402, 422],
  },
  {
    method: 'POST',
    path: '/v1/refunds',
    operationId: 'createRefund',
    summary: 'Refund part or all of a succeeded charge',
    tag: 'money',
    auth: MERCHANT,
    headers: [IDEMPOTENCY_KEY],
    body: named('RefundRequest', RefundRequestSchema),
    responses: { 201: { description: 'Refunded', schema: named('Refund', RefundSchema) } },
    problems: [...BODY, 404, 409, 422],
  },
  {
    method: 'POST',
    path: '/v1/payouts',
    operationId: 'createPayout',
    summary: 'Pay from the merchant’s available balance to a destination account',
    tag: 'money',
    auth: MERCHANT,
    headers: [IDEMPOTENCY_KEY],
    body: named('PayoutRequest', PayoutRequestSchema),
    responses: { 201: { description: 'Paid', schema: named('Payout', PayoutSchema) } },
    problems: [...BODY, 409, 422],
  },
  {
    method: 'POST',
    path: '/v1/cards',
    operationId: 'saveCard',
    summary: 'Save a card for later charges by token (the bank keeps the token’s hash and the last four digits)',
    tag: 'money',
    auth: MERCHANT,
    body: named('SaveCardRequest', SaveCardRequestSchema),
    responses: { 201: { description: 'Saved', schema: named('SavedCard', SavedCardSchema) } },
    problems: [...BODY, 402],
  },
  {
    method: 'GET',
    path: '/v1/balance',
    operationId: 'balance',
    summary: 'The merchant’s available balance',
    tag: 'statements',
    auth: MERCHANT,
    query: currencyQuery,
    responses: { 200: { description: 'The balance', schema: named('Balance', BalanceSchema) } },
    problems: ALWAYS,
  },
  {
    method: 'GET',
    path: '/v1/statement',
    operationId: 'statement',
    summary: 'Every money movement of the merchant, and the balance they add up to',
    tag: 'statements',
    auth: MERCHANT,
    query: currencyQuery,
    responses: { 200: { description: 'The statement', schema: named('Statement', StatementSchema) } },
    problems: ALWAYS,
  },
  {
    method: 'GET',
    path: '/v1/accounts/:destination/statement',
    operationId: 'destinationStatement',
    summary: 'What a destination account received from this merchant',
    tag: 'statements',
    auth: MERCHANT,
    params: { destination: DestinationSchema },
    query: currencyQuery,
    responses: {
      200: { description: 'The payouts', schema: named('DestinationStatement', DestinationStatementSchema) },
    },
    problems: ALWAYS,
  },
  {
    method: 'POST',
    path: '/v1/sandbox/faults',
    operationId: 'setFaults',
    summary: 'Sandbox only: make this merchant’s next money requests slow or fail',
    tag: 'sandbox',
    auth: MERCHANT,
    body: named('FaultsRequest', FaultsRequestSchema),
    responses: { 200: { description: 'The settings now', schema: named('FaultSettings', FaultSettingsSchema) } },
    problems: BODY,
  },
  {
    method: 'DELETE',
    path: '/v1/sandbox/faults',
    operationId: 'clearFaults',
    summary: 'Sandbox only: clear this merchant’s injected faults',
    tag: 'sandbox',
    auth: MERCHANT,
    responses: { 200: { description: 'The settings now', schema: named('FaultSettings', FaultSettingsSchema) } },
    problems: ALWAYS,
  },
  openApiRoute(BANK_OPENAPI_PATH),
  HEALTH_ROUTE,
];

export const BANK_API: ApiDescription = {
  title: 'NetPay sandbox bank',
  version: '1',
  description:
    'A card gateway stand-in for development and tests: saved cards, charges, refunds and payouts with idempotency ' +
    'keys, statements, and fault injection. Every error is an RFC 9457 problem.',
  securitySchemes: { [MERCHANT]: { description: 'The merchant’s API key (the broker’s is in <data>/bank-api-key)' } },
  routes: BANK_API_ROUTES,
};
