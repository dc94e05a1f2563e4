import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UsageError } from '@netpay/service-kit';
import { type BenchReport, benchOptions } from '../src/bench.ts';
import { ED25519_REQUIREMENTS, ed25519PaymentVerifier, makeEd25519Payments } from '../src/bench-ed25519-payment.ts';
import { makeEip712Payments, verifyEip712Payment } from '../src/bench-eip712-payment.ts';
import { findNginx, NGINX_MISSING, NGINX_TEMPLATE, nginxConfig } from '../src/bench-nginx.ts';
import { parentConditions } from '../src/bench-node-flags.ts';
import { alternate, type Sample } from '../src/bench-rounds.ts';
import type { Spread } from '../src/bench-stats.ts';

const BIN = fileURLToPath(new URL('../../cli/bin/netpay.mjs', import.meta.url));

/** `netpay bench …` as its own process, as `npm run bench` runs it. */
function runBench(argv: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [...parentConditions(), BIN, 'bench', ...argv], {
    env: { ...process.env, NETPAY_LOG_LEVEL: 'silent' },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  child.stderr.on('data', (chunk) => {
    err += chunk;
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err })));
}

function assertPositive(value: unknown, name: string): void {
  assert.equal(typeof value, 'number', `${name} is missing`);
  assert.ok(Number.isFinite(value as number) && (value as number) > 0, `${name} is ${value}`);
}

function assertSpread(s: Spread | undefined, name: string, positive = true): void {
  assert.ok(s, `${name} is missing`);
  assert.ok(s.rounds.length >= 1, `${name} has no rounds`);
  for (const v of [s.median, s.min, s.max, ...s.rounds]) {
    if (positive) assertPositive(v, name);
    else assert.ok(typeof v === 'number' && v >= 0, `${name} is ${v}`);
  }
}

