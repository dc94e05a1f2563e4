import { isNetPayAuthorization, parseAuthorization } from '@netpay/protocol';
import { NO_VENDOR_METRICS, type VendorMetricsHook } from '@netpay/service-kit';
import type { SpendStoreObserver } from '@netpay/vendor-sdk';
import type { FastifyInstance } from 'fastify';

// What the site reports of its payments, fed to the vendor metrics hook: the spend store's commits and fsyncs (its
// observer), and what the SDK leaves on each request (its refusals).

/**
 * The spend store's observer for the vendor metrics hook: each group commit timed with its size, each committed
 * payment counted as `paid` with its amount, and each WAL fsync timed by where it ran.
 *
 * @example
 * const store = await createSpendStore(url, { observer: spendStoreMetrics(vendorMetrics(metrics)) });
 */
export function spendStoreMetrics(hook: VendorMetricsHook): SpendStoreObserver {
  return {
    committed(writes, results, seconds) {
      hook.spendStoreCommit(writes.length, seconds);
      for (const [i, write] of writes.entries()) if (results[i] === 'ok') hook.payment('paid', write.amountMinor);
    },
    fsynced: (place, seconds) => hook.walFsync(place, seconds),
  };
}

/**
 * Counts the priced requests the SDK did not charge: `entitled` (already bought) or the code of the problem that
 * refused them; a payword refused as `too_far_ahead` also counts the hash steps it would have cost (its index less
 * the `lastIndex` the problem names).
 *
 * @example
 * meterRefusals(app, vendorMetrics(metrics)); // before the app is ready
 */
export function meterRefusals(app: FastifyInstance, hook: VendorMetricsHook): void {
  app.addHook('onSend', async (request, _reply, payload) => {
    if (request.netpayRefusal !== 'too_far_ahead' || typeof payload !== 'string') return payload;
    try {
      const lastIndex = (JSON.parse(payload) as { lastIndex?: unknown }).lastIndex;
      const authorization = request.headers.authorization;
      if (typeof lastIndex === 'number' && isNetPayAuthorization(authorization)) {
        hook.hashStepsRefused(parseAuthorization(authorization).index - lastIndex);
      }
    } catch {
      // Not the SDK's JSON problem (a page): the refusal is still counted below, its steps are not known.
    }
    return payload;
  });
  app.addHook('onResponse', async (request) => {
    if (request.netpayRefusal) hook.payment(request.netpayRefusal, 0);
    else if (request.netpay && !request.netpay.charged) hook.payment('entitled', 0);
  });
}

/**
 * A hook that forwards to another once it is connected, and records nothing before. The site's registry comes with
 * its app, which needs the vendor, which needs the (metered) spend store: the store gets this and it is connected
 * to the app's registry right after.
 *
 * @example
 * const hook = laterVendorMetrics();
 * const store = await createSpendStore(url, { observer: spendStoreMetrics(hook) });
 * // … build the app …
 * hook.connect(vendorMetrics(app.metrics));
 */
export function laterVendorMetrics(): VendorMetricsHook & { connect(target: VendorMetricsHook): void } {
  let target: VendorMetricsHook = NO_VENDOR_METRICS;
  return {
    connect: (t) => {
      target = t;
    },
    payment: (outcome, amountMinor) => target.payment(outcome, amountMinor),
    hashStepsRefused: (steps) => target.hashStepsRefused(steps),
    spendStoreCommit: (payments, seconds) => target.spendStoreCommit(payments, seconds),
    walFsync: (place, seconds) => target.walFsync(place, seconds),
  };
}
