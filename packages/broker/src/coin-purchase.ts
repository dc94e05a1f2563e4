import { createHash } from 'node:crypto';
import {
  b64uEncode,
  type BuyCoinRequest,
  type BuyCoinResponse,
  Money,
  ProtocolError,
  randomBytes,
  signTouchstone,
} from '@netpay/protocol';
import { isUniqueViolation, requestFingerprint, rfc3339 } from '@netpay/service-kit';
import { BankUnavailable } from './bank-port.ts';
import type { BrokerDeps } from './deps.ts';
import { type PurchaseAttempt, repeatOf } from './purchase-attempt.ts';
import { forgetAttempt, recordAttempt, reopenAttempt, settleAttempt } from './purchase-attempt-store.ts';
import { purchaseEntryOf } from './ledger.ts';
import { postEntry } from './ledger-store.ts';
import type { Queryable } from './schema.ts';
import { activeSigningKey } from './signing-keys.ts';
import { openPurchaseResponse, sealChainSeed, sealPurchaseResponse } from './store-secrets.ts';

/** What the charge says on the card holder's statement; part of what the bank matches a repeat on. */
export const CHARGE_DESCRIPTION = 'NetPay e-coin';

/**
 * §7 buying a coin. A purchase attempt is committed first, then the card is charged with a bank idempotency key
 * derived from (customer, key); only then, in one transaction, are the chain, its ledger entry, the idempotency
 * record and the attempt's completion written. A decline or an unreachable bank makes no coin; a retry with the
 * same key after a timeout reuses the bank's charge (the bank deduplicates by key), so one charge always makes at
 * most one coin. A charge whose coin was never committed (the broker died, or the customer gave up after a
 * timeout) leaves its attempt open, and the reconciler (`reconcile.ts`) settles it.
 *
 * @returns the 201 response JSON text, byte-identical on retries
 */
