import { LATENCY_BUCKETS_SECONDS, type Metrics } from './metrics.ts';

/**
 * What a vendor reports about its payments, for Prometheus. The vendor SDK (or the site around it) calls these
 * where the events happen; they only count, never block, and a vendor without metrics passes `NO_VENDOR_METRICS`.
 */
export interface VendorMetricsHook {
  /**
   * A priced request's outcome: `paid` (amount charged), `entitled` (already bought, nothing charged) or the code of
   * the problem that refused it (`payment_required`, `too_far_ahead`, …, amount 0).
   */
  payment(outcome: string, amountMinor: number): void;
  /** A payword refused before hashing because it lay `steps` hashes beyond what the vendor knows. */
  hashStepsRefused(steps: number): void;
  /** One spend-store commit: how many payments it made durable, and how long it took. */
  spendStoreCommit(payments: number, seconds: number): void;
  /** One fsync of the spend store's SQLite WAL: where it ran (`loop` or `threadpool`) and how long it took. */
  walFsync(place: string, seconds: number): void;
}

/** A hook that records nothing. */
export const NO_VENDOR_METRICS: VendorMetricsHook = {
  payment: () => {},
  hashStepsRefused: () => {},
  spendStoreCommit: () => {},
  walFsync: () => {},
};

/**
 * Registers the vendor's business metrics on a service's registry and returns the hook that moves them.
 *
 * @example
 * const hook = vendorMetrics(app.metrics);
 * hook.payment('paid', 10);
 */
export function vendorMetrics(metrics: Metrics): VendorMetricsHook {
  const payments = metrics.counter({
    name: 'netpay_vendor_payments_total',
    help: 'Priced requests by outcome: paid, entitled, or the problem code that refused them',
    labelNames: ['outcome'],
  });
  const amount = metrics.counter({
    name: 'netpay_vendor_payment_amount_minor_total',
    help: 'Amount charged, in minor units of the vendor currency, by outcome',
    labelNames: ['outcome'],
  });
  const refusals = metrics.counter({
    name: 'netpay_vendor_hash_step_refusals_total',
    help: 'Paywords refused before hashing for lying too far ahead',
  });
  const steps = metrics.counter({
    name: 'netpay_vendor_hash_steps_refused_total',
    help: 'Hash steps the refused paywords would have cost',
  });
  const commitSize = metrics.histogram({
    name: 'netpay_vendor_spend_store_commit_payments',
    help: 'Payments made durable by one spend-store commit',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
  });
  const commitSeconds = metrics.histogram({
    name: 'netpay_vendor_spend_store_commit_duration_seconds',
    help: 'Time one spend-store commit took',
    buckets: LATENCY_BUCKETS_SECONDS,
  });
  const fsyncSeconds = metrics.histogram({
    name: 'netpay_vendor_wal_fsync_duration_seconds',
    help: "Time one fsync of the spend store's SQLite WAL took, by where it ran (the event loop while the disk is fast, else the threadpool)",
    labelNames: ['place'],
    buckets: LATENCY_BUCKETS_SECONDS,
  });
  return {
    payment: (outcome, amountMinor) => {
      payments.inc({ outcome });
      // Refusals move no money; keeping their series at 0 would only add noise.
      if (amountMinor > 0) amount.inc({ outcome }, amountMinor);
    },
    hashStepsRefused: (n) => {
      refusals.inc();
      if (n > 0) steps.inc(n);
    },
    spendStoreCommit: (n, seconds) => {
      commitSize.observe(n);
      commitSeconds.observe(seconds);
    },
    walFsync: (place, seconds) => fsyncSeconds.observe({ place }, seconds),
  };
}
