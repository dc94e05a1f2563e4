#!/usr/bin/env node
// Runs every test file of every package with Node's test runner (through tsx for TypeScript).
// `--tier unit` limits the run to pure tests; files named *.e2e.test.ts are the end-to-end tier.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const tierIndex = args.indexOf('--tier');
const tier = tierIndex >= 0 ? args[tierIndex + 1] : undefined;
const filters = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--tier');

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
if (tier === 'unit') files = files.filter((f) => f.includes(`${join('packages', 'protocol')}`));
if (tier === 'e2e') files = files.filter((f) => f.endsWith('.e2e.test.ts'));
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Workspace packages resolve to their sources under the `netpay-source` export condition (their default exports are
// the built dist/); NODE_OPTIONS carries it to every process a test starts.
const CONDITION = '--conditions=netpay-source';
const nodeOptions = [process.env.NODE_OPTIONS, CONDITION].filter(Boolean).join(' ');
const result = spawnSync(
  process.execPath,
  [CONDITION, '--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000', ...files],
  { stdio: 'inherit', env: { NETPAY_LOG_LEVEL: 'silent', ...process.env, NODE_OPTIONS: nodeOptions } },
);
process.exit(result.status ?? 1);