export async function buyCoin(
  deps: BrokerDeps,
  customerId: string,
  idempotencyKey: string,
  request: BuyCoinRequest,
): Promise<string> {
  // Like the bank, keep neither the card number nor the cvc in the fingerprint, not even hashed (a card number
  // is guessable from its hash): the same request is the same everything else plus the card's last four digits.
  const { payment, ...rest } = request;
  const fingerprint = requestFingerprint({
    ...rest,
    cardLast4: payment.card.number.replace(/[^0-9]/g, '').slice(-4),
    expiry: payment.card.expiry,
  });
  const stored = await storedPurchase(deps.db, customerId, idempotencyKey, fingerprint);
  if (stored !== undefined) return stored;

  const unit = request.unit ?? 1;
  if (request.amount % unit !== 0) {
    throw new ProtocolError('bad_request', `amount ${request.amount} is not a multiple of unit ${unit}`);
  }
  const length = request.amount / unit;
  if (length > deps.config.maxChainLength) {
    throw new ProtocolError(
      'bad_request',
      `chain length ${length} is above the broker's maximum ${deps.config.maxChainLength}`,
    );
  }
  if ((request.chainId === undefined) !== (request.anchor === undefined)) {
    throw new ProtocolError('bad_request', 'chainId and anchor come both or neither');
  }
  if (request.chainId !== undefined && (await chainExists(deps.db, request.chainId))) {
    throw new ProtocolError('chain_exists', 'a chain with this chainId already exists');
  }

  const bankKey = purchaseBankKey(customerId, idempotencyKey);
  const attempt: PurchaseAttempt = {
    customerId,
    idempotencyKey,
    fingerprint,
    bankKey,
    amount: request.amount,
    unit,
    currency: deps.config.currency,
    ...(request.chainId !== undefined && request.anchor !== undefined
      ? { chainId: request.chainId, anchor: request.anchor }
      : {}),
    cardLast4: payment.card.number.replace(/[^0-9]/g, '').slice(-4),
    cardExpiry: payment.card.expiry,
  };
  // Committed before the bank is asked, so a charge whose coin never gets written is still found.
  const attemptedAt = rfc3339(deps.clock.now());
  const { stored: existing, fresh } = await recordAttempt(deps.db, attempt, attemptedAt);
  const repeat = repeatOf(existing, fingerprint);
  if (repeat === 'conflict') {
    throw new ProtocolError('idempotency_conflict', 'this Idempotency-Key was used with another request body');
  }
  if (repeat === 'refunded') {
    throw new ProtocolError('chain_exists', 'a chain with this chainId already exists; the charge was refunded');
  }
  if (!fresh) {
    await reopenAttempt(deps.db, customerId, idempotencyKey, attemptedAt);
  }

  let charge: Awaited<ReturnType<typeof deps.bank.charge>>;
  try {
    charge = await deps.bank.charge(
      {
        amount: request.amount,
        currency: deps.config.currency,
        card: request.payment.card,
        description: CHARGE_DESCRIPTION,
      },
      bankKey,
    );
  } catch (error) {
    if (error instanceof BankUnavailable) {
      deps.logger.warn({ err: error }, 'bank unavailable during a coin purchase');
      throw new ProtocolError('bank_unavailable', 'the bank cannot be reached; retry with the same Idempotency-Key');
    }
    throw error;
  }
  if (!charge.ok) {
    if (charge.code === 'idempotency_conflict') {
      throw new ProtocolError('idempotency_conflict', 'this Idempotency-Key was used with other card details');
    }
    const at = rfc3339(deps.clock.now());
    // An invalid card is refused before the bank records anything, so the key is free again there and here.
    if (charge.code === 'invalid_card') await forgetAttempt(deps.db, customerId, idempotencyKey);
    else await settleAttempt(deps.db, attempt, ['charging', 'abandoned'], 'declined', at);
    throw new ProtocolError(charge.code, charge.detail ?? 'the bank refused the card');
  }

  const issued = await issueCoin(deps, attempt, charge.chargeId);
  if (issued.kind === 'issued') return issued.response;
  // The client's chainId was taken between our check and the insert: give the money back and say so. A refund
  // the bank does not confirm leaves the attempt open, and the reconciler gives it back later.
  await refundPurchaseCharge(deps, attempt, charge.chargeId);
  throw new ProtocolError('chain_exists', 'a chain with this chainId already exists');
}

/** The Idempotency-Key of a purchase's charge at the bank: one per (customer, purchase key). */
export function purchaseBankKey(customerId: string, idempotencyKey: string): string {
  return `coin-${createHash('sha256').update(`${customerId}\n${idempotencyKey}`).digest('hex').slice(0, 48)}`;
}

/** The coin was written (by this call, or by a twin under the same key first), or the client's chainId is taken. */
export type IssueOutcome = { kind: 'issued'; response: string; byTwin: boolean } | { kind: 'chain_taken' };

/**
 * Makes the coin of a charged purchase: the chain (a fresh one when the broker makes it), the touchstone, the
 * ledger entry, the idempotency record and the attempt's completion, in one transaction. Used by the purchase
 * itself and by the reconciler, so a reconciled coin is exactly the coin a same-key retry would have made, and
 * whichever commits first wins while the other is answered with what it committed.
 */
