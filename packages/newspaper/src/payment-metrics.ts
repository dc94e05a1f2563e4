import { isNetPayAuthorization, parseAuthorization } from '@netpay/protocol';
import { NO_VENDOR_METRICS, type VendorMetricsHook } from '@netpay/service-kit';
import type { SpendStore } from '@netpay/vendor-sdk';
import type { FastifyInstance } from 'fastify';

// What the site can see of its payments from outside the vendor SDK, fed to the vendor metrics hook: until the SDK
// reports its own events, the spend store's payment commits and what the SDK leaves on each request are enough.

/**
 * The spend store, with every payment commit timed and every committed payment counted as `paid` with its amount.
 * The store's own methods run unchanged.
 *
 * @example
 * const store = meteredSpendStore(await createSpendStore(url), vendorMetrics(metrics));
 */
export function meteredSpendStore(store: SpendStore, hook: VendorMetricsHook): SpendStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'recordPayment') {
        return async (write: Parameters<SpendStore['recordPayment']>[0]) => {
          const started = performance.now();
          const result = await target.recordPayment(write);
          hook.spendStoreCommit(1, (performance.now() - started) / 1000);
          if (result === 'ok') hook.payment('paid', write.amountMinor);
          return result;
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
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
 * const store = meteredSpendStore(raw, hook);
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
  };
}