describe('npm run bench', () => {
  it('prints every figure of every row, positive, as one JSON object (--quick --json)', async () => {
    const { code, out, err } = await runBench(['--quick', '--json']);
    assert.equal(code, 0, err);
    const report = JSON.parse(out) as BenchReport;

    for (const load of [report.load, report.http?.load, report.firstPayment?.load, report.broker?.load]) {
      assert.match(load?.start.loadavg ?? '', /^\d+\.\d+ \d+\.\d+ \d+\.\d+/);
      assert.match(load?.end.loadavg ?? '', /^\d+\.\d+ \d+\.\d+ \d+\.\d+/);
    }

    const nginx = findNginx() !== undefined;
    const variants = report.http?.variants ?? {};
    const expected = [
      'free-sqlite',
      'paid-sqlite',
      'paid-sqlite-threadpool',
      'paid-sqlite-full',
      'free-pg',
      'paid-pg',
      'ed25519',
      'eip712',
    ] as const;
    for (const key of [...expected, ...(nginx ? (['nginx-1-vendor', 'nginx-2-vendors'] as const) : [])]) {
      const v = variants[key];
      assert.ok(v, `${key} is missing`);
      assertSpread(v.reqPerSec, `${key} req/s`);
      assertSpread(v.p50Ms, `${key} p50`);
      assertSpread(v.p99Ms, `${key} p99`);
      assertPositive(v.ok, `${key} 2xx`);
      // One vendor process answers each of these (not behind nginx): what a request cost it, from /proc.
      if (process.platform === 'linux' && !key.startsWith('nginx')) assertSpread(v.cpuUsPerRequest, `${key} CPU`);
      // And what it cost the load process, whose own CPU would otherwise set the pace unseen. /proc counts CPU in
      // 10 ms ticks: a quick round of the slow EIP-712 route may cost the load less than one (0 here, CI).
      if (process.platform === 'linux') assertSpread(v.loadCpuUsPerRequest, `${key} load CPU`, false);
    }
    // The spend stores' own counts: every paying vendor committed in groups; where the WAL's fsyncs ran is known
    // for the SQLite stores that fsync themselves (threadpool: none on the loop), and absent where nothing fsyncs
    // besides the database (FULL, PostgreSQL).
    for (const key of ['paid-sqlite', 'paid-sqlite-threadpool', 'paid-sqlite-full', 'paid-pg'] as const) {
      assertSpread(variants[key]?.paymentsPerCommit, `${key} payments a commit`);
    }
    assertSpread(variants['paid-sqlite']?.fsyncsOnLoop, 'paid-sqlite fsyncs on the loop', false);
    assertSpread(variants['paid-sqlite']?.loopFsyncUsPerPayment, 'paid-sqlite loop time in fsyncs', false);
    assert.equal(variants['paid-sqlite-threadpool']?.loopFsyncUsPerPayment?.median, 0);
    assert.equal(variants['paid-sqlite-threadpool']?.fsyncsOnLoop?.median, 0);
    assert.equal(variants['paid-sqlite-full']?.fsyncsOnLoop, undefined);
    assert.equal(variants['paid-pg']?.fsyncsOnLoop, undefined);
    assert.equal(variants['free-sqlite']?.paymentsPerCommit, undefined);
    if (!nginx) assert.equal(report.skipped.nginx, NGINX_MISSING);

    const ratios = [
      'paidOverFreeSqlite',
      'autoOverThreadpoolSqlite',
      'autoOverFullSqlite',
      'paidOverFreePg',
      'pgOverSqlitePaid',
      'paidOverEd25519',
      'paidOverEip712',
    ];
    for (const name of [...ratios, ...(nginx ? ['twoVendorsOverOne'] : [])]) assertPositive(report.ratios[name], name);

    const first = report.firstPayment;
    for (const mode of [first?.sequential, first?.concurrent]) {
      assertSpread(mode?.p50Ms, 'first payment p50');
      assertSpread(mode?.p99Ms, 'first payment p99');
      assertSpread(mode?.perSec, 'first payments/s');
    }
    assertPositive(report.memory?.chains, 'memory chains');
    assertPositive(report.memory?.bytesPerChain, 'memory per chain');
    assert.equal(report.memory?.gc, true);

    assertSpread(report.broker?.purchasesPerSec, 'purchases/s');
    assertSpread(report.broker?.claimsPerSec, 'claims/s');
    assertSpread(report.broker?.redemptionPaywordsPerSec, 'redemption paywords/s');
    assert.equal(report.broker?.unitsPerItem, 1000);

    assertSpread(report.cpu?.paywordPerSec, 'payword checks/s');
    assertSpread(report.cpu?.ed25519PerSec, 'Ed25519 checks/s');
    assertSpread(report.cpu?.eip712PerSec, 'EIP-712 checks/s');
  });

  it('reads its rows and defaults from the command line', () => {
    assert.deepEqual([...benchOptions(['--only', 'sqlite,pg']).rows], ['sqlite', 'pg']);
    assert.deepEqual([...benchOptions(['--skip-http']).rows], ['cpu']);
    assert.equal(benchOptions([]).rows.size, 11);
    assert.equal(benchOptions([]).rounds, 3);
    assert.equal(benchOptions(['--quick']).rounds, 1);
    assert.equal(benchOptions(['--quick', '--rounds', '4']).rounds, 4);
    assert.throws(() => benchOptions(['--only', 'sqlite,gpu']), UsageError);
    assert.throws(() => benchOptions(['--rounds', '0']), UsageError);
  });
});

