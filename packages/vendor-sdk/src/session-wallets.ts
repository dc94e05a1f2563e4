import type { ServerWalletRecord, SpendNoteRecord, WalletPurchase } from './spend-store.ts';
import type { StoreContext } from './spend-store-schema.ts';

// Session wallets (§9.4, §9.5): what a browser's anonymous session holds at this vendor (an allowance and a sealed
// refresh token, never a seed), what it bought with them, and the spend notes not yet reported to the broker.

/** The session wallet records of the spend store. */
export class SessionWallets {
  readonly #db: StoreContext['db'];

  constructor(context: StoreContext) {
    this.#db = context.db;
  }

  async getServerWallet(sessionHash: string): Promise<ServerWalletRecord | undefined> {
    const row = await this.#db
      .selectFrom('netpay_session_wallets')
      .selectAll()
      .where('session_hash', '=', sessionHash)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      sessionHash: row.session_hash,
      chainId: row.chain_id,
      epoch: Number(row.epoch),
      allowance: {
        index: Number(row.allowance_index),
        payword: row.allowance_payword,
        expiresAtMs: Number(row.allowance_expires_at_ms),
      },
      refreshTokenSealed: row.refresh_token,
      balanceMinor: Number(row.balance_minor),
      balanceAtMs: Number(row.balance_at_ms),
      autoPayMaxMinor: Number(row.auto_pay_max_minor),
      updatedAtMs: Number(row.updated_at_ms),
    };
  }

  async putServerWallet(record: ServerWalletRecord): Promise<void> {
    const values = {
      session_hash: record.sessionHash,
      chain_id: record.chainId,
      epoch: record.epoch,
      allowance_index: record.allowance.index,
      allowance_payword: record.allowance.payword,
      allowance_expires_at_ms: record.allowance.expiresAtMs,
      refresh_token: record.refreshTokenSealed,
      balance_minor: record.balanceMinor,
      balance_at_ms: record.balanceAtMs,
      auto_pay_max_minor: record.autoPayMaxMinor,
      updated_at_ms: record.updatedAtMs,
    };
    const { session_hash: _key, ...update } = values;
    await this.#db
      .insertInto('netpay_session_wallets')
      .values(values)
      .onConflict((oc) => oc.column('session_hash').doUpdateSet(update))
      .execute();
  }

  async deleteServerWallet(sessionHash: string): Promise<void> {
    await this.#db.deleteFrom('netpay_session_wallets').where('session_hash', '=', sessionHash).execute();
  }

  async recordWalletPurchase(p: WalletPurchase): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await trx
        .insertInto('netpay_wallet_purchases')
        .values({ session_hash: p.sessionHash, resource: p.resource, chain_id: p.chainId, idx: p.index, at_ms: p.atMs })
        .onConflict((oc) => oc.columns(['session_hash', 'resource']).doNothing())
        .execute();
      await trx
        .insertInto('netpay_spend_notes')
        .values({ chain_id: p.chainId, idx: p.index, amount_minor: p.amountMinor, description: p.description })
        .onConflict((oc) => oc.columns(['chain_id', 'idx']).doNothing())
        .execute();
    });
  }

  async walletPurchases(sessionHash: string) {
    const rows = await this.#db
      .selectFrom('netpay_wallet_purchases')
      .select(['resource', 'chain_id', 'idx'])
      .where('session_hash', '=', sessionHash)
      .execute();
    return rows.map((r) => ({ resource: r.resource, chainId: r.chain_id, index: Number(r.idx) }));
  }

  async copyWalletPurchases(from: string, to: string): Promise<void> {
    await this.#db
      .insertInto('netpay_wallet_purchases')
      .columns(['session_hash', 'resource', 'chain_id', 'idx', 'at_ms'])
      .expression((eb) =>
        eb
          .selectFrom('netpay_wallet_purchases')
          .select([eb.val(to).as('session_hash'), 'resource', 'chain_id', 'idx', 'at_ms'])
          .where('session_hash', '=', from),
      )
      .onConflict((oc) => oc.columns(['session_hash', 'resource']).doNothing())
      .execute();
  }

  async unreportedNotes(chainId: string, upToIndex: number): Promise<SpendNoteRecord[]> {
    const rows = await this.#db
      .selectFrom('netpay_spend_notes')
      .selectAll()
      .where('chain_id', '=', chainId)
      .where('idx', '<=', upToIndex)
      .orderBy('idx')
      .limit(100)
      .execute();
    return rows.map((r) => ({ index: Number(r.idx), amount: Number(r.amount_minor), description: r.description }));
  }

  async dropNotes(chainId: string, upToIndex: number): Promise<void> {
    await this.#db
      .deleteFrom('netpay_spend_notes')
      .where('chain_id', '=', chainId)
      .where('idx', '<=', upToIndex)
      .execute();
  }
}
