import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds buckets for request and commit latencies: 1 ms to 10 s. */
export const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const REDUNDANT_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  /** Called on every scrape before the value is read (a value kept elsewhere, e.g. in the database). */
  collect?: (this: void) => void | Promise<void>;
}

/**
 * One service's Prometheus registry (prom-client): Node's process metrics, the HTTP histogram the service edge
 * fills, and whatever business counters the service registers. Every series carries a `service` label. It is
 * served on the admin listener (`listenAdmin`), never on the public port.
 *
 * @example
 * const metrics = new Metrics('bank');
 * const charges = metrics.counter({ name: 'netpay_bank_charges_total', help: 'Charges', labelNames: ['outcome'] });
 * charges.inc({ outcome: 'succeeded' });
 * await metrics.render(); // the text exposition format, with # HELP and # TYPE
 */
export class Metrics {
  readonly registry = new Registry();
  readonly service: string;
  /** `netpay_http_request_duration_seconds{method,route,status}`: every answered request, timed. */
  readonly httpRequestDuration: Histogram<'method' | 'route' | 'status'>;
  #processMetrics = false;

  constructor(service: string) {
    this.service = service;
    this.registry.setDefaultLabels({ service });
    this.httpRequestDuration = this.histogram({
      name: 'netpay_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by route template and status code',
      labelNames: ['method', 'route', 'status'],
      buckets: LATENCY_BUCKETS_SECONDS,
    });
  }

  counter<L extends string>(options: MetricOptions<L>): Counter<L> {
    const { collect, ...rest } = options;
    return new Counter<L>({ ...rest, registers: [this.registry], ...(collect ? { collect } : {}) });
  }

  gauge<L extends string>(options: MetricOptions<L>): Gauge<L> {
    const { collect, ...rest } = options;
    return new Gauge<L>({ ...rest, registers: [this.registry], ...(collect ? { collect } : {}) });
  }

  histogram<L extends string>(options: MetricOptions<L> & { buckets: number[] }): Histogram<L> {
    const { collect, ...rest } = options;
    return new Histogram<L>({ ...rest, registers: [this.registry], ...(collect ? { collect } : {}) });
  }

  /** The content type of `render()`'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The text exposition format. Process metrics (CPU, memory, event loop, GC) are registered on the first scrape:
   * their event-loop monitor samples continuously, and a test process builds dozens of apps nobody scrapes.
   */
  async render(): Promise<string> {
    if (!this.#processMetrics) {
      this.#processMetrics = true;
      collectDefaultMetrics({ register: this.registry });
      // Gauges that prom-client names like counters, which promtool rejects; each is the sum of the same name
      // without `_total`, by type, which stays.
      for (const name of REDUNDANT_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
    }
    return this.registry.metrics();
  }
}
