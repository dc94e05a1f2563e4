import { createHash } from 'node:crypto';
import { Money, ProtocolError } from '@netpay/protocol';
import { isUniqueViolation, requestFingerprint, rfc3339 } from '@netpay/service-kit';
import { type CardDetails, BankUnavailable, type ChargeRequest, type ChargeResult } from './bank-port.ts';
import { ensureCustomerSettings, lockCustomer, readSettings, saveCardToken } from './customer-settings.ts';
import type { BrokerDeps } from './deps.ts';
import { newId } from './ids.ts';
import { topUpEntryOf } from './ledger.ts';
import { customerAccountBalance, postEntry } from './ledger-store.ts';
import type { BrokerSchema, Queryable } from './schema.ts';
import { openCardToken } from './store-secrets.ts';

export type TopUpRow = BrokerSchema['top_ups'];

/** What the bank's statement says for a top-up. */
export const TOP_UP_DESCRIPTION = 'NetPay balance';

/** The most one top-up may add: NZ$1,000. */
export const MAX_TOP_UP_MINOR = 100_000;

/** Money to add, from a card typed now (optionally saved for next time) or the saved card. */
export type TopUpPayment = { card: CardDetails; saveCard?: boolean } | { savedCard: true };

export interface TopUpResult {
  topUpId: string;
  amount: number;
}

/**
 * Adds money to the customer's balance by card (§7 v1.1). The top-up is recorded (status `charging`) before the
 * bank is asked, under a bank key derived from (customer, key); the bank's answer then completes it in one
 * transaction with its ledger entry (cash +x / customer −x). A retry with the same key after a timeout reuses
 * the bank's charge, so one key adds the money once; the same key with another request is 422.
 */
export async function topUp(
  deps: BrokerDeps,
  customerId: string,
  idempotencyKey: string,
  amountMinor: number,
  payment: TopUpPayment,
): Promise<TopUpResult> {
  const now = deps.clock.now();
  if (!Number.isSafeInteger(amountMinor) || amountMinor < 1 || amountMinor > MAX_TOP_UP_MINOR) {
    throw new ProtocolError('bad_request', `the amount must be between 1 and ${MAX_TOP_UP_MINOR} minor units`);
  }
  await ensureCustomerSettings(deps.db, customerId, now);
  const fingerprint = requestFingerprint({
    amount: amountMinor,
    ...('card' in payment
      ? { cardLast4: last4Of(payment.card.number), expiry: payment.card.expiry, save: payment.saveCard === true }
      : { savedCard: true }),
  });
  const stored = await findTopUp(deps.db, customerId, idempotencyKey);
  if (stored) {
    if (stored.fingerprint !== fingerprint) {
      throw new ProtocolError('idempotency_conflict', 'this Idempotency-Key was used with another request body');
    }
    if (stored.status === 'completed') return { topUpId: stored.id, amount: stored.amount };
  }

  let charge: Omit<ChargeRequest, 'amount' | 'currency'>;
  let last4: string;
  if ('card' in payment) {
    if (payment.saveCard && stored) {
      // A retry: the card was saved by the first attempt, whose charge went out under its token.
      const settings = await readSettings(deps.db, customerId);
      if (settings.card_token === null) throw new ProtocolError('bad_request', 'the saved card was removed');
      charge = { cardToken: openCardToken(customerId, settings.card_token) };
      last4 = settings.card_last4 ?? '';
    } else if (payment.saveCard) {
      // Saved first, then charged by its token: the card the customer asked to keep is the card that paid.
      const saved = await deps.bank.saveCard(payment.card).catch(unavailable);
      if (!saved.ok) throw new ProtocolError(saved.code, saved.detail ?? 'the bank refused the card');
      await saveCardToken(deps.db, customerId, saved.cardToken, saved.last4, now);
      charge = { cardToken: saved.cardToken };
      last4 = saved.last4;
    } else {
      charge = { card: payment.card };
      last4 = last4Of(payment.card.number);
    }
  } else {
    const settings = await readSettings(deps.db, customerId);
    if (settings.card_token === null) throw new ProtocolError('bad_request', 'no card is saved');
    charge = { cardToken: openCardToken(customerId, settings.card_token) };
    last4 = settings.card_last4 ?? '';
  }

  const row =
    stored ??
    (await recordTopUp(deps.db, {
      id: newId('tu'),
      customer_id: customerId,
      idempotency_key: idempotencyKey,
      fingerprint,
      bank_key: topUpBankKey(customerId, idempotencyKey),
      amount: amountMinor,
      automatic: 0,
      status: 'charging',
      charge_id: null,
      card_last4: last4,
      created_at: rfc3339(now),
      updated_at: rfc3339(now),
    }));
  if (row.fingerprint !== fingerprint) {
    throw new ProtocolError('idempotency_conflict', 'this Idempotency-Key was used with another request body');
  }
  return chargeAndCredit(deps, row, charge);
}

