#!/usr/bin/env node
// The sources are TypeScript run through tsx, so the command works straight from a clone with no build step.
import { register } from 'tsx/esm/api';

register();
const { main, reportUncaught } = await import('../src/main.ts');
const argv = process.argv.slice(2);
// An error outside any command's own flow (a service's timer or stream) is said in one line too, as failures are.
process.on('uncaughtException', (error) => reportUncaught(argv, error));
const code = await main(argv);
// A failed command is over even if it left a listener open (a service that could not take its port).
if (code !== 0) process.exit(code);
