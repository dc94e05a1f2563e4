import { spawnSync } from 'node:child_process';

/** What `promtool check metrics` said about a scrape, or why it could not run. */
export type PromtoolVerdict = { kind: 'checked'; ok: boolean; output: string } | { kind: 'missing'; message: string };

/**
 * Runs Prometheus's own linter, `promtool check metrics`, on a scrape's text. Without promtool the verdict is
 * `missing`; a test skips on it, except under CI (CI=true), where promtool is installed by .ci/run and its absence
 * is a failure: `requirePromtool` throws then.
 *
 * @example
 * const verdict = promtoolCheck(await (await fetch(metricsUrl)).text());
 * if (verdict.kind === 'missing') return t.skip(verdict.message);
 * assert.ok(verdict.ok, verdict.output);
 */
export function promtoolCheck(text: string): PromtoolVerdict {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (run.error && (run.error as NodeJS.ErrnoException).code === 'ENOENT') {
    const message = 'promtool is not installed (Debian: apt-get install prometheus); metrics not linted';
    if (process.env.CI === 'true') throw new Error(`${message}, and CI requires it`);
    return { kind: 'missing', message };
  }
  if (run.error) throw run.error;
  const output = `${run.stdout ?? ''}${run.stderr ?? ''}`.trim();
  return { kind: 'checked', ok: run.status === 0, output: output || `exit ${run.status}` };
}

/**
 * The value of one series in a scrape, found by name and (a subset of) its labels in any order; undefined when no
 * line matches. Several matching lines are summed, so `{ kind: 'purchase' }` adds up every other label.
 *
 * @example
 * metricValue(text, 'netpay_broker_claims_total', { outcome: 'granted' }); // 3
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = new Map<string, string>();
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      have.set(pair[1] as string, pair[2] as string);
    }
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) total = (total ?? 0) + Number(match[3]);
  }
  return total;
}