export async function issueCoin(deps: BrokerDeps, attempt: PurchaseAttempt, chargeId: string): Promise<IssueOutcome> {
  const { customerId, idempotencyKey, fingerprint, unit } = attempt;
  const length = attempt.amount / unit;
  // Make the chain (or take the client's anchor) and the touchstone.
  let chainId: string;
  let anchor: string;
  let seed: string | null = null;
  if (attempt.chainId !== undefined && attempt.anchor !== undefined) {
    chainId = attempt.chainId;
    anchor = attempt.anchor;
  } else {
    chainId = b64uEncode(randomBytes(16));
    seed = b64uEncode(randomBytes(32));
    // Up to maxChainLength SHA-256 steps: in the hash pool when long, before any transaction is open.
    const [made] = await deps.hasher.run([{ kind: 'payword', chainId, seed, length, index: 0 }]);
    if (typeof made !== 'string') throw new Error('the hash pool made no anchor');
    anchor = made;
  }
  const now = deps.clock.now();
  const issuedAt = rfc3339(now);
  const expiresAt = rfc3339(new Date(Date.parse(issuedAt) + deps.config.coinTtlDays * 86_400_000));
  const key = await activeSigningKey(deps.db);
  const touchstone = signTouchstone(
    {
      chainId,
      anchor,
      length,
      unit,
      currency: deps.config.currency,
      broker: deps.config.publicUrl,
      keyId: key.keyId,
      issuedAt,
      expiresAt,
    },
    key.privateSeed,
  );
  const response: BuyCoinResponse = seed === null ? { chainId, touchstone } : { chainId, touchstone, seed };
  const text = JSON.stringify(response);

  try {
    await deps.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('coin_purchases')
        .values({
          customer_id: customerId,
          idempotency_key: idempotencyKey,
          fingerprint,
          chain_id: chainId,
          response: sealPurchaseResponse(text),
          created_at: issuedAt,
        })
        .execute();
      await trx
        .insertInto('chains')
        .values({
          chain_id: chainId,
          customer_id: customerId,
          anchor,
          seed: sealChainSeed(chainId, seed),
          length,
          unit,
          currency: deps.config.currency,
          issued_at: issuedAt,
          expires_at: expiresAt,
          touchstone: JSON.stringify(touchstone),
          charge_id: chargeId,
          amount: attempt.amount,
          current_epoch: 0,
          refund_index: null,
          refunded_units: 0,
          refunded_amount: 0,
          refunded_at: null,
          status: 'active',
        })
        .execute();
      await postEntry(trx, purchaseEntryOf(chainId, Money.of(attempt.amount, deps.config.currency)), issuedAt);
      await settleAttempt(trx, attempt, ['charging', 'abandoned'], 'completed', issuedAt, chargeId);
    });
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    // Either a concurrent twin with the same key won (answer what it answered), or the client's chainId was
    // taken between our check and the insert.
    const again = await storedPurchase(deps.db, customerId, idempotencyKey, fingerprint);
    if (again !== undefined) return { kind: 'issued', response: again, byTwin: true };
    return { kind: 'chain_taken' };
  }
  return { kind: 'issued', response: text, byTwin: false };
}

/**
 * Gives back the charge of a purchase that cannot have its coin, under a key derived from the purchase's, so
 * the purchase and any number of reconcilers refund it once between them; then closes the attempt as refunded.
 * False when the bank did not confirm: the attempt stays open for the reconciler to try again.
 */
export async function refundPurchaseCharge(
  deps: BrokerDeps,
  attempt: PurchaseAttempt,
  chargeId: string,
): Promise<boolean> {
  try {
    const refund = await deps.bank.refund({ chargeId, amount: attempt.amount }, `void-${attempt.bankKey}`);
    if (!refund.ok) {
      deps.logger.error({ chargeId, code: refund.code, detail: refund.detail }, 'the bank refused to void a charge');
      return false;
    }
  } catch (refundError) {
    deps.logger.error({ err: refundError, chargeId }, 'could not void the charge of a chain that already exists');
    return false;
  }
  await settleAttempt(deps.db, attempt, ['charging', 'abandoned'], 'refunded', rfc3339(deps.clock.now()), chargeId);
  return true;
}

async function chainExists(db: Queryable, chainId: string): Promise<boolean> {
  return Boolean(await db.selectFrom('chains').select('chain_id').where('chain_id', '=', chainId).executeTakeFirst());
}

async function storedPurchase(
  db: Queryable,
  customerId: string,
  idempotencyKey: string,
  fingerprint: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('coin_purchases')
    .select(['fingerprint', 'response'])
    .where('customer_id', '=', customerId)
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst();
  if (!row) return undefined;
  if (row.fingerprint !== fingerprint) {
    throw new ProtocolError('idempotency_conflict', 'this Idempotency-Key was used with another request body');
  }
  return openPurchaseResponse(row.response);
}
