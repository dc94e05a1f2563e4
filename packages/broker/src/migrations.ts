import { type Kysely, type Migration, sql } from 'kysely';

/**
 * The broker's schema, written with Kysely's portable builder so one list serves SQLite and PostgreSQL.
 * Money is BIGINT; chain positions INTEGER; timestamps RFC 3339 text.
 */
export const migrations: Record<string, Migration> = {
  '0001_broker': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('signing_keys')
        .addColumn('key_id', 'text', (c) => c.primaryKey())
        .addColumn('seq', 'integer', (c) => c.notNull().unique())
        .addColumn('private_seed', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('retired_at', 'text')
        .execute();

      await db.schema
        .createTable('vendors')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('release_url', 'text', (c) => c.notNull())
        .addColumn('api_key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('vendor_keys')
        .addColumn('vendor_id', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('vendor_keys_pk', ['vendor_id', 'key_id'])
        .execute();

      await db.schema
        .createTable('customers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('sessions')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('chains')
        .addColumn('chain_id', 'text', (c) => c.primaryKey())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('anchor', 'text', (c) => c.notNull())
        .addColumn('seed', 'text')
        .addColumn('length', 'integer', (c) => c.notNull())
        .addColumn('unit', 'bigint', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('issued_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('touchstone', 'text', (c) => c.notNull())
        .addColumn('charge_id', 'text', (c) => c.notNull())
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('current_epoch', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('refund_index', 'integer')
        .addColumn('refunded_units', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('refunded_amount', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('refunded_at', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('chains_customer').on('chains').columns(['customer_id', 'issued_at']).execute();

      await db.schema
        .createTable('epochs')
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('epoch', 'integer', (c) => c.notNull())
        .addColumn('vendor_id', 'text', (c) => c.notNull())
        .addColumn('prev_vendor_id', 'text', (c) => c.notNull())
        .addColumn('prev_epoch', 'integer', (c) => c.notNull())
        .addColumn('start_index', 'integer')
        .addColumn('start_payword', 'text')
        .addColumn('start_kind', 'text')
        .addColumn('issued_at', 'text', (c) => c.notNull())
        .addColumn('lease_expires_at', 'text', (c) => c.notNull())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('checkpoint_index', 'integer')
        .addColumn('checkpoint_payword', 'text')
        .addColumn('release_index', 'integer')
        .addColumn('release_payword', 'text')
        .addColumn('release', 'text')
        .addColumn('superseded_by', 'integer')
        .addColumn('forced_bound', 'integer')
        .addPrimaryKeyConstraint('epochs_pk', ['chain_id', 'epoch'])
        .execute();

      await db.schema
        .createTable('redeemed_ranges')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('from_index', 'integer', (c) => c.notNull())
        .addColumn('from_payword', 'text', (c) => c.notNull())
        .addColumn('to_index', 'integer', (c) => c.notNull())
        .addColumn('to_payword', 'text', (c) => c.notNull())
        .addColumn('kept_to', 'integer', (c) => c.notNull())
        .addColumn('vendor_id', 'text', (c) => c.notNull())
        .addColumn('epoch', 'integer', (c) => c.notNull())
        .addColumn('redemption_id', 'text', (c) => c.notNull())
        .addColumn('gross', 'bigint', (c) => c.notNull())
        .addColumn('fee', 'bigint', (c) => c.notNull())
        .addColumn('taken_back_gross', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('taken_back_fee', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('redeemed_ranges_chain')
        .on('redeemed_ranges')
        .columns(['chain_id', 'from_index'])
        .execute();

      await db.schema
        .createTable('redemptions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('vendor_id', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('response', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('redemptions_key', ['vendor_id', 'idempotency_key'])
        .execute();

      await db.schema
        .createTable('coin_purchases')
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('response', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('coin_purchases_pk', ['customer_id', 'idempotency_key'])
        .execute();

      await db.schema
        .createTable('conflicts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('epoch', 'integer', (c) => c.notNull())
        .addColumn('vendor_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('from_index', 'integer', (c) => c.notNull())
        .addColumn('to_index', 'integer', (c) => c.notNull())
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('evidence', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('payouts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('vendor_id', 'text', (c) => c.notNull())
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('bank_payout_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('accounts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('floor', 'bigint')
        .execute();

      await db.schema
        .createTable('ledger_entries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('reference', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('postings')
        .addColumn('entry_id', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('postings_pk', ['entry_id', 'account_id'])
        .execute();
      await db.schema.createIndex('postings_account').on('postings').columns(['account_id']).execute();
    },
  },
  /** Web pages and connect (src/web, src/wallet-grants.ts): the pages' HMAC key and one-time wallet grant codes. */
  '0002_web_connect': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('web_secrets')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('wallet_grants')
        .addColumn('code_hash', 'text', (c) => c.primaryKey())
        .addColumn('vendor_id', 'text', (c) => c.notNull())
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .execute();
    },
  },
  /**
   * v1.1 chain safety: the proof of payment each claim carried (a verified point, so the next claim must go
   * beyond it), and per-vendor redemption totals so the fee is floor(total gross × bps) with the remainder carried.
   */
  '0003_chain_safety': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('epochs').addColumn('claim_index', 'integer').execute();
      await db.schema.alterTable('epochs').addColumn('claim_payword', 'text').execute();
      await db.schema
        .createTable('vendor_fees')
        .addColumn('vendor_id', 'text', (c) => c.primaryKey())
        .addColumn('gross', 'bigint', (c) => c.notNull())
        .addColumn('fee', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  /** Failed logins (src/login-throttle.ts): one limiter for the web form and the API, shared by every broker process. */
  '0007_login_failures': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('login_failures')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('account_key', 'text', (c) => c.notNull())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('failed_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('login_failures_account')
        .on('login_failures')
        .columns(['account_key', 'failed_at'])
        .execute();
      await db.schema
        .createIndex('login_failures_address')
        .on('login_failures')
        .columns(['address', 'failed_at'])
        .execute();
      await db.schema.createIndex('login_failures_time').on('login_failures').columns(['failed_at']).execute();
    },
  },
  /**
   * Coin purchases between the card charge and the coin (src/purchase-attempt.ts): written before the bank is
   * asked, closed with the coin, so the reconciler can find a charge the broker never turned into a coin.
   */
  '0005_purchase_attempts': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('purchase_attempts')
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('bank_key', 'text', (c) => c.notNull())
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('unit', 'bigint', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('chain_id', 'text')
        .addColumn('anchor', 'text')
        .addColumn('card_last4', 'text', (c) => c.notNull())
        .addColumn('card_expiry', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('charge_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('purchase_attempts_pk', ['customer_id', 'idempotency_key'])
        .execute();
      await db.schema
        .createIndex('purchase_attempts_open')
        .on('purchase_attempts')
        .columns(['status', 'updated_at'])
        .execute();
    },
  },
  /**
   * Sessions of two kinds (customers.ts `SessionKind`): `api` tokens for the JSON API, `web` tokens in the pages'
   * cookie, each refused as the other. Sessions made before this could be either; they become `web`, so a cookie
   * never opens the API and a command-line wallet logs in again.
   */
  '0006_session_kinds': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('sessions')
        .addColumn('kind', 'text', (c) => c.notNull().defaultTo('web'))
        .execute();
    },
  },
  /**
   * Payout runs from several hosts at once (payouts.ts): at most one pending payout per vendor, and a vendor's
   * recent redeemed ranges found by time for the settlement rule (settlement.ts). A store where runs before this
   * already raced may hold two pending payouts for one vendor; each may have been paid at the bank, so the
   * migration stops and names them rather than guess.
   */
  '0004_payout_safety': {
    async up(db: Kysely<unknown>) {
      const store = db as unknown as Kysely<{ payouts: { id: string; vendor_id: string; status: string } }>;
      const doubled = await store
        .selectFrom('payouts')
        .select('vendor_id')
        .where('status', '=', 'pending')
        .groupBy('vendor_id')
        .having((eb) => eb.fn.countAll(), '>', 1)
        .execute();
      if (doubled.length > 0) {
        throw new Error(
          `vendors with several pending payouts: ${doubled.map((d) => d.vendor_id).join(', ')}; check each against the bank's statement and mark it paid or failed before upgrading`,
        );
      }
      await db.schema
        .createIndex('payouts_one_pending')
        .on('payouts')
        .column('vendor_id')
        .unique()
        .where(sql.ref('status'), '=', 'pending')
        .execute();
      await db.schema
        .createIndex('redeemed_ranges_vendor_time')
        .on('redeemed_ranges')
        .columns(['vendor_id', 'created_at'])
        .execute();
    },
  },
  /**
   * One NetPay balance (§7 v1.1): connections of a customer to vendor sites, the chains only a connection uses,
   * the allowances granted on them, the customer's limits, saved card and automatic top-up, and top-ups.
   */
  '0008_connections': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('chains').addColumn('connection_id', 'text').execute();
      await db.schema.createIndex('chains_by_connection').on('chains').column('connection_id').execute();
      await db.schema.createIndex('chains_by_customer').on('chains').column('customer_id').execute();

      await db.schema
        .createTable('connections')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('vendor_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('refresh_token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('chain_id', 'text')
        .addColumn('site_cap_minor', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('connections_one_live')
        .on('connections')
        .columns(['customer_id', 'vendor_id'])
        .unique()
        .where(sql.ref('revoked_at'), 'is', null)
        .execute();

      await db.schema
        .createTable('customer_settings')
        .addColumn('customer_id', 'text', (c) => c.primaryKey())
        .addColumn('auto_pay_max_minor', 'bigint', (c) => c.notNull())
        .addColumn('daily_cap_minor', 'bigint', (c) => c.notNull())
        .addColumn('ask_each_site', 'integer', (c) => c.notNull())
        .addColumn('connected_once', 'integer', (c) => c.notNull())
        .addColumn('card_token', 'text')
        .addColumn('card_last4', 'text')
        .addColumn('auto_top_up_minor', 'bigint')
        .addColumn('auto_top_up_ceiling_minor', 'bigint')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('top_ups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('bank_key', 'text', (c) => c.notNull().unique())
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('automatic', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('charge_id', 'text')
        .addColumn('card_last4', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('top_ups_key', ['customer_id', 'idempotency_key'])
        .execute();
      await db.schema.createIndex('top_ups_by_customer').on('top_ups').columns(['customer_id', 'created_at']).execute();

      await db.schema
        .createTable('allowances')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('connection_id', 'text', (c) => c.notNull())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('spent_index', 'integer', (c) => c.notNull())
        .addColumn('allowance_index', 'integer', (c) => c.notNull())
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('allowances_by_chain').on('allowances').columns(['chain_id', 'created_at']).execute();
      await db.schema
        .createIndex('allowances_by_connection')
        .on('allowances')
        .columns(['connection_id', 'created_at'])
        .execute();
      await db.schema
        .createIndex('allowances_by_customer')
        .on('allowances')
        .columns(['customer_id', 'created_at'])
        .execute();

      await db.schema
        .createTable('spend_notes')
        .addColumn('chain_id', 'text', (c) => c.notNull())
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('connection_id', 'text', (c) => c.notNull())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('vendor_id', 'text', (c) => c.notNull())
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('spend_notes_pk', ['chain_id', 'idx'])
        .execute();
      await db.schema
        .createIndex('spend_notes_by_customer')
        .on('spend_notes')
        .columns(['customer_id', 'created_at'])
        .execute();
    },
  },
  /**
   * Budgets every broker process shares (src/rate-budget.ts): one row per budget and account, the time its bucket
   * is full again, so a fleet's processes draw on one budget.
   */
  '0009_rate_budgets': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('rate_budgets')
        .addColumn('budget', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('tat_us', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('rate_budgets_pkey', ['budget', 'subject'])
        .execute();
    },
  },
  /**
   * Redemption reads only what it needs (issue 10): each epoch keeps the gross its redeemed ranges still keep (their
   * chain's sum is what conservation checks) and the highest end they reached (a point the broker knows), so a chain
   * is loaded without its ranges; the ranges a redemption must see (overlapping, or ending where it starts) are found
   * by their kept end. Filled from the ranges a store already has.
   */
  '0010_epoch_redeemed': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('epochs')
        .addColumn('kept_gross', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.alterTable('epochs').addColumn('redeemed_index', 'integer').execute();
      await db.schema.alterTable('epochs').addColumn('redeemed_payword', 'text').execute();
      await sql`UPDATE epochs SET
          kept_gross = COALESCE((SELECT SUM(r.gross - r.taken_back_gross) FROM redeemed_ranges r
            WHERE r.chain_id = epochs.chain_id AND r.epoch = epochs.epoch), 0),
          redeemed_index = (SELECT MAX(r.to_index) FROM redeemed_ranges r
            WHERE r.chain_id = epochs.chain_id AND r.epoch = epochs.epoch)`.execute(db);
      await sql`UPDATE epochs SET redeemed_payword = (SELECT MIN(r.to_payword) FROM redeemed_ranges r
          WHERE r.chain_id = epochs.chain_id AND r.epoch = epochs.epoch AND r.to_index = epochs.redeemed_index)
        WHERE redeemed_index IS NOT NULL`.execute(db);
      await db.schema
        .createIndex('redeemed_ranges_kept_to')
        .on('redeemed_ranges')
        .columns(['chain_id', 'kept_to'])
        .execute();
    },
  },
  /**
   * A refresh token per grant, not per connection: the second device's connect used to replace the first device's
   * token, which then answered `connection_revoked`. Every connection's current token is carried over.
   */
  '0011_connection_tokens': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('connection_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('connection_id', 'text', (c) => c.notNull())
        // The grant's number within its connection (1, 2, …): the order tokens retire in, free of clock ties.
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('connection_tokens_by_connection')
        .on('connection_tokens')
        .columns(['connection_id', 'seq'])
        .unique()
        .execute();
      await sql`INSERT INTO connection_tokens (token_hash, connection_id, seq, created_at)
        SELECT refresh_token_hash, id, 1, created_at FROM connections`.execute(db);
    },
  },
};
