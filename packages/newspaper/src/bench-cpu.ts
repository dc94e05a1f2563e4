/**
 * The CPU row: what one payment check costs on its own, in this process, verifications per second in alternating
 * rounds: a payword (one SHA-256 step), an Ed25519 signature (a touchstone, as the vendor checks the broker's),
 * and an x402-style EIP-712 payment (secp256k1 recovery).
 */
import { generateSigningKey, PaywordChain, signTouchstone, verifyPayword, verifyTouchstone } from '@netpay/protocol';
import { rfc3339 } from '@netpay/service-kit';
import { makeEip712Payments, verifyEip712Payment } from './bench-eip712-payment.ts';
import { type MachineLoad, machineLoad, type Spread, spread } from './bench-stats.ts';

/** How many times a second `fn` runs, measured for about `ms`. */
export function opsPerSecond(fn: () => boolean, ms: number): number {
  const batch = 16;
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < batch; i++) if (!fn()) throw new Error('benchmark function returned false');
    count += batch;
    now = performance.now();
  }
  return (count * 1000) / (now - start);
}

export interface CpuResult {
  load: { start: MachineLoad; end: MachineLoad };
  paywordPerSec: Spread;
  ed25519PerSec: Spread;
  eip712PerSec: Spread;
}

/**
 * Each check for `roundMs` per round, after a warm-up of each.
 *
 * @example
 * const { paywordPerSec } = cpuBench({ rounds: 3, roundMs: 300 });
 */
export function cpuBench(options: { rounds: number; roundMs: number }): CpuResult {
  const start = machineLoad();
  const chain = PaywordChain.generate(2);
  const known = { index: 0, payword: chain.anchor };
  const presented = { index: 1, payword: chain.payword(1) };
  const key = generateSigningKey();
  const now = new Date();
  const touchstone = signTouchstone(
    {
      chainId: chain.chainIdB64,
      anchor: chain.anchorB64,
      length: 2,
      unit: 1,
      currency: 'NZD',
      broker: 'http://127.0.0.1:4000',
      keyId: 'bench',
      issuedAt: rfc3339(now),
      expiresAt: rfc3339(new Date(now.getTime() + 86_400_000)),
    },
    key.privateSeed,
  );
  const payments = makeEip712Payments(16);
  let next = 0;
  const checks = {
    payword: () => verifyPayword({ chainId: chain.chainId, known, presented }),
    ed25519: () => verifyTouchstone(touchstone, key.publicKey),
    eip712: () => verifyEip712Payment(payments[next++ % payments.length]) === 'ok',
  };
  const warmMs = Math.min(200, options.roundMs);
  for (const fn of Object.values(checks)) opsPerSecond(fn, warmMs);
  const out = { payword: [] as number[], ed25519: [] as number[], eip712: [] as number[] };
  for (let r = 0; r < options.rounds; r++) {
    for (const [name, fn] of Object.entries(checks) as Array<[keyof typeof checks, () => boolean]>) {
      out[name].push(opsPerSecond(fn, options.roundMs));
    }
  }
  return {
    load: { start, end: machineLoad() },
    paywordPerSec: spread(out.payword),
    ed25519PerSec: spread(out.ed25519),
    eip712PerSec: spread(out.eip712),
  };
}
