import type { Ed25519Backend } from './ed25519-backend.ts';
import { nativeEd25519 } from './ed25519-native.ts';
import { nobleEd25519 } from './ed25519-noble.ts';

/** Median operations per second of one Ed25519 backend. */
export interface Ed25519BenchRow {
  backend: 'node' | 'noble';
  signPerSec: number;
  /** The same public key every time (a vendor checking its broker's touchstones). */
  verifyPerSec: number;
  /** A public key not seen before every time (more keys than the native backend caches). */
  verifyNewKeyPerSec: number;
}

export interface Ed25519BenchOptions {
  /** Rounds per backend; each round measures every operation of every backend, the backends in alternating order. */
  rounds?: number;
  /** How long one operation of one backend runs in one round. */
  roundMs?: number;
  /** Bytes signed and verified (a signed document is about 300). */
  messageBytes?: number;
  now?: () => number;
}

/** More distinct keys than the native backend keeps, so "new key" never hits its cache. */
const NEW_KEY_POOL = 512;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function opsPerSec(roundMs: number, now: () => number, op: (i: number) => unknown): number {
  const start = now();
  let n = 0;
  let elapsed = 0;
  do {
    op(n++);
    elapsed = now() - start;
  } while (elapsed < roundMs);
  return (n * 1000) / elapsed;
}

function seedOf(i: number): Uint8Array {
  const seed = new Uint8Array(32);
  seed[0] = i & 0xff;
  seed[1] = (i >> 8) & 0xff;
  seed[31] = 0x5a;
  return seed;
}

/**
 * Ed25519 signatures and verifications per second, OpenSSL (where the runtime has it) beside JavaScript, measured in
 * alternating rounds in one run and reported as medians: absolute figures move with the machine's load, ratios
 * much less. A tool, not a test: it takes `rounds × 3 × roundMs` per backend.
 *
 * @example
 * for (const row of benchEd25519({ rounds: 7 })) console.log(row.backend, row.verifyPerSec);
 */
export function benchEd25519(options: Ed25519BenchOptions = {}): Ed25519BenchRow[] {
  const rounds = options.rounds ?? 7;
  const roundMs = options.roundMs ?? 300;
  const now = options.now ?? (() => performance.now());
  const message = new Uint8Array(options.messageBytes ?? 300).map((_, i) => (i * 31) & 0xff);
  const native = nativeEd25519();
  const backends: Ed25519Backend[] = native === undefined ? [nobleEd25519] : [native, nobleEd25519];
  // Keys and signatures made once (by either backend: they give the same bytes).
  const maker = backends[0] as Ed25519Backend;
  const pool = Array.from({ length: NEW_KEY_POOL }, (_, i) => {
    const seed = seedOf(i);
    return { seed, publicKey: maker.publicKey(seed), signature: maker.sign(message, seed) };
  });
  const first = pool[0] as (typeof pool)[number];
  const samples = backends.map(() => ({ sign: [] as number[], verify: [] as number[], verifyNewKey: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? backends.map((_, i) => i) : backends.map((_, i) => backends.length - 1 - i);
    for (const b of order) {
      const backend = backends[b] as Ed25519Backend;
      const s = samples[b] as (typeof samples)[number];
      s.sign.push(opsPerSec(roundMs, now, () => backend.sign(message, first.seed)));
      s.verify.push(opsPerSec(roundMs, now, () => backend.verify(first.signature, message, first.publicKey)));
      s.verifyNewKey.push(
        opsPerSec(roundMs, now, (i) => {
          const entry = pool[i % NEW_KEY_POOL] as (typeof pool)[number];
          if (!backend.verify(entry.signature, message, entry.publicKey)) throw new Error('benchmark signature failed');
        }),
      );
    }
  }
  return backends.map((backend, b) => {
    const s = samples[b] as (typeof samples)[number];
    return {
      backend: backend.name,
      signPerSec: Math.round(median(s.sign)),
      verifyPerSec: Math.round(median(s.verify)),
      verifyNewKeyPerSec: Math.round(median(s.verifyNewKey)),
    };
  });
}
