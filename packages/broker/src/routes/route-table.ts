import {
  AllowanceRequestSchema,
  AllowanceResponseSchema,
  BuyCoinRequestSchema,
  BuyCoinResponseSchema,
  ChainIdSchema,
  CheckpointRequestSchema,
  CheckpointResponseSchema,
  ClaimRequestSchema,
  ClaimResponseSchema,
  CoinListSchema,
  ConnectionGrantResponseSchema,
  CreateCustomerRequestSchema,
  CreateSessionRequestSchema,
  CurrencySchema,
  DiscoverySchema,
  HistorySchema,
  MinorUnitsSchema,
  RedemptionRequestSchema,
  RedemptionResponseSchema,
  RefundResponseSchema,
  ReleaseRequestSchema,
  ReleaseResponseSchema,
  SessionResponseSchema,
  VendorAccountSchema,
  VendorDirectoryEntrySchema,
  VendorIdSchema,
} from '@netpay/protocol';
import {
  type ApiDescription,
  type ApiHeader,
  type ApiRoute,
  HEALTH_ROUTE,
  named,
  openApiRoute,
} from '@netpay/service-kit';
import { Type } from '@sinclair/typebox';
import { TopUpRequestSchema } from './balance-api.ts';

// The broker's JSON API in one table: the OpenAPI document at {api}/openapi.json is made from it, and the tests
// hold the app to it (every route here answers, every JSON route of the app is here). A new API route is added
// here in the same change.

const strict = { additionalProperties: false } as const;

/** Where the OpenAPI document is served: `{api}/openapi.json`. */
export const OPENAPI_PATH = '/api/v1/openapi.json';

const CUSTOMER = 'customerToken';
const VENDOR = 'vendorKey';

const IDEMPOTENCY_KEY: ApiHeader = {
  name: 'Idempotency-Key',
  required: true,
  description: 'Made by the client, 1-200 visible ASCII characters; a retry with the same key gets the same answer',
  schema: Type.String({ pattern: '^[\\x21-\\x7e]{1,200}$' }),
};

/** What any route may answer: a malformed request, an unexpected error, or a service that is stopping. */
const ALWAYS = [400, 500, 503];
/** What a route with a JSON body may answer besides. */
const BODY = [...ALWAYS, 413, 415];

const chainIdParam = { chainId: ChainIdSchema };

/** `GET {api}/balance` (the shape of `BalanceView` in balance-api.ts). */
const BalanceViewSchema = Type.Object(
  {
    balance: MinorUnitsSchema,
    currency: CurrencySchema,
    sites: Type.Array(
      Type.Object(
        {
          vendorId: VendorIdSchema,
          name: Type.String(),
          spentThisMonth: MinorUnitsSchema,
          allowanceLeft: MinorUnitsSchema,
          siteCap: MinorUnitsSchema,
          revoked: Type.Boolean(),
        },
        strict,
      ),
    ),
    limits: Type.Object({ autoPayMaxMinor: MinorUnitsSchema, dailyCapMinor: MinorUnitsSchema }, strict),
    card: Type.Union([Type.Object({ last4: Type.String({ pattern: '^[0-9]{4}$' }) }, strict), Type.Null()]),
    autoTopUp: Type.Union([
      Type.Object({ amount: MinorUnitsSchema, monthlyCeiling: MinorUnitsSchema }, strict),
      Type.Null(),
    ]),
  },
  strict,
);