/**
 * The automatic top-up (§7 v1.1): when a site needs more than the balance holds, charge the saved card the
 * customer's top-up amount, provided this calendar month's automatic top-ups plus it stay within the ceiling.
 * The ceiling is checked and the attempt recorded in one transaction under the customer's lock, so concurrent
 * requests from two sites cannot both pass it. `key` names the request that needed it (one charge per request,
 * whatever the retries). 'refused' when off, above the ceiling or declined.
 */
export async function automaticTopUp(
  deps: BrokerDeps,
  customerId: string,
  key: string,
): Promise<{ kind: 'completed'; amount: number } | { kind: 'refused'; reason: 'off' | 'ceiling' | 'declined' }> {
  const now = deps.clock.now();
  const at = rfc3339(now);
  const prepared = await deps.db.transaction().execute(async (trx) => {
    const settings = await lockCustomer(trx, deps.engine, customerId);
    const existing = await findTopUp(trx, customerId, key);
    if (existing) return { row: existing, settings };
    if (
      settings.card_token === null ||
      settings.auto_top_up_minor === null ||
      settings.auto_top_up_ceiling_minor === null
    ) {
      return 'off' as const;
    }
    const used = await automaticThisMonth(trx, customerId, now);
    if (used + settings.auto_top_up_minor > settings.auto_top_up_ceiling_minor) return 'ceiling' as const;
    const row: TopUpRow = {
      id: newId('tu'),
      customer_id: customerId,
      idempotency_key: key,
      fingerprint: requestFingerprint({ automatic: settings.auto_top_up_minor }),
      bank_key: topUpBankKey(customerId, key),
      amount: settings.auto_top_up_minor,
      automatic: 1,
      status: 'charging',
      charge_id: null,
      card_last4: settings.card_last4 ?? '',
      created_at: at,
      updated_at: at,
    };
    await trx.insertInto('top_ups').values(row).execute();
    return { row, settings };
  });
  if (prepared === 'off' || prepared === 'ceiling') return { kind: 'refused', reason: prepared };
  const { row, settings } = prepared;
  if (row.status === 'completed') return { kind: 'completed', amount: row.amount };
  if (row.status === 'declined' || settings.card_token === null) return { kind: 'refused', reason: 'declined' };
  try {
    await chargeAndCredit(deps, row, { cardToken: openCardToken(customerId, settings.card_token) });
  } catch (error) {
    if (error instanceof ProtocolError && error.code !== 'bank_unavailable')
      return { kind: 'refused', reason: 'declined' };
    throw error;
  }
  return { kind: 'completed', amount: row.amount };
}

/** What the broker charged automatically this calendar month (UTC), attempts in flight included. */
export async function automaticThisMonth(db: Queryable, customerId: string, now: Date): Promise<number> {
  const row = await db
    .selectFrom('top_ups')
    .select((eb) => eb.fn.sum<number | string | null>('amount').as('total'))
    .where('customer_id', '=', customerId)
    .where('automatic', '=', 1)
    .where('status', 'in', ['charging', 'completed'])
    .where('created_at', '>=', monthStart(now))
    .executeTakeFirst();
  return Number(row?.total ?? 0);
}

