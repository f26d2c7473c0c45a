import { MaxOfRateLimiter } from './backoff.js';
import { realClock, type Clock } from './clock.js';

export interface RateLimiter<K> {
  when(key: K): number;
  retries(key: K): number;
  forget(key: K): void;
}

/**
 * A work queue with client-go / controller-runtime semantics:
 * - a key is queued at most once (dirty set) however often it is added;
 * - a key is handed to at most one worker at a time (processing set); a key added while it is
 *   being processed is queued again when the worker calls done(), so the change is not lost;
 * - addAfter delays an add; addRateLimited delays by the rate limiter (per-key exponential
 *   backoff, and an overall token bucket); forget resets the key's backoff.
 */
export class WorkQueue<K = string> {
  private readonly queue: K[] = [];
  private head = 0;
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly waiting = new Map<K, { at: number; handle: unknown }>();
  private readonly getters: ((k: K | undefined) => void)[] = [];
  private shuttingDown = false;
  /** Called after every change of the queue length (for the depth gauge). */
  onDepth: ((depth: number) => void) | undefined;

  constructor(
    readonly limiter: RateLimiter<K> = new MaxOfRateLimiter<K>(realClock),
    private readonly clock: Clock = realClock,
  ) {}

  get length(): number {
    return this.queue.length - this.head;
  }

  get processingCount(): number {
    return this.processing.size;
  }

  get waitingCount(): number {
    return this.waiting.size;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Whether the key waits in the queue (not being processed, not delayed). */
  isQueued(key: K): boolean {
    return this.dirty.has(key) && !this.processing.has(key);
  }

  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const g = this.getters.shift();
    if (g) {
      this.dirty.delete(key);
      this.processing.add(key);
      g(key);
      return;
    }
    this.queue.push(key);
    this.onDepth?.(this.length);
  }

  /** Adds the key after `ms`; an earlier pending delayed add of the same key wins. */
  addAfter(key: K, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + ms;
    const w = this.waiting.get(key);
    if (w) {
      if (w.at <= at) return;
      this.clock.clearTimeout(w.handle);
    }
    const handle = this.clock.setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, ms);
    this.waiting.set(key, { at, handle });
  }

  addRateLimited(key: K): void {
    this.addAfter(key, this.limiter.when(key));
  }

  forget(key: K): void {
    this.limiter.forget(key);
  }

  retries(key: K): number {
    return this.limiter.retries(key);
  }

  /** Next key to process; undefined once the queue is shut down and drained. */
  get(): Promise<K | undefined> {
    if (this.length > 0) {
      const key = this.queue[this.head] as K;
      this.head++;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.dirty.delete(key);
      this.processing.add(key);
      this.onDepth?.(this.length);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Marks the key processed; requeues it if it was added meanwhile. */
  done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key);
    }
  }

  /** Stops accepting keys; pending get() calls resolve to undefined. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const w of this.waiting.values()) this.clock.clearTimeout(w.handle);
    this.waiting.clear();
    for (const g of this.getters.splice(0)) g(undefined);
  }
}
