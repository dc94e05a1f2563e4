/**
 * `node --import tsx packages/newspaper/src/bench-ed25519.ts [--json]`: Ed25519 signs and verifications per second,
 * OpenSSL beside JavaScript, medians of alternating rounds, with the machine's load when they were taken.
 * Tooling only, never run by the tests.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { benchEd25519 } from '@netpay/protocol';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '7' },
    'round-ms': { type: 'string', default: '300' },
  },
});
const load = loadavg().map((l) => l.toFixed(2));
const rows = benchEd25519({ rounds: Number(values.rounds), roundMs: Number(values['round-ms']) });
if (values.json) {
  process.stdout.write(`${JSON.stringify({ loadavg: load, ed25519: rows })}\n`);
} else {
  const node = rows.find((r) => r.backend === 'node');
  const noble = rows.find((r) => r.backend === 'noble');
  process.stdout.write(`Ed25519 ops/s, medians of ${values.rounds} alternating rounds (load ${load.join(' ')})\n`);
  process.stdout.write(
    `${'backend'.padEnd(8)}${'sign'.padStart(10)}${'verify'.padStart(10)}${'verify new key'.padStart(16)}\n`,
  );
  for (const r of rows) {
    process.stdout.write(
      `${r.backend.padEnd(8)}${String(r.signPerSec).padStart(10)}${String(r.verifyPerSec).padStart(10)}${String(r.verifyNewKeyPerSec).padStart(16)}\n`,
    );
  }
  if (node && noble) {
    const x = (a: number, b: number) => `${(a / b).toFixed(1)}×`;
    process.stdout.write(
      `${'ratio'.padEnd(8)}${x(node.signPerSec, noble.signPerSec).padStart(10)}${x(node.verifyPerSec, noble.verifyPerSec).padStart(10)}${x(node.verifyNewKeyPerSec, noble.verifyNewKeyPerSec).padStart(16)}\n`,
    );
  }
}
