import type { Kysely, Migration } from 'kysely';

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
};
