/** Store tests wait on writes held by a gated fsync: a promise with a flag that says whether it has settled yet. */
export function watched<T>(promise: Promise<T>) {
  const w = { settled: false, promise };
  promise.then(
    () => (w.settled = true),
    () => (w.settled = true),
  );
  return w;
}

/** Turns of the event loop, so that whatever can run without a held fsync has run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Waits until `condition` holds, for 10 s at most (a loaded box may take a while to reach a held fsync), then
 * asserts it: a condition never reached fails the test with `what`.
 */
export async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
  if (!condition()) throw new Error(`not reached within 10 s: ${what}`);
}
