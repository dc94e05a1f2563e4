import { ProtocolError } from '@netpay/protocol';
import type { Metrics } from '@netpay/service-kit';
import type { Answer } from './idempotency.ts';

/** The bank's money operations. */
export type MoneyKind = 'charge' | 'refund' | 'payout';

/** Counts the bank's charges, refunds and payouts by outcome, and the money they moved. */
export interface BankMetrics {
  /** An answer the bank sent: done (201), declined (402 with its code), or a stored answer replayed. */
  answered(kind: MoneyKind, answer: Answer): void;
  /** A request that failed before any answer was stored (bad input, a conflict, an injected fault). */
  failed(kind: MoneyKind, error: unknown): void;
  faultInjected(kind: MoneyKind): void;
}

/**
 * Registers the bank's business metrics on its registry.
 *
 * @example
 * const metrics = bankMetrics(app.metrics);
 * metrics.answered('charge', { status: 201, body: { amount: 200 } });
 */
export function bankMetrics(metrics: Metrics): BankMetrics {
  const operations = metrics.counter({
    name: 'netpay_bank_operations_total',
    help: 'Charges, refunds and payouts answered, by kind and outcome (succeeded, replayed, or the problem code)',
    labelNames: ['kind', 'outcome'],
  });
  const amount = metrics.counter({
    name: 'netpay_bank_amount_minor_total',
    help: 'Money moved by succeeded charges, refunds and payouts, by kind, in minor units (replays excluded)',
    labelNames: ['kind'],
  });
  return {
    answered: (kind, answer) => {
      if (answer.replayed) {
        operations.inc({ kind, outcome: 'replayed' });
        return;
      }
      if (answer.status >= 200 && answer.status < 300) {
        operations.inc({ kind, outcome: 'succeeded' });
        const moved = (answer.body as { amount?: unknown }).amount;
        if (typeof moved === 'number' && moved > 0) amount.inc({ kind }, moved);
        return;
      }
      const code = (answer.body as { code?: unknown }).code;
      operations.inc({ kind, outcome: typeof code === 'string' ? code : `http_${answer.status}` });
    },
    failed: (kind, error) => {
      operations.inc({ kind, outcome: error instanceof ProtocolError ? error.code : 'internal_error' });
    },
    faultInjected: (kind) => operations.inc({ kind, outcome: 'fault_injected' }),
  };
}
