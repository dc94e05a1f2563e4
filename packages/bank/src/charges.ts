import { ProtocolError, problemDetails } from '@netpay/protocol';
import { hashToken, requestFingerprint, rfc3339 } from '@netpay/service-kit';
import { checkCard, last4Of } from './card.ts';
import type { BankDeps } from './deps.ts';
import { type Answer, answerOnce } from './idempotency.ts';
import { newObjectId } from './ids.ts';
import { chargePostings } from './postings.ts';
import { checkSavedCard } from './saved-cards.ts';
import type { ChargeRequest } from './schemas.ts';
import { insertCharge, insertPostings } from './store.ts';

/**
 * Charges a card (its details, or a saved card's token) once per Idempotency-Key. Succeeds with 201, declines with a stored 402 problem (so a retry
 * gets the same decline), and rejects bad card details with 400 `invalid_card` without recording anything.
 */
export async function createCharge(
  deps: BankDeps,
  merchantId: string,
  key: string,
  request: ChargeRequest,
): Promise<Answer> {
  const now = deps.clock.now();
  const { card: details, cardToken } = request;
  if ((details === undefined) === (cardToken === undefined)) {
    throw new ProtocolError('invalid_card', 'send either card or cardToken', { field: 'card' });
  }
  // The fingerprint must not hold the card number or cvc, not even hashed (a card number is guessable from
  // its hash), so two requests are "the same" when they agree on everything else and on the last four digits.
  // A token is random, so its hash identifies the saved card without revealing anything.
  const fingerprint = requestFingerprint({
    operation: 'charge',
    amount: request.amount,
    currency: request.currency,
    description: request.description,
    ...(details
      ? { cardLast4: last4Of(details.number), expiry: details.expiry }
      : { cardToken: hashToken(cardToken as string) }),
  });
  return answerOnce(deps.db, { merchantId, key, fingerprint, at: now }, async (trx) => {
    const card = details ? checkCard(details, now) : await checkSavedCard(trx, merchantId, cardToken as string, now);
    if (!card.ok) {
      const field = card.field === 'cardToken' ? 'cardToken' : `card.${card.field}`;
      throw new ProtocolError('invalid_card', `${field}: ${card.reason}`, { field });
    }
    const id = newObjectId('ch');
    const createdAt = rfc3339(now);
    const succeeded = card.outcome === 'succeeded';
    await insertCharge(trx, {
      id,
      merchant_id: merchantId,
      status: succeeded ? 'succeeded' : 'declined',
      decline_code: succeeded ? null : card.outcome,
      amount: request.amount,
      currency: request.currency,
      card_last4: card.last4,
      description: request.description ?? null,
      created_at: createdAt,
    });
    if (card.outcome !== 'succeeded') {
      const detail = card.outcome === 'card_declined' ? 'the card was declined' : 'the card has insufficient funds';
      return { status: 402, body: problemDetails(card.outcome, detail, { chargeId: id }) };
    }
    await insertPostings(trx, id, request.currency, chargePostings(merchantId, request.amount));
    return {
      status: 201,
      body: {
        id,
        status: 'succeeded',
        amount: request.amount,
        currency: request.currency,
        cardLast4: card.last4,
        createdAt,
      },
    };
  });
}