describe('rounds side by side', () => {
  const sample = (reqPerSec: number): Sample => ({ reqPerSec, p50Ms: 1, p99Ms: 1, ok: 1, other: 0 });

  it('settles a variant once, after every warm-up and before the first round; not at all without a warm-up', async () => {
    for (const warmupSec of [1, 0]) {
      const log: string[] = [];
      const variants = [
        {
          key: 'a',
          label: 'A',
          run: async (s: number) => {
            log.push(`a ${s}`);
            return sample(1);
          },
        },
        {
          key: 'b',
          label: 'B',
          run: async (s: number) => {
            log.push(`b ${s}`);
            return sample(2);
          },
          settle: async () => {
            log.push('settle b');
            return 'settled';
          },
        },
      ];
      const progress: string[] = [];
      const samples = await alternate(variants, { rounds: 2, durationSec: 5, warmupSec }, (l) => progress.push(l));
      const warm = warmupSec > 0 ? ['a 1', 'b 1', 'settle b'] : [];
      assert.deepEqual(log, [...warm, 'a 5', 'b 5', 'a 5', 'b 5']);
      assert.deepEqual(
        samples.b?.map((x) => x.reqPerSec),
        [2, 2],
      );
      assert.equal(progress.includes('b: settled'), warmupSec > 0);
    }
  });
});

describe('the anchor routes check their signatures for real', () => {
  it('Ed25519: a signed payment passes; another payee, a late one or a changed byte does not', () => {
    const verify = ed25519PaymentVerifier();
    const [header] = makeEd25519Payments(1);
    assert.equal(verify(header), 'ok');
    const [message, signature] = (header as string).split('.') as [string, string];
    const json = JSON.parse(Buffer.from(message, 'base64url').toString('utf8'));
    const resigned = (m: object) => `${Buffer.from(JSON.stringify(m)).toString('base64url')}.${signature}`;
    assert.equal(verify(resigned({ ...json, amountMinor: 2 })), 'bad_signature');
    assert.equal(verify(resigned({ ...json, payTo: 'someone-else' })), 'wrong_payment');
    assert.equal(ed25519PaymentVerifier(ED25519_REQUIREMENTS, () => json.validBefore + 1)(header), 'expired');
    assert.equal(verify(undefined), 'malformed');
  });

  it('EIP-712: a signed authorization recovers to its payer; a changed field does not', () => {
    const [header] = makeEip712Payments(1);
    assert.equal(verifyEip712Payment(header), 'ok');
    const payment = JSON.parse(Buffer.from(header as string, 'base64').toString('utf8'));
    const again = (change: (p: typeof payment) => void) => {
      const copy = structuredClone(payment);
      change(copy);
      return verifyEip712Payment(Buffer.from(JSON.stringify(copy)).toString('base64'));
    };
    assert.equal(
      again((p) => {
        p.payload.authorization.value = '20000';
      }),
      'bad_signature',
    );
    assert.equal(
      again((p) => {
        p.payload.authorization.nonce = `0x${'00'.repeat(32)}`;
      }),
      'bad_signature',
    );
    assert.equal(
      again((p) => {
        p.payload.authorization.to = `0x${'11'.repeat(20)}`;
      }),
      'wrong_payment',
    );
    assert.equal(verifyEip712Payment('not base64 json'), 'malformed');
  });
});

describe('deploy/nginx/netpay-vendor.conf.template', () => {
  it('fills every placeholder outside comments and routes by the chain of the Authorization header', () => {
    const template = readFileSync(NGINX_TEMPLATE, 'utf8');
    const conf = nginxConfig(template, {
      prefix: '/tmp/np',
      listen: '127.0.0.1:8080',
      upstreams: ['127.0.0.1:5001', '127.0.0.1:5002'],
    });
    const live = conf
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('#'))
      .join('\n');
    assert.doesNotMatch(live, /\{\{/);
    assert.match(live, /server 127\.0\.0\.1:5001;\s+server 127\.0\.0\.1:5002;/);
    assert.match(live, /listen 127\.0\.0\.1:8080;/);
    assert.match(live, /pid \/tmp\/np\/nginx\.pid;/);
    assert.match(live, /hash \$netpay_chain consistent;/);
    assert.ok(live.includes('"~chain=\\"(?<c>[^\\"]+)\\"" $c;'));
  });
});
