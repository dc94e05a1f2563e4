import { ProtocolError } from '@netpay/protocol';
import { isUniqueViolation, rfc3339 } from '@netpay/service-kit';
import {
  type BankDb,
  completeIdempotencyKey,
  findIdempotencyKey,
  type IdempotencyKeyTable,
  insertIdempotencyKey,
} from './store.ts';

/** The answer to a money request exactly as sent, so a retry can be sent the same bytes. */
export interface Answer {
  status: number;
  body: unknown;
  /** True when this is a stored answer sent again for a repeated key (nothing happened this time). */
  replayed?: boolean;
}

export interface IdempotentRequest {
  merchantId: string;
  key: string;
  /** `requestFingerprint` of what makes two requests "the same". */
  fingerprint: string;
  at: Date;
}

/**
 * Runs `work` at most once per (merchant, key) and returns its stored answer to every repeat.
 *
 * The key row is inserted first, inside the same transaction as the work, so a concurrent request with the
 * same key blocks on the primary key (PostgreSQL) or waits for the connection (SQLite), then fails with a
 * unique violation and re-reads the committed answer. A `ProtocolError` thrown by `work` (invalid card, unknown
 * charge, balance too low) rolls everything back, key included: nothing happened, so a retry is free to try
 * again. Answers that `work` returns, declines included, are stored.
 */
export async function answerOnce(
  db: BankDb,
  request: IdempotentRequest,
  work: (trx: BankDb) => Promise<Answer>,
): Promise<Answer> {
  const stored = await findIdempotencyKey(db, request.merchantId, request.key);
  if (stored) return replay(stored, request);
  try {
    return await db.transaction().execute(async (trx) => {
      await insertIdempotencyKey(trx, {
        merchant_id: request.merchantId,
        idempotency_key: request.key,
        fingerprint: request.fingerprint,
        status_code: 0,
        response_body: '',
        created_at: rfc3339(request.at),
      });
      const answer = await work(trx);
      await completeIdempotencyKey(trx, request.merchantId, request.key, answer.status, JSON.stringify(answer.body));
      return answer;
    });
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const winner = await findIdempotencyKey(db, request.merchantId, request.key);
    // A unique violation from another constraint would leave no row: that is a bug, not a race.
    if (!winner) throw error;
    return replay(winner, request);
  }
}

function replay(stored: IdempotencyKeyTable, request: IdempotentRequest): Answer {
  if (stored.fingerprint !== request.fingerprint) {
    throw new ProtocolError('idempotency_conflict', 'this Idempotency-Key was used with another request');
  }
  return { status: stored.status_code, body: JSON.parse(stored.response_body), replayed: true };
}
