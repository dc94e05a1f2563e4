import type { PurchaseAttempt, PurchaseAttemptStatus, StoredPurchaseAttempt } from './purchase-attempt.ts';
import type { BrokerSchema, Queryable } from './schema.ts';

type Row = BrokerSchema['purchase_attempts'];

function fromRow(row: Row): StoredPurchaseAttempt {
  return {
    customerId: row.customer_id,
    idempotencyKey: row.idempotency_key,
    fingerprint: row.fingerprint,
    bankKey: row.bank_key,
    amount: Number(row.amount),
    unit: Number(row.unit),
    currency: row.currency,
    ...(row.chain_id !== null ? { chainId: row.chain_id } : {}),
    ...(row.anchor !== null ? { anchor: row.anchor } : {}),
    cardLast4: row.card_last4,
    cardExpiry: row.card_expiry,
    status: row.status as PurchaseAttemptStatus,
    ...(row.charge_id !== null ? { chargeId: row.charge_id } : {}),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Records an attempt before its charge is sent, or finds the one already recorded under its key (a retry, or a
 * twin request racing this one): `stored` is the attempt as stored, which may be another request's, and `fresh`
 * says whether this call wrote it.
 */
export async function recordAttempt(
  db: Queryable,
  attempt: PurchaseAttempt,
  at: string,
): Promise<{ stored: StoredPurchaseAttempt; fresh: boolean }> {
  const inserted = await db
    .insertInto('purchase_attempts')
    .values({
      customer_id: attempt.customerId,
      idempotency_key: attempt.idempotencyKey,
      fingerprint: attempt.fingerprint,
      bank_key: attempt.bankKey,
      amount: attempt.amount,
      unit: attempt.unit,
      currency: attempt.currency,
      chain_id: attempt.chainId ?? null,
      anchor: attempt.anchor ?? null,
      card_last4: attempt.cardLast4,
      card_expiry: attempt.cardExpiry,
      status: 'charging',
      charge_id: null,
      created_at: at,
      updated_at: at,
    })
    .onConflict((oc) => oc.columns(['customer_id', 'idempotency_key']).doNothing())
    .executeTakeFirst();
  const stored = await findAttempt(db, attempt.customerId, attempt.idempotencyKey);
  if (!stored) throw new Error('a purchase attempt vanished right after it was recorded');
  return { stored, fresh: Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0 };
}

export async function findAttempt(
  db: Queryable,
  customerId: string,
  idempotencyKey: string,
): Promise<StoredPurchaseAttempt | undefined> {
  const row = await db
    .selectFrom('purchase_attempts')
    .selectAll()
    .where('customer_id', '=', customerId)
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst();
  return row ? fromRow(row) : undefined;
}

/**
 * A retry is about to send the charge again: the attempt is open again (an abandoned one found nothing at the
 * bank, so this send may charge) and its grace period starts over.
 */
export async function reopenAttempt(db: Queryable, customerId: string, idempotencyKey: string, at: string) {
  await db
    .updateTable('purchase_attempts')
    .set({ status: 'charging', updated_at: at })
    .where('customer_id', '=', customerId)
    .where('idempotency_key', '=', idempotencyKey)
    .where('status', 'in', ['charging', 'abandoned'])
    .execute();
}

/**
 * Moves an attempt from `from` to `to`; false when it was not in `from` any more (another reconciler, or the
 * customer's own retry, settled it first), so concurrent settlers never undo each other. With `sentAt`, only
 * while nobody has sent the charge again since: a retry in flight may still charge.
 */
export async function settleAttempt(
  db: Queryable,
  key: { customerId: string; idempotencyKey: string },
  from: readonly PurchaseAttemptStatus[],
  to: PurchaseAttemptStatus,
  at: string,
  chargeId?: string,
  sentAt?: string,
): Promise<boolean> {
  const result = await db
    .updateTable('purchase_attempts')
    .set({ status: to, updated_at: at, ...(chargeId !== undefined ? { charge_id: chargeId } : {}) })
    .where('customer_id', '=', key.customerId)
    .where('idempotency_key', '=', key.idempotencyKey)
    .where('status', 'in', [...from])
    .$if(sentAt !== undefined, (q) => q.where('updated_at', '=', sentAt as string))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Forgets an attempt the bank refused as invalid: it recorded nothing, so the key is free again, as at the bank. */
export async function forgetAttempt(db: Queryable, customerId: string, idempotencyKey: string): Promise<void> {
  await db
    .deleteFrom('purchase_attempts')
    .where('customer_id', '=', customerId)
    .where('idempotency_key', '=', idempotencyKey)
    .where('status', '=', 'charging')
    .execute();
}

/** Open attempts last sent before `before`, oldest first. */
export async function openAttempts(db: Queryable, before: string, limit: number): Promise<StoredPurchaseAttempt[]> {
  const rows = await db
    .selectFrom('purchase_attempts')
    .selectAll()
    .where('status', '=', 'charging')
    .where('updated_at', '<=', before)
    .orderBy('updated_at')
    .orderBy('customer_id')
    .orderBy('idempotency_key')
    .limit(limit)
    .execute();
  return rows.map(fromRow);
}
