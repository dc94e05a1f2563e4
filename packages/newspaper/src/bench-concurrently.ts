/** Async work over many items with a fixed number in flight, as a client with that many connections does it. */

/**
 * Runs `work` on every item with at most `concurrency` at once; results in the items' order. The first failure
 * stops new work and is thrown once the running ones end.
 *
 * @example
 * const answers = await concurrently(urls, 8, (url) => fetch(url));
 */
export async function concurrently<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        results[i] = await work(items[i] as T, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane));
  if (failure) throw failure.error;
  return results;
}
