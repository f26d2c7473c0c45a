import type { Clock } from './clock.js';

/** delay(n) = min(base * factor^n, max) for the n-th consecutive failure (n from 0). */
export function exponentialDelay(failures: number, baseMs: number, maxMs: number, factor = 2): number {
  if (failures < 0) return 0;
  const d = baseMs * Math.pow(factor, failures);
  return Number.isFinite(d) ? Math.min(d, maxMs) : maxMs;
}

/** Per-key exponential failure backoff (controller-runtime's ItemExponentialFailureRateLimiter). */
export class ItemExponentialBackoff<K> {
  private readonly failures = new Map<K, number>();
  constructor(
    readonly baseMs = 5,
    readonly maxMs = 1000_000,
  ) {}

  /** Delay before the key's next retry; counts one more failure. */
  when(key: K): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return exponentialDelay(n, this.baseMs, this.maxMs);
  }

  retries(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: K): void {
    this.failures.delete(key);
  }
}

/** Overall token bucket (controller-runtime's BucketRateLimiter): `qps` tokens/s, `burst` capacity. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Reserves one token; returns how long to wait before using it. */
  reserve(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }
}

/** The default controller rate limiter: the larger of per-key backoff and the overall bucket. */
export class MaxOfRateLimiter<K> {
  readonly item: ItemExponentialBackoff<K>;
  readonly bucket: TokenBucket;
  constructor(clock: Clock, opts: { baseMs?: number; maxMs?: number; qps?: number; burst?: number } = {}) {
    this.item = new ItemExponentialBackoff<K>(opts.baseMs ?? 5, opts.maxMs ?? 1000_000);
    this.bucket = new TokenBucket(opts.qps ?? 10, opts.burst ?? 100, clock);
  }
  when(key: K): number {
    return Math.max(this.item.when(key), this.bucket.reserve());
  }
  retries(key: K): number {
    return this.item.retries(key);
  }
  forget(key: K): void {
    this.item.forget(key);
  }
}

/** A retry delay sequence for loops without keys (reflectors, leader election): jittered exponential. */
export class Backoff {
  private n = 0;
  constructor(
    private readonly baseMs = 200,
    private readonly maxMs = 10_000,
    private readonly jitter = 0.2,
    private readonly random: () => number = Math.random,
  ) {}
  next(): number {
    const d = exponentialDelay(this.n++, this.baseMs, this.maxMs);
    return Math.round(d * (1 + this.jitter * (this.random() * 2 - 1)));
  }
  reset(): void {
    this.n = 0;
  }
}
