import { defaultHashWorkers } from './hash-pool.ts';
import type { LoginFailureLimits } from './login-throttle.ts';

/** What an operator may tune; everything else follows from the protocol. */
export interface BrokerConfig {
  /** The broker's base URL as clients reach it, e.g. http://127.0.0.1:4000 (no trailing slash). */
  publicUrl: string;
  currency: string;
  /** The broker's fee on redemptions in basis points, rounded down. */
  feeBps: number;
  maxChainLength: number;
  leaseTtlSeconds: number;
  coinTtlDays: number;
  /** How long a connect grant code stays valid (used by the connect flow). */
  grantTtlSeconds: number;
  /** Session lifetime for customer tokens. */
  sessionTtlSeconds: number;
  /** Timeout when the broker calls a vendor's release URL (refunds). */
  releaseTimeoutMs: number;
  /**
   * How long a payout holds back a credit whose epoch's end is still unknown (a take-back may yet claim it),
   * see settlement.ts; 0 pays every credit at once.
   */
  settlementWindowSeconds: number;
  /**
   * The most a connected site may hold unspent at once (§7 v1.1 allowances): what a dishonest site can take.
   * Minor units (default 50 = NZ$0.50).
   */
  allowanceMaxMinor: number;
  /** How much of a customer's balance one connection chain takes at a time (default 200 = NZ$2.00). */
  connectionBlockMinor: number;
  rateLimits: {
    /** Login attempts per client address: bucket size and refill per second. */
    loginPerIp: [capacity: number, perSecond: number];
    signupPerIp: [capacity: number, perSecond: number];
    coinPurchasesPerCustomer: [capacity: number, perSecond: number];
  };
  /**
   * Worker threads for hash loops too long for the event loop (hash-pool.ts): coins the broker makes, long ranges
   * and proofs. Default: the cores less one, at least 1.
   */
  hashWorkers: number;
  /** Failed-login limits shared by the web form and the API (see login-throttle.ts); defaults when absent. */
  loginFailures?: Partial<LoginFailureLimits>;
}

export const DEFAULT_CONFIG: Omit<BrokerConfig, 'publicUrl'> = {
  currency: 'NZD',
  feeBps: 200,
  maxChainLength: 100_000,
  leaseTtlSeconds: 300,
  coinTtlDays: 365,
  grantTtlSeconds: 60,
  sessionTtlSeconds: 30 * 24 * 3600,
  releaseTimeoutMs: 5000,
  settlementWindowSeconds: 86_400,
  allowanceMaxMinor: 50,
  connectionBlockMinor: 200,
  hashWorkers: defaultHashWorkers(),
  rateLimits: {
    loginPerIp: [300, 10],
    signupPerIp: [300, 10],
    coinPurchasesPerCustomer: [120, 5],
  },
};

/** Fills in defaults and checks the values an operator may get wrong. */
export function brokerConfig(partial: Partial<BrokerConfig> & { publicUrl: string }): BrokerConfig {
  const config: BrokerConfig = {
    ...DEFAULT_CONFIG,
    ...partial,
    rateLimits: { ...DEFAULT_CONFIG.rateLimits, ...(partial.rateLimits ?? {}) },
    publicUrl: partial.publicUrl.replace(/\/+$/, ''),
  };
  if (!/^https?:\/\/[^\s"\\]+$/.test(config.publicUrl)) throw new Error(`invalid publicUrl ${config.publicUrl}`);
  if (!Number.isInteger(config.feeBps) || config.feeBps < 0 || config.feeBps > 10_000) {
    throw new Error('feeBps must be an integer in 0..10000');
  }
  if (!Number.isInteger(config.maxChainLength) || config.maxChainLength < 1 || config.maxChainLength > 1_000_000) {
    throw new Error('maxChainLength must be an integer in 1..1000000');
  }
  if (!(config.leaseTtlSeconds >= 1)) throw new Error('leaseTtlSeconds must be at least 1');
  if (!Number.isSafeInteger(config.settlementWindowSeconds) || config.settlementWindowSeconds < 0) {
    throw new Error('settlementWindowSeconds must be a non-negative integer');
  }
  if (!Number.isSafeInteger(config.allowanceMaxMinor) || config.allowanceMaxMinor < 1) {
    throw new Error('allowanceMaxMinor must be a positive integer');
  }
  if (!Number.isSafeInteger(config.connectionBlockMinor) || config.connectionBlockMinor < config.allowanceMaxMinor) {
    throw new Error('connectionBlockMinor must be an integer of at least allowanceMaxMinor');
  }
  if (!Number.isInteger(config.hashWorkers) || config.hashWorkers < 1 || config.hashWorkers > 64) {
    throw new Error('hashWorkers must be an integer in 1..64');
  }
  return config;
}

/** The API base URL, the discovery document's `api` member. */
export function apiBase(config: BrokerConfig): string {
  return `${config.publicUrl}/api/v1`;
}
