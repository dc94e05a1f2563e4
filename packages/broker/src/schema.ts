import type { Kysely, Transaction } from 'kysely';

/**
 * The broker's tables as Kysely sees them. Money columns are BIGINT (parsed to safe integers by
 * service-kit); chain positions are INTEGER; timestamps are RFC 3339 text, which sorts by time.
 */
export interface BrokerSchema {
  signing_keys: {
    key_id: string;
    seq: number;
    private_seed: string;
    public_key: string;
    created_at: string;
    retired_at: string | null;
  };
  vendors: {
    id: string;
    name: string;
    url: string;
    release_url: string;
    api_key_hash: string;
    created_at: string;
  };
  vendor_keys: { vendor_id: string; key_id: string; public_key: string; created_at: string };
  customers: { id: string; email: string; password_hash: string; created_at: string };
  /** kind: `api` (Bearer token) or `web` (the pages' cookie); one is never accepted as the other. */
  sessions: { token_hash: string; kind: 'api' | 'web'; customer_id: string; created_at: string; expires_at: string };
  chains: {
    chain_id: string;
    customer_id: string;
    anchor: string;
    seed: string | null;
    length: number;
    unit: number;
    currency: string;
    issued_at: string;
    expires_at: string;
    touchstone: string;
    charge_id: string;
    amount: number;
    current_epoch: number;
    refund_index: number | null;
    refunded_units: number;
    refunded_amount: number;
    refunded_at: string | null;
    /**
     * active | refund_pending (the broker claimed it for a refund and waits for the holder's release; no
     * vendor may claim it) | refunding (refund index fixed, the bank is being asked) | refunded
     */
    status: string;
    /**
     * The connection whose allowances this chain carries (§7 v1.1; connection-chain.ts), or null for a coin bought
     * by card. A connection chain is funded from the customer's balance (charge_id '') and its remainder goes back
     * there.
     */
    connection_id: string | null;
  };
  /** A customer's connection to one vendor site (connections.ts); at most one live (not revoked) per pair. */
  connections: {
    id: string;
    customer_id: string;
    vendor_id: string;
    created_at: string;
    revoked_at: string | null;
    /** SHA-256 of the newest refresh token (every live one is in `connection_tokens`). */
    refresh_token_hash: string;
    /** The connection chain allowances currently come from, null before the first grant. */
    chain_id: string | null;
    /** Cap on what this site may be allowed per calendar month (UTC). */
    site_cap_minor: number;
  };
  /**
   * The refresh tokens of a connection (connections.ts), one per grant: each browser session the site keeps for the
   * customer holds its own, so a second device's connect does not cut the first one off. SHA-256 hashes only.
   */
  connection_tokens: { token_hash: string; connection_id: string; seq: number; created_at: string };
  /** The customer's limits, saved card and automatic top-up (customer-settings.ts). One row per customer. */
  customer_settings: {
    customer_id: string;
    /** Sites pay without asking up to this price per article. */
    auto_pay_max_minor: number;
    /** Cap on what all sites together may be allowed per day (UTC). */
    daily_cap_minor: number;
    /** 1: every new site shows the consent page; 0: after the first, sites connect with no page. */
    ask_each_site: number;
    /** 1 once the customer consented to connecting a site. */
    connected_once: number;
    /** The bank's saved-card token, sealed (store-secrets.ts); null when no card is saved. */
    card_token: string | null;
    card_last4: string | null;
    /** Automatic top-up: the amount charged, and the most charged that way per calendar month; null when off. */
    auto_top_up_minor: number | null;
    auto_top_up_ceiling_minor: number | null;
    updated_at: string;
  };
  /** Money added to a customer's balance by card (top-up.ts), from before the charge until it is credited. */
  top_ups: {
    id: string;
    customer_id: string;
    idempotency_key: string;
    fingerprint: string;
    /** The Idempotency-Key of the charge at the bank. */
    bank_key: string;
    amount: number;
    /** 1 when the broker charged the saved card on its own (counted against the monthly ceiling). */
    automatic: number;
    /** charging | completed | declined */
    status: string;
    charge_id: string | null;
    card_last4: string;
    created_at: string;
    updated_at: string;
  };
  /**
   * What a connection's site may spend (allowances.ts): each `grant` raises a chain's allowance index; a `return`
   * records what came back when the chain ended. `amount` is signed minor units (grant +, return −), summed for
   * the caps; `spent_index` is the point the vendor reported.
   */
  allowances: {
    id: string;
    connection_id: string;
    customer_id: string;
    chain_id: string;
    kind: string;
    spent_index: number;
    allowance_index: number;
    amount: number;
    expires_at: string;
    created_at: string;
  };
  /** What a site says it sold (`notes` of an allowance request), for the customer's history. */
  spend_notes: {
    chain_id: string;
    idx: number;
    connection_id: string;
    customer_id: string;
    vendor_id: string;
    amount: number;
    description: string;
    created_at: string;
  };
  epochs: {
    chain_id: string;
    epoch: number;
    vendor_id: string;
    prev_vendor_id: string;
    prev_epoch: number;
    start_index: number | null;
    start_payword: string | null;
    /** anchor | release | forced, null while the broker does not know where the epoch starts */
    start_kind: string | null;
    issued_at: string;
    lease_expires_at: string;
    holder: string;
    checkpoint_index: number | null;
    checkpoint_payword: string | null;
    release_index: number | null;
    release_payword: string | null;
    release: string | null;
    superseded_by: number | null;
    forced_bound: number | null;
    /** v1.1: the customer's payword the claim that opened this epoch carried (null for internal claims). */
    claim_index: number | null;
    claim_payword: string | null;
    /** Σ (gross − taken_back_gross) of this epoch's redeemed ranges, kept in step with them (conservation.ts). */
    kept_gross: number;
    /** The highest end of this epoch's redeemed ranges: a point the broker verified (null before any). */
    redeemed_index: number | null;
    redeemed_payword: string | null;
  };
  redeemed_ranges: {
    id: string;
    chain_id: string;
    from_index: number;
    from_payword: string;
    to_index: number;
    to_payword: string;
    /** The end still paid for: to_index until a take-back lowers it. */
    kept_to: number;
    vendor_id: string;
    epoch: number;
    redemption_id: string;
    gross: number;
    fee: number;
    taken_back_gross: number;
    taken_back_fee: number;
    created_at: string;
  };
  redemptions: {
    id: string;
    vendor_id: string;
    idempotency_key: string;
    fingerprint: string;
    response: string | null;
    created_at: string;
  };
  coin_purchases: {
    customer_id: string;
    idempotency_key: string;
    fingerprint: string;
    chain_id: string;
    response: string;
    created_at: string;
  };
  conflicts: {
    id: string;
    chain_id: string;
    epoch: number;
    vendor_id: string;
    kind: string;
    from_index: number;
    to_index: number;
    amount: number;
    evidence: string;
    created_at: string;
  };
  payouts: {
    id: string;
    vendor_id: string;
    amount: number;
    currency: string;
    /** pending | paid | failed; at most one `pending` per vendor (unique index payouts_one_pending) */
    status: string;
    bank_payout_id: string | null;
    created_at: string;
    updated_at: string;
  };
  /** Per vendor: all gross it ever redeemed and all fees charged on it (fee = floor(gross × bps), carried). */
  vendor_fees: { vendor_id: string; gross: number; fee: number };
  accounts: { id: string; kind: string; floor: number | null };
  ledger_entries: { id: string; kind: string; reference: string; created_at: string };
  postings: { entry_id: string; account_id: string; amount: number };
  /** A failed login (or one being checked): the account as a hash of its email, the client address, when. */
  login_failures: { id: string; account_key: string; address: string; failed_at: string };
  /** A coin purchase from before its charge until its coin (src/purchase-attempt.ts). */
  purchase_attempts: {
    customer_id: string;
    idempotency_key: string;
    fingerprint: string;
    /** The Idempotency-Key of the charge at the bank. */
    bank_key: string;
    amount: number;
    unit: number;
    currency: string;
    /** The client's chain, when it made its own (both or neither). */
    chain_id: string | null;
    anchor: string | null;
    card_last4: string;
    card_expiry: string;
    /** charging | completed | declined | abandoned | refunded */
    status: string;
    charge_id: string | null;
    created_at: string;
    updated_at: string;
  };
  /** A shared budget's state (src/rate-budget.ts): when `subject`'s bucket of `budget` is full again, µs. */
  rate_budgets: { budget: string; subject: string; tat_us: number };
}

export type BrokerDb = Kysely<BrokerSchema>;
export type BrokerTx = Transaction<BrokerSchema>;
/** Either the database or a transaction on it: repositories accept both. */
export type Queryable = Kysely<BrokerSchema> | Transaction<BrokerSchema>;
