#!/usr/bin/env node
// In a clone the command runs the TypeScript sources through tsx, with no build step. In production it runs the
// JavaScript that `npm run build` put in dist/: when NODE_ENV=production, or once tsx is gone (a devDependency, so
// `npm prune --omit=dev` removes it; build before pruning).
import { existsSync } from 'node:fs';
import { createRequire, register as registerHooks } from 'node:module';

const BUILT = new URL('../dist/main.js', import.meta.url);

function tsxInstalled() {
  try {
    createRequire(import.meta.url).resolve('tsx/esm/api');
    return true;
  } catch {
    return false;
  }
}

async function loadCommand() {
  if (process.env.NODE_ENV === 'production' || !tsxInstalled()) {
    if (!existsSync(BUILT)) {
      process.stderr.write('netpay: no built JavaScript in packages/cli/dist: run `npm run build` first\n');
      process.exit(1);
    }
    return import(BUILT.href);
  }
  // The workspace packages' sources are their `netpay-source` export condition: added here for this process, and
  // through NODE_OPTIONS for the services it starts.
  const condition = '--conditions=netpay-source';
  if (!(process.env.NODE_OPTIONS ?? '').includes(condition)) {
    process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS, condition].filter(Boolean).join(' ');
  }
  registerHooks('./source-condition.mjs', import.meta.url);
  const { register } = await import('tsx/esm/api');
  register();
  return import('../src/main.ts');
}

const { main, reportUncaught } = await loadCommand();
const argv = process.argv.slice(2);
// An error outside any command's own flow (a service's timer or stream) is said in one line too, as failures are.
process.on('uncaughtException', (error) => reportUncaught(argv, error));
const code = await main(argv);
// A failed command is over even if it left a listener open (a service that could not take its port).
if (code !== 0) process.exit(code);