/** The first instant of `now`'s calendar month, UTC, as stored timestamps are written. */
export function monthStart(now: Date): string {
  return rfc3339(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)));
}

/** The first instant of `now`'s day, UTC. */
export function dayStart(now: Date): string {
  return rfc3339(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())));
}

/** The Idempotency-Key of a top-up's charge at the bank: one per (customer, top-up key). */
export function topUpBankKey(customerId: string, idempotencyKey: string): string {
  return `topup-${createHash('sha256').update(`${customerId}\n${idempotencyKey}`).digest('hex').slice(0, 48)}`;
}

async function chargeAndCredit(
  deps: BrokerDeps,
  row: TopUpRow,
  payment: Omit<ChargeRequest, 'amount' | 'currency'>,
): Promise<TopUpResult> {
  if (row.status === 'declined') throw new ProtocolError('card_declined', 'the bank declined this top-up');
  let result: ChargeResult;
  try {
    result = await deps.bank.charge(
      {
        amount: row.amount,
        currency: deps.config.currency,
        description: TOP_UP_DESCRIPTION,
        ...payment,
      } as ChargeRequest,
      row.bank_key,
    );
  } catch (error) {
    unavailable(error);
  }
  const at = rfc3339(deps.clock.now());
  if (!result.ok) {
    if (result.code === 'idempotency_conflict') {
      throw new ProtocolError('idempotency_conflict', 'this Idempotency-Key was used with other card details');
    }
    // An invalid card is refused before the bank records anything: the key is free again there and here.
    if (result.code === 'invalid_card') await deps.db.deleteFrom('top_ups').where('id', '=', row.id).execute();
    else await settle(deps.db, row.id, 'declined', null, at);
    throw new ProtocolError(result.code, result.detail ?? 'the bank refused the card');
  }
  const chargeId = result.chargeId;
  await deps.db.transaction().execute(async (trx) => {
    const settled = await trx
      .updateTable('top_ups')
      .set({ status: 'completed', charge_id: chargeId, updated_at: at })
      .where('id', '=', row.id)
      .where('status', '=', 'charging')
      .executeTakeFirst();
    // A concurrent twin under the same key completed it first: its entry stands, none is added.
    if (Number(settled.numUpdatedRows) !== 1) return;
    await postEntry(trx, topUpEntryOf(row.id, row.customer_id, Money.of(row.amount, deps.config.currency)), at);
    // Paired assertion: a top-up only ever raises the balance, which is never below 0.
    if ((await customerAccountBalance(trx, row.customer_id)) < row.amount) {
      throw new Error(`invariant: customer ${row.customer_id} balance below a top-up just credited`);
    }
  });
  return { topUpId: row.id, amount: row.amount };
}

function unavailable(error: unknown): never {
  if (error instanceof BankUnavailable) {
    throw new ProtocolError('bank_unavailable', 'the bank cannot be reached; retry with the same Idempotency-Key');
  }
  throw error;
}

async function settle(db: Queryable, id: string, status: string, chargeId: string | null, at: string): Promise<void> {
  await db
    .updateTable('top_ups')
    .set({ status, charge_id: chargeId, updated_at: at })
    .where('id', '=', id)
    .where('status', '=', 'charging')
    .execute();
}

async function findTopUp(db: Queryable, customerId: string, key: string): Promise<TopUpRow | undefined> {
  return db
    .selectFrom('top_ups')
    .selectAll()
    .where('customer_id', '=', customerId)
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
}

/** Records a new attempt; a twin that recorded the same key first is answered with its row. */
async function recordTopUp(db: Queryable, row: TopUpRow): Promise<TopUpRow> {
  try {
    await db.insertInto('top_ups').values(row).execute();
    return row;
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const twin = await findTopUp(db, row.customer_id, row.idempotency_key);
    if (!twin) throw error;
    return twin;
  }
}

function last4Of(number: string): string {
  return number.replace(/[^0-9]/g, '').slice(-4);
}
