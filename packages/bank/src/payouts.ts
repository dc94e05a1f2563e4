import { ProtocolError } from '@netpay/protocol';
import { requestFingerprint, rfc3339 } from '@netpay/service-kit';
import type { BankDeps } from './deps.ts';
import { type Answer, answerOnce } from './idempotency.ts';
import { newObjectId } from './ids.ts';
import { payoutPostings } from './postings.ts';
import type { PayoutRequest } from './schemas.ts';
import { insertPayout, insertPostings, lockMerchant, merchantBalance } from './store.ts';

/**
 * Pays money from the merchant's available balance to a destination account, once per Idempotency-Key.
 * A balance too low is 409 `insufficient_funds` and is not stored, so the same key may succeed later.
 */
export async function createPayout(
  deps: BankDeps,
  merchantId: string,
  key: string,
  request: PayoutRequest,
): Promise<Answer> {
  const now = deps.clock.now();
  const fingerprint = requestFingerprint({
    operation: 'payout',
    amount: request.amount,
    currency: request.currency,
    destination: request.destination,
  });
  return answerOnce(deps.db, { merchantId, key, fingerprint, at: now }, async (trx) => {
    // Serialise balance checks per merchant, or two payouts could both spend the same money.
    await lockMerchant(trx, deps.engine, merchantId);
    const available = await merchantBalance(trx, merchantId, request.currency);
    if (available < request.amount) {
      throw new ProtocolError(
        'insufficient_funds',
        `available balance ${available} does not cover ${request.amount}`,
        { available },
        409,
      );
    }
    const id = newObjectId('po');
    const createdAt = rfc3339(now);
    await insertPayout(trx, {
      id,
      merchant_id: merchantId,
      amount: request.amount,
      currency: request.currency,
      destination: request.destination,
      created_at: createdAt,
    });
    await insertPostings(trx, id, request.currency, payoutPostings(merchantId, request.destination, request.amount));
    return {
      status: 201,
      body: {
        id,
        status: 'paid',
        amount: request.amount,
        currency: request.currency,
        destination: request.destination,
        createdAt,
      },
    };
  });
}
