#!/usr/bin/env node
// The direction of imports is the architecture (docs/ARCHITECTURE.md): this fails the lint when a
// package's source imports a NetPay package it may not depend on. Tests may import anything; the test world
// (@netpay/test-kit) may import every service package, and no package's source may import it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ALLOWED = {
  protocol: [],
  'service-kit': ['protocol'],
  bank: ['protocol', 'service-kit'],
  broker: ['protocol', 'service-kit'],
  'vendor-sdk': ['protocol', 'service-kit'],
  newspaper: ['protocol', 'service-kit', 'vendor-sdk'],
  wallet: ['protocol'],
  cli: ['protocol', 'service-kit', 'bank', 'broker', 'vendor-sdk', 'newspaper', 'wallet'],
  'test-kit': ['protocol', 'service-kit', 'bank', 'broker', 'vendor-sdk', 'newspaper', 'wallet'],
};
// Tooling that starts whole systems (the benchmark) is a composition root like the CLI.
const ROOT_FILES = new Set([join('packages', 'newspaper', 'src', 'bench.ts')]);

function walk(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(walk(path));
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.push(path);
  }
  return out;
}

const problems = [];
for (const pkg of Object.keys(ALLOWED)) {
  let files = [];
  try {
    files = walk(join('packages', pkg, 'src'));
  } catch {
    continue;
  }
  for (const file of files) {
    if (ROOT_FILES.has(file)) continue;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)['"](@netpay\/([a-z-]+)|\.\.\/\.\.\/([a-z-]+)\/)/g)) {
      const target = m[2] ?? m[3];
      if (target === pkg) continue;
      if (target === 'test-kit') problems.push(`${file}: only tests may import test-kit`);
      else if (!ALLOWED[pkg].includes(target)) problems.push(`${file}: ${pkg} may not import ${target}`);
    }
    if (pkg === 'protocol' && /from\s+['"]node:/.test(text)) problems.push(`${file}: protocol must not use Node APIs`);
  }
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('import direction: ok');
