import { describe, expect, it } from 'vitest';
import { Backoff, exponentialDelay } from './backoff.js';

describe('exponentialDelay', () => {
  it('doubles from the base and saturates', () => {
    expect([0, 1, 2, 3, 10].map((n) => exponentialDelay(n, 5, 1000))).toEqual([5, 10, 20, 40, 1000]);
    expect(exponentialDelay(5000, 5, 1000)).toBe(1000);
  });
});

describe('Backoff', () => {
  it('grows with jitter bounds and resets', () => {
    const b = new Backoff(100, 1000, 0.2, () => 1); // maximal jitter
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([120, 240, 480, 960, 1200]);
    b.reset();
    const lo = new Backoff(100, 1000, 0.2, () => 0);
    expect(lo.next()).toBe(80);
    expect(b.next()).toBe(120);
  });
});
