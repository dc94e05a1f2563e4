import { rfc3339 } from '@netpay/service-kit';
import { BankUnavailable, type ChargeResult } from './bank-port.ts';
import { CHARGE_DESCRIPTION, issueCoin, refundPurchaseCharge } from './coin-purchase.ts';
import type { BrokerDeps } from './deps.ts';
import { probeCard, probeFromCharge, type StoredPurchaseAttempt, settlementOf } from './purchase-attempt.ts';
import { openAttempts, settleAttempt } from './purchase-attempt-store.ts';

export interface ReconcileOptions {
  /**
   * Attempts last sent less than this long ago are left alone: their charge may still be on its way to the
   * bank, and an answer of "nothing here" would then be wrong. Keep it above the bank timeout.
   */
  graceMs: number;
  /** At most this many attempts per run (oldest first); the next run takes the rest. */
  limit?: number;
}

/** What one run did, attempt by attempt. */
export interface ReconcileReport {
  /** Open attempts past their grace period that this run looked at. */
  examined: number;
  /** Charged without a coin: the coin was made, exactly as a same-key retry would have made it. */
  completed: number;
  /** Charged, but no coin could be made (the client's chainId was taken): the charge went back to the card. */
  refunded: number;
  /** The bank had declined the card. */
  declined: number;
  /** The bank held no charge under the key: nothing was taken. */
  abandoned: number;
  /** Settled meanwhile by the customer's own retry or another reconciler: nothing left to do. */
  alreadySettled: number;
  /** Left open for the next run: the bank could not be reached, or did not confirm a refund. */
  deferred: number;
  /** Left open because they need a person (the bank's record does not match the attempt); logged as errors. */
  held: number;
}

type Outcome = Exclude<keyof ReconcileReport, 'examined'>;

export const DEFAULT_RECONCILE_GRACE_MS = 60_000;
export const DEFAULT_RECONCILE_LIMIT = 100;

/**
 * Finds coin purchases whose card may have been charged without a coin being made (the broker stopped between
 * the bank's answer and its own commit, or the customer gave up after a timeout) and settles each one: asks the
 * bank what it holds under the purchase's own idempotency key (a repeat charge that cannot charge anything new),
 * then makes the coin, refunds the charge when the coin cannot be made, or closes the attempt when nothing was
 * charged. Safe to run on several hosts at once and while customers retry: the coin, the refund and each status
 * change are each written once whoever gets there first.
 *
 * @example
 * const report = await reconcilePurchases(deps, { graceMs: 60_000 });
 * // { examined: 1, completed: 1, refunded: 0, … }
 */
export async function reconcilePurchases(deps: BrokerDeps, options: ReconcileOptions): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    examined: 0,
    completed: 0,
    refunded: 0,
    declined: 0,
    abandoned: 0,
    alreadySettled: 0,
    deferred: 0,
    held: 0,
  };
  const before = rfc3339(new Date(deps.clock.now().getTime() - options.graceMs));
  const attempts = await openAttempts(deps.db, before, options.limit ?? DEFAULT_RECONCILE_LIMIT);
  for (const attempt of attempts) {
    report.examined += 1;
    let outcome: Outcome;
    try {
      outcome = await settle(deps, attempt);
    } catch (error) {
      deps.logger.error(
        { err: error, customerId: attempt.customerId, idempotencyKey: attempt.idempotencyKey },
        'could not reconcile a coin purchase',
      );
      outcome = 'deferred';
    }
    report[outcome] += 1;
  }
  if (report.examined > 0) deps.logger.info({ report }, 'reconciled coin purchases');
  return report;
}

async function settle(deps: BrokerDeps, attempt: StoredPurchaseAttempt): Promise<Outcome> {
  const where = { customerId: attempt.customerId, idempotencyKey: attempt.idempotencyKey };
  let answer: ChargeResult;
  try {
    answer = await deps.bank.charge(
      {
        amount: attempt.amount,
        currency: attempt.currency,
        card: probeCard(attempt.cardLast4, attempt.cardExpiry),
        description: CHARGE_DESCRIPTION,
      },
      attempt.bankKey,
    );
  } catch (error) {
    if (!(error instanceof BankUnavailable)) throw error;
    deps.logger.warn({ err: error, ...where }, 'bank unavailable while reconciling a coin purchase');
    return 'deferred';
  }
  const settlement = settlementOf(attempt, probeFromCharge(answer));
  const now = rfc3339(deps.clock.now());
  switch (settlement.action) {
    case 'hold':
      deps.logger.error({ ...where, reason: settlement.reason }, 'a coin purchase needs an operator');
      // To the back of the queue, so that held attempts never crowd the others out of a run's limit.
      await settleAttempt(deps.db, where, ['charging'], 'charging', now, undefined, attempt.updatedAt);
      return 'held';
    case 'close': {
      // Only if nobody sent the charge again meanwhile: that retry may still charge the card.
      const closed = await settleAttempt(
        deps.db,
        where,
        ['charging'],
        settlement.status,
        now,
        undefined,
        attempt.updatedAt,
      );
      return closed ? settlement.status : 'alreadySettled';
    }
    case 'issue': {
      const issued = await issueCoin(deps, attempt, settlement.chargeId);
      if (issued.kind === 'issued') {
        if (issued.byTwin) return 'alreadySettled';
        deps.logger.info({ ...where, chargeId: settlement.chargeId }, 'made the coin of a charged purchase');
        return 'completed';
      }
      const refunded = await refundPurchaseCharge(deps, attempt, settlement.chargeId);
      if (refunded) {
        deps.logger.info({ ...where, chargeId: settlement.chargeId }, 'refunded a charge whose coin cannot be made');
      }
      return refunded ? 'refunded' : 'deferred';
    }
  }
}

export interface ReconcileJobOptions extends ReconcileOptions {
  /** Time between the end of one run and the start of the next. */
  intervalMs: number;
}

/**
 * Runs `reconcilePurchases` every `intervalMs`, one run at a time, until `stop()`, which waits for a run in
 * progress. A failed run is logged and the job carries on.
 */
export function startReconcileJob(deps: BrokerDeps, options: ReconcileJobOptions): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = reconcilePurchases(deps, options).then(
        () => undefined,
        (error: unknown) => deps.logger.error({ err: error }, 'the reconcile run failed'),
      );
      void running.then(schedule);
    }, options.intervalMs);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
