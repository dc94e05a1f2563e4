/**
 * A per-key promise queue: one task at a time per key. The vendor runs every claim of a chain through it, so two
 * payments that both find the chain unheld make one claim between them.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** True while a task of the key is queued or running. */
  has(key: string): boolean {
    return this.#tails.has(key);
  }

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const next = prev.then(task, task);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
  }
}