export const BROKER_API_ROUTES: readonly ApiRoute[] = [
  {
    method: 'GET',
    path: '/.well-known/netpay',
    operationId: 'discovery',
    summary: 'Discovery: the broker URL, currency, signing keys, fee and API base (§3)',
    tag: 'discovery',
    responses: { 200: { description: 'The discovery document', schema: named('Discovery', DiscoverySchema) } },
    problems: ALWAYS,
  },
  {
    method: 'GET',
    path: '/api/v1/vendors/:vendorId',
    operationId: 'getVendor',
    summary: 'A vendor’s directory entry: name, URLs and public keys (§3)',
    tag: 'discovery',
    params: { vendorId: Type.String({ maxLength: 200 }) },
    responses: {
      200: { description: 'The vendor', schema: named('VendorDirectoryEntry', VendorDirectoryEntrySchema) },
    },
    problems: [...ALWAYS, 404],
  },
  {
    method: 'POST',
    path: '/api/v1/chains/:chainId/claim',
    operationId: 'claimChain',
    summary: 'Claim a chain (or renew the lease on it) with the customer’s payword as proof (§5)',
    tag: 'vendor',
    auth: VENDOR,
    params: chainIdParam,
    body: named('ClaimRequest', ClaimRequestSchema),
    responses: { 200: { description: 'The holder certificate', schema: named('ClaimResponse', ClaimResponseSchema) } },
    problems: [...BODY, 401, 402, 409],
  },
  {
    method: 'POST',
    path: '/api/v1/chains/:chainId/checkpoint',
    operationId: 'checkpoint',
    summary: 'Report the last payword taken, and the start release at once; renews the lease (§5)',
    tag: 'vendor',
    auth: VENDOR,
    params: chainIdParam,
    body: named('CheckpointRequest', CheckpointRequestSchema),
    responses: {
      200: { description: 'The renewed certificate', schema: named('CheckpointResponse', CheckpointResponseSchema) },
    },
    problems: [...BODY, 401, 402, 409],
  },
  {
    method: 'POST',
    path: '/api/v1/redemptions',
    operationId: 'redeem',
    summary: 'Redeem ranges of paywords for credit, each item accepted or rejected on its own (§5)',
    tag: 'vendor',
    auth: VENDOR,
    headers: [IDEMPOTENCY_KEY],
    body: named('RedemptionRequest', RedemptionRequestSchema),
    responses: {
      200: { description: 'The outcome of every item', schema: named('RedemptionResponse', RedemptionResponseSchema) },
    },
    problems: [...BODY, 401, 422],
  },
  {
    method: 'POST',
    path: '/api/v1/broker/release',
    operationId: 'brokerRelease',
    summary: 'The release URL of vendor `broker`: release a chain the broker held to its next holder (§6)',
    tag: 'vendor',
    body: named('ReleaseRequest', ReleaseRequestSchema),
    responses: { 200: { description: 'The release', schema: named('ReleaseResponse', ReleaseResponseSchema) } },
    problems: [...BODY, 402, 409],
  },
  {
    method: 'GET',
    path: '/api/v1/vendor/account',
    operationId: 'vendorAccount',
    summary: 'The calling vendor’s balance, pending and paid-out amounts (§5)',
    tag: 'vendor',
    auth: VENDOR,
    responses: { 200: { description: 'The account', schema: named('VendorAccount', VendorAccountSchema) } },
    problems: [...ALWAYS, 401],
  },
  {
    method: 'POST',
    path: '/api/v1/wallet-grants/:code',
    operationId: 'exchangeConnectCode',
    summary: 'Exchange a connect code for a connection: a chain claimed for the site and a first allowance (§7)',
    tag: 'vendor',
    auth: VENDOR,
    params: { code: Type.String({ maxLength: 200 }) },
    responses: {
      200: {
        description: 'The connection',
        schema: named('ConnectionGrantResponse', ConnectionGrantResponseSchema),
      },
    },
    problems: [...BODY, 401, 402, 403, 409],
  },
  {
    method: 'POST',
    path: '/api/v1/allowances',
    operationId: 'requestAllowance',
    summary: 'The next allowance of a connection, possibly on a new chain (§7)',
    tag: 'vendor',
    auth: VENDOR,
    body: named('AllowanceRequest', AllowanceRequestSchema),
    responses: {
      200: { description: 'The allowance', schema: named('AllowanceResponse', AllowanceResponseSchema) },
    },
    problems: [...BODY, 401, 402, 403, 409],
  },
  {
    method: 'POST',
    path: '/api/v1/customers',
    operationId: 'createCustomer',
    summary: 'Sign up a customer (§7)',
    tag: 'customer',
    body: named('CreateCustomerRequest', CreateCustomerRequestSchema),
    responses: {
      201: {
        description: 'The customer',
        schema: Type.Object({ customerId: Type.String({ minLength: 1, maxLength: 128 }) }, strict),
      },
    },
    problems: [...BODY, 409, 429],
  },
  {
    method: 'POST',
    path: '/api/v1/sessions',
    operationId: 'createSession',
    summary: 'Log in: a session token to send as Bearer (§7)',
    tag: 'customer',
    body: named('CreateSessionRequest', CreateSessionRequestSchema),
    responses: { 200: { description: 'The session', schema: named('SessionResponse', SessionResponseSchema) } },
    problems: [...BODY, 401, 429],
  },
  {
    method: 'POST',
    path: '/api/v1/coins',
    operationId: 'buyCoin',
    summary: 'Buy a coin (a chain) by card; the broker makes the chain unless the client sends its own (§7)',
    tag: 'customer',
    auth: CUSTOMER,
    headers: [IDEMPOTENCY_KEY],
    body: named('BuyCoinRequest', BuyCoinRequestSchema),
    responses: { 201: { description: 'The coin', schema: named('BuyCoinResponse', BuyCoinResponseSchema) } },
    problems: [...BODY, 401, 402, 409, 422, 429],
  },
  {
    method: 'GET',
    path: '/api/v1/coins',
    operationId: 'listCoins',
    summary: 'The customer’s coins as the broker knows them (§7)',
    tag: 'customer',
    auth: CUSTOMER,
    responses: { 200: { description: 'The coins', schema: named('CoinList', CoinListSchema) } },
    problems: [...ALWAYS, 401],
  },
  {
    method: 'GET',
    path: '/api/v1/history',
    operationId: 'history',
    summary: 'The customer’s purchases, spends and refunds (§7)',
    tag: 'customer',
    auth: CUSTOMER,
    responses: { 200: { description: 'The history', schema: named('History', HistorySchema) } },
    problems: [...ALWAYS, 401],
  },
  {
    method: 'POST',
    path: '/api/v1/coins/:chainId/refund',
    operationId: 'refundCoin',
    summary: 'Refund what is left of a coin to the card (§7)',
    tag: 'customer',
    auth: CUSTOMER,
    params: chainIdParam,
    responses: { 200: { description: 'The refund', schema: named('RefundResponse', RefundResponseSchema) } },
    problems: [...BODY, 401, 402, 409],
  },
  {
    method: 'GET',
    path: '/api/v1/balance',
    operationId: 'balance',
    summary: 'The customer’s NetPay balance, connected sites, limits and saved card (§7)',
    tag: 'customer',
    auth: CUSTOMER,
    responses: { 200: { description: 'The balance', schema: named('BalanceView', BalanceViewSchema) } },
    problems: [...ALWAYS, 401],
  },
  {
    method: 'POST',
    path: '/api/v1/balance/top-ups',
    operationId: 'topUp',
    summary: 'Add money to the NetPay balance by card or with the saved card (§7)',
    tag: 'customer',
    auth: CUSTOMER,
    headers: [IDEMPOTENCY_KEY],
    body: named('TopUpRequest', TopUpRequestSchema),
    responses: {
      201: {
        description: 'The top-up and the new balance',
        schema: Type.Object(
          {
            topUpId: Type.String({ minLength: 1, maxLength: 128 }),
            amount: MinorUnitsSchema,
            balance: MinorUnitsSchema,
          },
          strict,
        ),
      },
    },
    problems: [...BODY, 401, 402, 409, 422, 429],
  },
  openApiRoute(OPENAPI_PATH),
  HEALTH_ROUTE,
];

/** The broker's API description, rooted at its public URL. */
export function brokerApiDescription(publicUrl: string): ApiDescription {
  return {
    title: 'NetPay broker',
    version: '1.1',
    description:
      'The broker of the NetPay PayWord protocol (docs/PROTOCOL.md): discovery, the vendor API and the customer API. ' +
      'Every error is an RFC 9457 problem with a registered `code`.',
    serverUrl: publicUrl,
    securitySchemes: {
      [CUSTOMER]: { description: 'A customer session token from POST /api/v1/sessions' },
      [VENDOR]: { description: 'The API key the broker issued to the vendor' },
    },
    routes: BROKER_API_ROUTES,
  };
}
