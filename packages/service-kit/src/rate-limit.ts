import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';

/**
 * A token bucket per key (an IP, an email, a chain). In memory on purpose: limits protect one
 * process from bursts; a fleet would put them in front of the processes instead.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly capacity: number,
    private readonly refillPerSecond: number,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Takes `cost` tokens (default one); false, taking nothing, when the key has fewer left. */
  take(key: string, cost = 1): boolean {
    const now = this.clock.now().getTime();
    const bucket = this.#buckets.get(key) ?? { tokens: this.capacity, at: now };
    const refilled = Math.min(this.capacity, bucket.tokens + ((now - bucket.at) / 1000) * this.refillPerSecond);
    const ok = refilled >= cost;
    this.#buckets.set(key, { tokens: ok ? refilled - cost : refilled, at: now });
    if (this.#buckets.size > 100_000) this.#evictFull(now);
    return ok;
  }

  /** Seconds until the key has a token again, for Retry-After. */
  retryAfterSeconds(key: string): number {
    const bucket = this.#buckets.get(key);
    if (!bucket || bucket.tokens >= 1) return 0;
    return Math.ceil((1 - bucket.tokens) / this.refillPerSecond);
  }

  #evictFull(now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.refillPerSecond >= this.capacity) this.#buckets.delete(key);
    }
  }
}
