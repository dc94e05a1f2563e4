/** Store tests wait on writes held by a gated fsync: a promise with a flag that says whether it has settled yet. */
export function watched<T>(promise: Promise<T>) {
  const w = { settled: false, promise };
  promise.then(
    () => (w.settled = true),
    () => (w.settled = true),
  );
  return w;
}
