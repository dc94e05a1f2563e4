import { ProtocolError } from '@netpay/protocol';
import { requestFingerprint, rfc3339 } from '@netpay/service-kit';
import type { BankDeps } from './deps.ts';
import { type Answer, answerOnce } from './idempotency.ts';
import { newObjectId } from './ids.ts';
import { refundPostings } from './postings.ts';
import type { RefundRequest } from './schemas.ts';
import { findChargeForUpdate, insertPostings, insertRefund, refundedAmount } from './store.ts';

/**
 * Refunds part or all of a succeeded charge, once per Idempotency-Key; the refunds of a charge never add up
 * to more than it. A refund may take the merchant's balance below zero, as at a real gateway: the card holder's
 * money is owed back whatever the merchant has already paid out.
 */
export async function createRefund(
  deps: BankDeps,
  merchantId: string,
  key: string,
  request: RefundRequest,
): Promise<Answer> {
  const now = deps.clock.now();
  const fingerprint = requestFingerprint({ operation: 'refund', chargeId: request.chargeId, amount: request.amount });
  return answerOnce(deps.db, { merchantId, key, fingerprint, at: now }, async (trx) => {
    // The charge's row lock serialises concurrent refunds of it, so the bound below holds.
    const charge = await findChargeForUpdate(trx, deps.engine, merchantId, request.chargeId);
    if (!charge) throw new ProtocolError('not_found', `no charge ${request.chargeId}`);
    if (charge.status !== 'succeeded') throw new ProtocolError('conflict', 'a declined charge cannot be refunded');
    const refundable = Number(charge.amount) - (await refundedAmount(trx, charge.id));
    if (request.amount > refundable) {
      throw new ProtocolError('conflict', `only ${refundable} of the charge is left to refund`, { refundable });
    }
    const id = newObjectId('re');
    const createdAt = rfc3339(now);
    await insertRefund(trx, {
      id,
      merchant_id: merchantId,
      charge_id: charge.id,
      amount: request.amount,
      currency: charge.currency,
      created_at: createdAt,
    });
    await insertPostings(trx, id, charge.currency, refundPostings(merchantId, request.amount));
    return { status: 201, body: { id, chargeId: charge.id, amount: request.amount, createdAt } };
  });
}
