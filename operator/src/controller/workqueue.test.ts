import { describe, expect, it } from 'vitest';
import { ManualClock } from '../testing/fixtures.js';
import { ItemExponentialBackoff, MaxOfRateLimiter } from './backoff.js';
import { WorkQueue } from './workqueue.js';

function queue(clock = new ManualClock()) {
  return {
    q: new WorkQueue<string>(
      new MaxOfRateLimiter<string>(clock, { baseMs: 5, maxMs: 1000, qps: 1000, burst: 1000 }),
      clock,
    ),
    clock,
  };
}

describe('WorkQueue', () => {
  it('dedupes keys that are waiting', async () => {
    const { q } = queue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(q.length).toBe(0);
  });

  it('never hands the same key to two workers; a key re-added while processing runs again after done()', async () => {
    const { q } = queue();
    q.add('a');
    const k = await q.get();
    expect(k).toBe('a');
    q.add('a'); // changed while being processed
    q.add('a');
    expect(q.length).toBe(0); // not handed out concurrently
    let second: string | undefined;
    void q.get().then((x) => (second = x));
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done('a');
    await Promise.resolve();
    expect(second).toBe('a'); // processed again, once
    q.done('a');
    expect(q.length).toBe(0);
  });

  it('says whether a key waits in the queue (for the per-controller depth gauge)', async () => {
    const { q } = queue();
    const depths: number[] = [];
    q.onDepth = (d) => depths.push(d);
    expect(q.isQueued('a')).toBe(false);
    q.add('a');
    q.add('b');
    expect([q.isQueued('a'), q.isQueued('b')]).toEqual([true, true]);
    expect(await q.get()).toBe('a');
    expect(q.isQueued('a')).toBe(false); // being processed
    q.add('a'); // changed meanwhile: queued again only after done()
    expect(q.isQueued('a')).toBe(false);
    q.done('a');
    expect(q.isQueued('a')).toBe(true);
    expect(depths).toEqual([1, 2, 1, 2]);
  });

  it('does not requeue on done() when nothing changed', async () => {
    const { q } = queue();
    q.add('a');
    await q.get();
    q.done('a');
    expect(q.length).toBe(0);
  });

  it('wakes a waiting worker on add', async () => {
    const { q } = queue();
    const p = q.get();
    q.add('x');
    expect(await p).toBe('x');
    expect(q.processingCount).toBe(1);
  });

  it('addAfter delays, and the earliest pending time wins', async () => {
    const { q, clock } = queue();
    q.addAfter('a', 100);
    q.addAfter('a', 50);
    q.addAfter('a', 200);
    expect(q.length).toBe(0);
    clock.advance(49);
    expect(q.length).toBe(0);
    clock.advance(1);
    expect(q.length).toBe(1);
    clock.advance(1000);
    expect(q.length).toBe(1); // later timers were replaced, no second add
    expect(await q.get()).toBe('a');
  });

  it('retries failures with exponential backoff until forgotten', async () => {
    const { q, clock } = queue();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      q.addRateLimited('k');
      let waited = 0;
      while (q.length === 0 && waited < 10_000) {
        clock.advance(1);
        waited++;
      }
      delays.push(waited);
      const k = await q.get();
      expect(k).toBe('k');
      q.done('k');
    }
    expect(delays).toEqual([5, 10, 20, 40, 80]);
    expect(q.retries('k')).toBe(5);
    q.forget('k');
    expect(q.retries('k')).toBe(0);
  });

  it('shutDown releases waiting workers and drops new keys', async () => {
    const { q } = queue();
    const p = q.get();
    q.addAfter('later', 10);
    q.shutDown();
    expect(await p).toBeUndefined();
    q.add('x');
    expect(q.length).toBe(0);
    expect(await q.get()).toBeUndefined();
  });
});

describe('rate limiters', () => {
  it('per-key exponential backoff caps at max and is independent per key', () => {
    const b = new ItemExponentialBackoff<string>(10, 100);
    expect([b.when('a'), b.when('a'), b.when('a'), b.when('a'), b.when('a')]).toEqual([10, 20, 40, 80, 100]);
    expect(b.when('b')).toBe(10);
    b.forget('a');
    expect(b.when('a')).toBe(10);
  });
  it('the token bucket limits overall retries once the burst is used', () => {
    const clock = new ManualClock();
    const r = new MaxOfRateLimiter<string>(clock, { baseMs: 1, maxMs: 1, qps: 10, burst: 2 });
    expect(r.when('a')).toBe(1);
    expect(r.when('b')).toBe(1);
    expect(r.when('c')).toBeCloseTo(100); // bucket empty: 1 token per 100 ms
    expect(r.when('d')).toBeCloseTo(200);
    clock.advance(1000);
    expect(r.when('e')).toBe(1);
  });
});
