/**
 * `@netpay/vendor-sdk`: take NetPay payments on your routes.
 *
 * @example
 * import Fastify from 'fastify';
 * import { createNetPayVendor, createSpendStore, loadOrCreateVendorKey, netpayFastify } from '@netpay/vendor-sdk';
 *
 * const vendor = createNetPayVendor({
 *   vendorId: 'daily-planet',
 *   brokerUrl: 'http://127.0.0.1:4000',
 *   apiKey: process.env.NETPAY_API_KEY!,
 *   signingKey: loadOrCreateVendorKey('./data'),
 *   releaseUrl: 'http://127.0.0.1:4001/netpay/release',
 *   store: await createSpendStore('sqlite:./data/vendor.db'),
 * });
 * const app = Fastify();
 * await app.register(netpayFastify, { vendor });
 * app.get('/articles/:id', { config: { netpay: { price: 2 } } }, async () => ({ text: 'Hello, paid world' }));
 * vendor.startBackgroundJobs({ redeemIntervalMs: 60_000, renewIntervalMs: 15_000 });
 */
export { BrokerClient, type FetchLike, RemoteError } from './broker-client.ts';
export {
  buyCoinsUrl,
  type ChallengeFacts,
  challengeHeader,
  connectUrl,
  type ProblemDecision,
  paymentProblem,
  type WalletPaywall,
  paymentRequired,
  prefersHtml,
} from './challenge.ts';
export {
  netpayCallbackHandler,
  netpayConnectHandler,
  netpayExpress,
  netpayPayHandler,
  netpayReleaseHandler,
  type NetPayExpressOptions,
} from './express.ts';
export {
  type ClaimOutcome,
  type ClaimProof,
  claimRefusal,
  claimWithProof,
  type ProofSource,
  walletProofs,
} from './claim-proof.ts';
export { type CookieOptions, parseCookies, serializeCookie } from './cookies.ts';
export {
  CORS_ALLOWED_HEADERS,
  CORS_EXPOSED_HEADERS,
  CorsPolicy,
  corsForExpressRoute,
  corsForPricedRoutes,
  type NetPayCorsOptions,
} from './cors.ts';
export {
  defaultResource,
  type NetPayFastifyOptions,
  type NetPayPaid,
  type NetPayRouteConfig,
  netpayFastify,
  requestOrigin,
} from './fastify.ts';
export { leaseTtlMs, needsRenewal, type RenewalReport } from './lease.ts';
export {
  balanceMinor,
  type ChainView,
  checkPayment,
  DEFAULT_MAX_STEPS_AHEAD,
  type KnownPoint,
  MIN_MAX_STEPS_AHEAD,
  type PaymentCheck,
  type PaymentContext,
  type PresentedPayment,
  type VerifyLimits,
  verifiesAtOrBelow,
  type WorkMeter,
} from './payment.ts';
export {
  defaultPaywallHtml,
  escapeHtml,
  type PaywallInfo,
  type PaywallRenderer,
  WALLET_REASONS,
} from './paywall-page.ts';
export {
  batches,
  REDEMPTION_BATCH_SIZE,
  type RedemptionProgress,
  type RedemptionReport,
  redemptionItem,
} from './redemption-job.ts';
export { checkRelease, type ExpectedRelease, makeRelease } from './release.ts';
export {
  type CheckpointOutcome,
  type CheckpointPort,
  checkpointEpoch,
  checkpointRequest,
  releaseUnreported,
} from './release-report.ts';
export {
  type BrokerAction,
  CALLBACK_PATH,
  CONNECT_PATH,
  CONNECT_TTL_MS,
  type ConnectState,
  Connections,
  intentCookieName,
  openConnectState,
  type RefreshOutcome,
  safeReturnTo,
  sealConnectState,
  stateMatches,
} from './connection.ts';
export { type RequestOrigin, sameOriginPost, sameSiteNavigation } from './navigation.ts';
export {
  INTENT_TTL_MS,
  openIntent,
  PAY_PATH,
  type PayForm,
  type PayIntent,
  payFormToken,
  payFormTokenMatches,
  readPayForm,
  sealIntent,
} from './pay-confirm.ts';
export {
  allowanceLeftMinor,
  connectSecret,
  paywordBelow,
  type SessionState,
  type SessionWallet,
  sessionHashOf,
  readWalletSession,
  SECURE_WALLET_SESSION_COOKIE,
  WALLET_SESSION_COOKIE,
  type WalletSessionCookie,
  type WalletView,
  walletSessionCookieName,
  walletSessionFrom,
} from './server-wallet.ts';
export { openValue, sealValue } from './sealed-value.ts';
export type { WebAnswer } from './web-answer.ts';
export {
  type BatchRecord,
  type ChainRecord,
  createSpendStore,
  type EpochRecord,
  type PaymentWrite,
  type PurchaseNote,
  type PointRecord,
  type ServerWalletRecord,
  type SpendNoteRecord,
  type SpendStore,
  type SpendStoreObserver,
  type SpendStoreOptions,
  type SpendTotals,
  type WalletPurchase,
} from './spend-store.ts';
export {
  type ChargeInput,
  createNetPayVendor,
  type HttpAnswer,
  type NetPayVendor,
  type NetPayVendorOptions,
  type PaymentDecision,
  type SessionView,
  type VendorAccountSummary,
  type VendorLogger,
  type VendorMemory,
} from './vendor.ts';
export { DEFAULT_MAX_CHAINS_IN_MEMORY } from './chain-cache.ts';
export type { WriteResult } from './payment-journal.ts';
export { keyIdForPublicKey, loadOrCreateVendorKey, type VendorKey } from './vendor-key.ts';
