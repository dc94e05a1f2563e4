import type { Clock } from '@netpay/service-kit';

/**
 * A token bucket that only failures drain: a customer who logs in correctly a hundred times is never
 * throttled, while guessing one account's password is slowed to the bucket's refill rate.
 */
export class FailureThrottle {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly capacity: number,
    private readonly refillPerSecond: number,
    private readonly clock: Clock,
  ) {}

  #tokens(key: string, now: number): number {
    const bucket = this.#buckets.get(key);
    if (!bucket) return this.capacity;
    return Math.min(this.capacity, bucket.tokens + ((now - bucket.at) / 1000) * this.refillPerSecond);
  }

  /** Seconds until the key may try again (0 when it may try now). */
  blockedForSeconds(key: string): number {
    const tokens = this.#tokens(key, this.clock.now().getTime());
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - tokens) / this.refillPerSecond));
  }

  /** Records a failed attempt. */
  fail(key: string): void {
    const now = this.clock.now().getTime();
    this.#buckets.set(key, { tokens: Math.max(0, this.#tokens(key, now) - 1), at: now });
    if (this.#buckets.size > 100_000) {
      for (const [k] of this.#buckets) if (this.#tokens(k, now) >= this.capacity) this.#buckets.delete(k);
    }
  }

  /** Forgets a key's failures (after a successful login). */
  reset(key: string): void {
    this.#buckets.delete(key);
  }
}
