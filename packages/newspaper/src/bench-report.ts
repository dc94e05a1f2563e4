/** How the benchmark's figures are printed: Markdown tables, medians with their min–max spread beside them. */
import type { BenchReport } from './bench.ts';
import type { MachineLoad, Spread } from './bench-stats.ts';

/**
 * A Markdown table, the first column left-aligned and the others right-aligned.
 *
 * @example
 * table(['route', 'req/s'], [['free', '1,200']]);
 */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? ':' : '-') + '-'.repeat(w) + (i === 0 ? '-' : ':')).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** A number with thousands separators and `digits` decimals. */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Decimals enough for a figure's size: 2 below 10, 1 below 100, none above. */
function autoDigits(n: number): number {
  const a = Math.abs(n);
  return a < 10 ? 2 : a < 100 ? 1 : 0;
}

/**
 * A median with its spread: `1,234 (1,100–1,300)`; a single round is its value alone.
 *
 * @example
 * fmtSpread({ median: 0.8, min: 0.75, max: 0.9, rounds: [0.8, 0.75, 0.9] }); // '0.80 (0.75–0.90)'
 */
export function fmtSpread(s: Spread, digits: number = autoDigits(s.median)): string {
  if (s.rounds.length < 2) return fmt(s.median, digits);
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

/** A ratio as `0.82×` with its spread. */
export function fmtRatio(s: Spread): string {
  if (s.rounds.length < 2) return `${fmt(s.median, 2)}×`;
  return `${fmt(s.median, 2)}× (${fmt(s.min, 2)}–${fmt(s.max, 2)})`;
}

/** Bytes in KiB or MiB. */
export function fmtBytes(n: number): string {
  const a = Math.abs(n);
  if (a >= 10 * 1024 * 1024) return `${fmt(n / 1024 / 1024, 1)} MiB`;
  if (a >= 1024) return `${fmt(n / 1024, 1)} KiB`;
  return `${fmt(n)} B`;
}

function loadLine(load: { start: MachineLoad; end: MachineLoad }): string {
  return `load (/proc/loadavg) at start: ${load.start.loadavg} · at end: ${load.end.loadavg}`;
}

/** Latency in ms, to the load's 10 µs steps where it is under 10 ms. */
function ms(s: Spread): string {
  return fmtSpread(s, s.max < 10 ? 2 : 1);
}

/**
 * The report as text: one table per row with the machine's load, then the headline ratios beside the targets.
 *
 * @example
 * console.log(renderReport(await measure(options, console.error)));
 */
export function renderReport(report: BenchReport): string {
  const out: string[] = [];
  const m = report.machine;
  out.push(
    `NetPay benchmark: Node ${m.node}, ${m.platform}/${m.arch}, ${m.cpus} CPUs` +
      (m.loadGeneratorCpu === null
        ? ', nothing pinned'
        : `, load generator pinned to CPU ${m.loadGeneratorCpu}, servers to the others`),
  );
  const o = report.options;
  const http = report.http;
  if (http) {
    out.push(
      '',
      `## Throughput, side by side: ${o.connections} connections, ${o.rounds} alternating rounds of ${o.durationSec} s` +
        (o.warmupSec > 0 ? ` after a ${o.warmupSec} s warm-up of each` : ''),
      loadLine(http.load),
      '',
    );
    const rows = Object.values(http.variants).map((v) => [
      v.label,
      fmtSpread(v.reqPerSec, 0),
      ms(v.p50Ms),
      ms(v.p99Ms),
      v.cpuUsPerRequest ? fmtSpread(v.cpuUsPerRequest, 1) : '–',
      v.loadCpuUsPerRequest ? fmtSpread(v.loadCpuUsPerRequest, 1) : '–',
      String(v.ok),
      String(v.other),
    ]);
    if (rows.length > 0) {
      out.push(
        table(
          [
            'route',
            'req/s median (min–max)',
            'p50 ms',
            'p99 ms',
            'vendor CPU µs/req',
            'load CPU µs/req',
            '2xx',
            'other',
          ],
          rows,
        ),
        "(vendor CPU: the vendor process's user + system time, every thread of it, per answer; – behind nginx. Load CPU: the load process's, whose own CPU caps the pace " +
          'where req/s × load CPU nears 1 s)',
      );
    }
    // What each paying vendor's spend store did: how many payments one commit (and fsync) served, and where the
    // SQLite WAL's fsyncs ran (the default chooses by the disk's speed).
    const stores = Object.values(http.variants).flatMap((v) =>
      v.paymentsPerCommit
        ? [
            `${v.label}: ${v.paymentsPerCommit.median.toFixed(1)} payments a commit` +
              (v.fsyncsOnLoop ? `, ${Math.round(v.fsyncsOnLoop.median * 100)} % of the fsyncs on the event loop` : '') +
              (v.loopFsyncUsPerPayment && v.loopFsyncUsPerPayment.median > 0
                ? `, the loop blocked in them ${v.loopFsyncUsPerPayment.median.toFixed(1)} µs a payment`
                : ''),
          ]
        : [],
    );
    if (stores.length > 0) out.push('', 'spend stores (medians of the rounds):', ...stores.map((line) => `- ${line}`));
    for (const why of Object.values(http.skipped)) out.push(why);
  }
  const first = report.firstPayment;
  if (first) {
    out.push(
      '',
      '## Claim + first payment: new chains, each paid once (vendor on SQLite, its claim at the broker included)',
      loadLine(first.load),
      '',
      table(
        ['clients', 'p50 ms', 'p99 ms', 'first payments/s'],
        [
          [
            'one at a time',
            fmtSpread(first.sequential.p50Ms, 1),
            fmtSpread(first.sequential.p99Ms, 1),
            fmtSpread(first.sequential.perSec, 0),
          ],
          [
            `${first.concurrent.concurrency} at a time`,
            fmtSpread(first.concurrent.p50Ms, 1),
            fmtSpread(first.concurrent.p99Ms, 1),
            fmtSpread(first.concurrent.perSec, 0),
          ],
        ],
      ),
    );
  }
  const mem = report.memory;
  if (mem) {
    out.push(
      '',
      '## Vendor memory per active chain',
      loadLine(mem.load),
      '',
      table(
        ['chains', 'heap before', 'heap after', 'per chain', 'RSS before', 'RSS after'],
        [
          [
            fmt(mem.chains),
            fmtBytes(mem.heapBefore),
            fmtBytes(mem.heapAfter),
            fmtBytes(mem.bytesPerChain),
            fmtBytes(mem.rssBefore),
            fmtBytes(mem.rssAfter),
          ],
        ],
      ),
      `(per chain: the heap's growth over the last ${fmt(mem.countedChains)} chains, each read after a ` +
        (mem.gc ? 'forced full collection)' : 'collection that was not forced: rough)'),
    );
  }
  const b = report.broker;
  if (b) {
    out.push(
      '',
      `## Broker: ${b.concurrency} clients; redemptions of ${fmt(b.unitsPerItem)} units an item, ${b.itemsPerRequest} items a request${b.cpus ? `; redemptions on ${b.cpus} CPUs` : ''}`,
      loadLine(b.load),
      '',
      table(
        ['operation', 'per second median (min–max)'],
        [
          ['coin purchases (card through the bank)', fmtSpread(b.purchasesPerSec, 0)],
          ['claims (payword as proof)', fmtSpread(b.claimsPerSec, 0)],
          ['redemption paywords', fmtSpread(b.redemptionPaywordsPerSec, 0)],
        ],
      ),
    );
  }
  const c = report.cpu;
  if (c) {
    out.push(
      '',
      '## One check at a time, in one process',
      loadLine(c.load),
      '',
      table(
        ['check', 'per second median (min–max)'],
        [
          ['payword, 1 step (SHA-256)', fmtSpread(c.paywordPerSec, 0)],
          ['Ed25519 signature (a touchstone)', fmtSpread(c.ed25519PerSec, 0)],
          ['EIP-712 payment (secp256k1 recovery, x402-style)', fmtSpread(c.eip712PerSec, 0)],
        ],
      ),
    );
  }
  const ratios: string[][] = [];
  const r = http?.ratios;
  const add = (name: string, s: Spread | undefined, target: string) => {
    if (s) ratios.push([name, fmtRatio(s), target]);
  };
  add('paid / free, SQLite (fsync: auto)', r?.paidOverFreeSqlite, '≥ 0.8 (aim 0.9)');
  add('paid SQLite: fsync auto / always on the threadpool', r?.autoOverThreadpoolSqlite, '≥ 1');
  add('paid SQLite: fsync auto / in the commit (FULL)', r?.autoOverFullSqlite, '≥ 1');
  add('paid / free, PostgreSQL', r?.paidOverFreePg, '≥ 0.8');
  add('PostgreSQL / SQLite, paid', r?.pgOverSqlitePaid, '≥ 0.8');
  add('paid / Ed25519-per-request route', r?.paidOverEd25519, '≥ 3');
  add('paid / EIP-712-per-request route', r?.paidOverEip712, '≥ 20');
  add('2 vendor processes / 1, behind nginx', r?.twoVendorsOverOne, `> 1 with a CPU each`);
  if (first)
    ratios.push(['claim + first payment p99, one at a time', `${fmtSpread(first.sequential.p99Ms, 1)} ms`, '< 20 ms']);
  if (b)
    ratios.push([
      `redemption paywords/s${b.cpus ? ` (${b.cpus} CPUs)` : ''}`,
      fmtSpread(b.redemptionPaywordsPerSec, 0),
      '≥ 300,000 (aim 1 M with both cores)',
    ]);
  if (ratios.length > 0) {
    out.push('', '## Summary (medians of the rounds, min–max)', '', table(['figure', 'measured', 'target'], ratios));
  }
  for (const [row, why] of Object.entries(report.skipped))
    if (!http?.skipped[row as keyof typeof http.skipped]) out.push(why);
  out.push('', loadLine(report.load));
  return out.join('\n');
}
