#!/usr/bin/env node
// Runs every test file of every package with Node's test runner (through tsx for TypeScript).
// Tiers (`--tier unit|component|e2e`, README "Tests"): unit is the pure tests (no port, no database, no process:
// the protocol package, files named *.unit.test.ts and the pure files listed below); e2e is files named
// *.e2e.test.ts (whole systems, the CLI, browsers, packed tarballs); component is everything else (one or more
// real services over HTTP on both database engines). Path substrings after the options narrow the run further.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';

const args = process.argv.slice(2);
const tierIndex = args.indexOf('--tier');
const tier = tierIndex >= 0 ? args[tierIndex + 1] : undefined;
const filters = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--tier');
const TIERS = ['unit', 'component', 'e2e'];
if (tier !== undefined && !TIERS.includes(tier)) {
  console.error(`unknown tier ${tier}: one of ${TIERS.join(', ')}`);
  process.exit(2);
}

/** Pure tests outside the protocol package that predate the *.unit.test.ts name. */
const UNIT_FILES = new Set(
  [
    'bank/test/card.test.ts',
    'broker/test/ledger-money.test.ts',
    'newspaper/test/pages.test.ts',
    'vendor-sdk/test/payment.test.ts',
    'wallet/test/coin-selection.test.ts',
    'wallet/test/entitlement-store.test.ts',
  ].map((f) => join('packages', ...f.split('/'))),
);

function tierOf(file) {
  if (file.endsWith('.e2e.test.ts')) return 'e2e';
  if (file.startsWith(join('packages', 'protocol') + sep) || file.endsWith('.unit.test.ts') || UNIT_FILES.has(file)) {
    return 'unit';
  }
  return 'component';
}

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

let files = readdirSync('packages')
  .flatMap((p) => {
    try {
      return walk(join('packages', p, 'test'));
    } catch {
      return [];
    }
  })
  .sort();
if (tier) files = files.filter((f) => tierOf(f) === tier);
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Workspace packages resolve to their sources under the `netpay-source` export condition (their default exports are
// the built dist/); NODE_OPTIONS carries it to every process a test starts.
const CONDITION = '--conditions=netpay-source';
const nodeOptions = [process.env.NODE_OPTIONS, CONDITION].filter(Boolean).join(' ');
// The timeout bounds each test file as a whole (each runs in its own process). 15 minutes: the packed-packages test
// installs from the registry and type-checks, about 3 minutes alone, and went past 5 on a machine loaded by another
// run; a test that hangs still ends the run.
const result = spawnSync(
  process.execPath,
  [CONDITION, '--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=900000', ...files],
  { stdio: 'inherit', env: { NETPAY_LOG_LEVEL: 'silent', ...process.env, NODE_OPTIONS: nodeOptions } },
);
// Never fatal: without the server or the rights to vacuum, the run's result stands (see vacuumTestCatalogs).
const vacuum = spawnSync(
  process.execPath,
  [
    CONDITION,
    '--import',
    'tsx',
    '--input-type=module',
    '--eval',
    "import { vacuumTestCatalogs } from '@netpay/service-kit/testing'; await vacuumTestCatalogs();",
  ],
  { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
);
if (vacuum.status !== 0) {
  const reason =
    vacuum.stderr
      .trim()
      .split('\n')
      .find((l) => /Error/.test(l)) ?? `exit ${vacuum.status}`;
  console.error(`note: the test database's catalogs were not vacuumed (${reason})`);
}
process.exit(result.status ?? 1);
