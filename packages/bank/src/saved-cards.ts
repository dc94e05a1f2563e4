import { ProtocolError, problemDetails } from '@netpay/protocol';
import { hashToken, newSecret, rfc3339 } from '@netpay/service-kit';
import { type CardDetails, type CardOutcome, checkCard, expiryCheck } from './card.ts';
import type { BankDeps } from './deps.ts';
import type { Answer } from './idempotency.ts';
import { type BankDb, findSavedCard, insertSavedCard } from './store.ts';

const TOKEN_PREFIX = 'ct_';
const TOKEN_RE = /^ct_[A-Za-z0-9_-]{43}$/;

/**
 * `POST /v1/cards`: saves a card for the merchant and answers its token once (201 `{cardToken, last4, expiry}`).
 * Like a gateway's zero-amount verification, a card the network declines is not saved (402 `card_declined`); a
 * card without funds is, and its charges answer `insufficient_funds`. The bank keeps the token's hash, the last
 * four digits and the expiry: a leaked store charges nothing.
 */
export async function saveCard(deps: BankDeps, merchantId: string, card: CardDetails): Promise<Answer> {
  const now = deps.clock.now();
  const checked = checkCard(card, now);
  if (!checked.ok) {
    throw new ProtocolError('invalid_card', `card.${checked.field}: ${checked.reason}`, {
      field: `card.${checked.field}`,
    });
  }
  if (checked.outcome === 'card_declined') {
    return { status: 402, body: problemDetails('card_declined', 'the card was declined; it was not saved') };
  }
  const cardToken = newSecret(TOKEN_PREFIX);
  await insertSavedCard(deps.db, {
    token_hash: hashToken(cardToken),
    merchant_id: merchantId,
    card_last4: checked.last4,
    card_expiry: card.expiry,
    outcome: checked.outcome,
    created_at: rfc3339(now),
  });
  return { status: 201, body: { cardToken, last4: checked.last4, expiry: card.expiry } };
}

/** What a charge by token learns about the card: the digits it may show and the network's answer. */
export type SavedCardCheck =
  | { ok: true; last4: string; outcome: CardOutcome }
  | { ok: false; field: 'cardToken' | 'expiry'; reason: string };

/** The saved card behind a token of this merchant, checked against the bank's clock like typed details. */
export async function checkSavedCard(
  db: BankDb,
  merchantId: string,
  cardToken: string,
  now: Date,
): Promise<SavedCardCheck> {
  if (!TOKEN_RE.test(cardToken)) return { ok: false, field: 'cardToken', reason: 'is not a card token' };
  const saved = await findSavedCard(db, merchantId, hashToken(cardToken));
  if (!saved) return { ok: false, field: 'cardToken', reason: 'no card is saved under this token' };
  const expired = expiryCheck(saved.card_expiry, now);
  if (expired) return { ok: false, field: 'expiry', reason: expired };
  return { ok: true, last4: saved.card_last4, outcome: saved.outcome as CardOutcome };
}
