import { createHash } from 'node:crypto';
import {
  b64uEncode,
  type BuyCoinRequest,
  type BuyCoinResponse,
  paywordAt,
  ProtocolError,
  randomBytes,
  signTouchstone,
} from '@netpay/protocol';
import { isUniqueViolation, requestFingerprint, rfc3339 } from '@netpay/service-kit';
import { BankUnavailable } from './bank-port.ts';
import type { BrokerDeps } from './deps.ts';
import { purchaseEntry } from './ledger.ts';
import { postEntry } from './ledger-store.ts';
import type { Queryable } from './schema.ts';
import { activeSigningKey } from './signing-keys.ts';
import { openPurchaseResponse, sealChainSeed, sealPurchaseResponse } from './store-secrets.ts';

/**
 * §7 buying a coin. The card is charged first, with a bank idempotency key derived from (customer, key); only
 * then, in one transaction, are the chain, its ledger entry and the idempotency record written. A decline or an
 * unreachable bank writes nothing; a retry with the same key after a timeout reuses the bank's charge (the
 * bank deduplicates by key), so one charge always makes at most one coin.
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

  const bankKey = `coin-${createHash('sha256').update(`${customerId}\n${idempotencyKey}`).digest('hex').slice(0, 48)}`;
  let charge: Awaited<ReturnType<typeof deps.bank.charge>>;
  try {
    charge = await deps.bank.charge(
      {
        amount: request.amount,
        currency: deps.config.currency,
        card: request.payment.card,
        description: 'NetPay e-coin',
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
    throw new ProtocolError(charge.code, charge.detail ?? 'the bank refused the card');
  }

  // Make the chain (or take the client's anchor) and the touchstone.
  let chainId: string;
  let anchor: string;
  let seed: string | null = null;
  if (request.chainId !== undefined && request.anchor !== undefined) {
    chainId = request.chainId;
    anchor = request.anchor;
  } else {
    const id = randomBytes(16);
    const seedBytes = randomBytes(32);
    chainId = b64uEncode(id);
    anchor = b64uEncode(paywordAt(id, seedBytes, length, 0));
    seed = b64uEncode(seedBytes);
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
          charge_id: charge.chargeId,
          amount: request.amount,
          current_epoch: 0,
          refund_index: null,
          refunded_units: 0,
          refunded_amount: 0,
          refunded_at: null,
          status: 'active',
        })
        .execute();
      await postEntry(trx, purchaseEntry(chainId, request.amount), issuedAt);
    });
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    // Either a concurrent twin with the same key won (answer what it answered), or the client's chainId was
    // taken between our check and the insert: give the money back and say so.
    const again = await storedPurchase(deps.db, customerId, idempotencyKey, fingerprint);
    if (again !== undefined) return again;
    try {
      await deps.bank.refund({ chargeId: charge.chargeId, amount: request.amount }, `void-${bankKey}`);
    } catch (refundError) {
      deps.logger.error(
        { err: refundError, chargeId: charge.chargeId },
        'could not void the charge of a chain that already exists',
      );
    }
    throw new ProtocolError('chain_exists', 'a chain with this chainId already exists');
  }
  return text;
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
