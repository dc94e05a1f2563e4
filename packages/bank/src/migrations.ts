import { type DatabaseEngine, migrate } from '@netpay/service-kit';
import type { Kysely, Migration } from 'kysely';

// Portable types only (text, integer, bigint) so one list serves SQLite and PostgreSQL.
// Money columns are BIGINT minor units; timestamps are RFC 3339 text, which sorts by time.
export const bankMigrations: Record<string, Migration> = {
  '0001_bank': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('merchants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('api_key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('charges')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('decline_code', 'text')
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('card_last4', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('charges_by_merchant').on('charges').columns(['merchant_id', 'created_at']).execute();

      await db.schema
        .createTable('refunds')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
        .addColumn('charge_id', 'text', (c) => c.notNull().references('charges.id'))
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('refunds_by_charge').on('refunds').column('charge_id').execute();
      await db.schema.createIndex('refunds_by_merchant').on('refunds').columns(['merchant_id', 'created_at']).execute();

      await db.schema
        .createTable('payouts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('destination', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('payouts_by_destination')
        .on('payouts')
        .columns(['merchant_id', 'destination', 'created_at'])
        .execute();
      await db.schema.createIndex('payouts_by_merchant').on('payouts').columns(['merchant_id', 'created_at']).execute();

      // The double entry: every charge, refund and payout writes postings that sum to zero.
      await db.schema
        .createTable('postings')
        .addColumn('entry_id', 'text', (c) => c.notNull())
        .addColumn('account', 'text', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('postings_pk', ['entry_id', 'account'])
        .execute();
      await db.schema.createIndex('postings_by_account').on('postings').columns(['account', 'currency']).execute();

      // The primary key is what makes concurrent requests with one key charge once.
      await db.schema
        .createTable('idempotency_keys')
        .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
        .addColumn('idempotency_key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('status_code', 'integer', (c) => c.notNull())
        .addColumn('response_body', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('idempotency_keys_pk', ['merchant_id', 'idempotency_key'])
        .execute();
    },
  },
  /** Saved cards (`saved-cards.ts`): a token's hash, the last four digits and the expiry; never the number. */
  '0002_saved_cards': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('saved_cards')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
        .addColumn('card_last4', 'text', (c) => c.notNull())
        .addColumn('card_expiry', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
};

/** Brings the bank's store up to date (service-kit pins PostgreSQL's migration tables to the current schema). */
export async function migrateBankStore(db: Kysely<unknown>, _engine: DatabaseEngine): Promise<void> {
  await migrate(db, bankMigrations);
}
