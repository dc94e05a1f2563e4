import assert from 'node:assert/strict';
import type { BrokerUnderTest } from './harness.ts';

/**
 * The stall the hash loops caused before: 1.8–2.7 s, nearly all of the long request's time. On a quiet machine the
 * probe's gaps stay under 20 ms; on the shared 2-core test box at load 5–10 the scheduler alone leaves gaps of
 * 60–300 ms with no hashing at all (measured with the same probe), and the long request itself takes longer. So a
 * gap passes below 500 ms, or below a quarter of the long request's time when the machine is that slow: a loop that
 * blocks stalls the probe for most of the request and fails either way.
 */
export const BOUND_MS = 500;

export function assertResponsive(gap: { slowest: number; took: number }, what: string): void {
  const bound = Math.max(BOUND_MS, gap.took / 4);
  assert.ok(
    gap.slowest < bound,
    `discovery waited ${gap.slowest.toFixed(1)} ms (bound ${bound.toFixed(0)}) while ${what} (${gap.took.toFixed(0)} ms)`,
  );
}

/**
 * Runs `long` while asking for discovery every 5 ms; the longest time between two answers, in ms. The broker runs
 * in this process, so a stall of its event loop also delays the probe's own timer: the time from one answer to the
 * next (not each request's own latency) is what a blocked loop lengthens.
 */
export async function slowestAnswerDuring(
  broker: BrokerUnderTest,
  long: () => Promise<void>,
): Promise<{ slowest: number; took: number }> {
  let done = false;
  let slowest = 0;
  let answered = 0;
  const probe = (async () => {
    let last = performance.now();
    while (!done) {
      const res = await fetch(`${broker.url}/.well-known/netpay`);
      await res.arrayBuffer();
      assert.equal(res.status, 200);
      const now = performance.now();
      slowest = Math.max(slowest, now - last);
      last = now;
      answered++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const started = performance.now();
  let took = 0;
  try {
    await long();
    took = performance.now() - started;
  } finally {
    done = true;
    await probe;
  }
  assert.ok(answered >= 3, `only ${answered} probes answered during the long request`);
  return { slowest, took };
}
