#!/usr/bin/env node
// The sources are TypeScript run through tsx, so the command works straight from a clone with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
