/**
 * Counters and histograms in the Prometheus text format. Small on purpose: operators scrape
 * `/metrics`; nothing in the payment path waits on an exporter.
 */
export class Metrics {
  readonly #counters = new Map<string, number>();
  readonly #durations = new Map<string, { count: number; sumMs: number; buckets: number[] }>();
  static readonly BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000];

  inc(name: string, labels: Record<string, string | number> = {}, by = 1): void {
    const key = seriesKey(name, labels);
    this.#counters.set(key, (this.#counters.get(key) ?? 0) + by);
  }

  observe(name: string, labels: Record<string, string | number>, ms: number): void {
    const key = seriesKey(name, labels);
    const h = this.#durations.get(key) ?? { count: 0, sumMs: 0, buckets: Metrics.BUCKETS_MS.map(() => 0) };
    h.count += 1;
    h.sumMs += ms;
    Metrics.BUCKETS_MS.forEach((le, i) => {
      if (ms <= le) h.buckets[i] = (h.buckets[i] ?? 0) + 1;
    });
    this.#durations.set(key, h);
  }

  render(): string {
    const lines: string[] = [];
    for (const [key, value] of this.#counters) lines.push(`${key} ${value}`);
    for (const [key, h] of this.#durations) {
      const [name, labels] = splitKey(key);
      Metrics.BUCKETS_MS.forEach((le, i) => {
        lines.push(`${name}_bucket${joinLabels(labels, `le="${le}"`)} ${h.buckets[i]}`);
      });
      lines.push(`${name}_bucket${joinLabels(labels, 'le="+Inf"')} ${h.count}`);
      lines.push(`${name}_sum${labels} ${h.sumMs}`);
      lines.push(`${name}_count${labels} ${h.count}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

function seriesKey(name: string, labels: Record<string, string | number>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/["\\\n]/g, '_')}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('{');
  return i < 0 ? [key, ''] : [key.slice(0, i), key.slice(i)];
}

function joinLabels(labels: string, extra: string): string {
  return labels ? `${labels.slice(0, -1)},${extra}}` : `{${extra}}`;
}
