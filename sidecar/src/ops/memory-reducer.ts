import type { Logger } from '../log.js';

/**
 * Gives back the memory a burst of connections left behind, once the burst is over. V8 keeps the
 * heap it grew to and collects old space lazily, and glibc keeps freed arena pages, so a sidecar
 * that carried a thousand connections stays that large for minutes after they closed. When the
 * live connections have fallen well below their peak and hold steady, one `trimMemory()` (the
 * addon: V8's low-memory notification, then malloc_trim) returns it; it costs one full GC, so it
 * runs at most once per burst, never while connections are still arriving.
 */
export interface MemoryReducerPolicy {
  /** Connections the live count must have fallen from its peak. */
  minDrop: number;
  /** Samples in a row with the live count steady (within minDrop / 8 of the previous one). */
  quietSamples: number;
}

export const DEFAULT_MEMORY_REDUCER_POLICY: MemoryReducerPolicy = { minDrop: 64, quietSamples: 2 };

export interface ReducerState {
  /** The highest live count since the last trim. */
  peak: number;
  /** The previous sample. */
  last: number;
  /** Samples in a row that were steady. */
  quiet: number;
}

export function initialReducerState(live: number): ReducerState {
  return { peak: live, last: live, quiet: 0 };
}

/** Pure: the next state after a sample of the live connection count, and whether to trim now. */
export function reducerStep(
  state: ReducerState,
  live: number,
  policy: MemoryReducerPolicy = DEFAULT_MEMORY_REDUCER_POLICY,
): { state: ReducerState; trim: boolean } {
  const peak = Math.max(state.peak, live);
  // Steady, not merely falling: a burst still draining would leave more garbage after the trim.
  const steady = Math.abs(live - state.last) <= policy.minDrop / 8;
  const quiet = steady ? state.quiet + 1 : 0;
  if (peak - live >= policy.minDrop && quiet >= policy.quietSamples) {
    return { state: { peak: live, last: live, quiet: 0 }, trim: true };
  }
  return { state: { peak, last: live, quiet }, trim: false };
}

/** Samples `live()` every `intervalMs` and calls `trim` when {@link reducerStep} says so. */
export class MemoryReducer {
  private state: ReducerState;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly live: () => number,
    private readonly trim: () => void,
    private readonly log: Logger,
    intervalMs = 1000,
    private readonly policy: MemoryReducerPolicy = DEFAULT_MEMORY_REDUCER_POLICY,
  ) {
    this.state = initialReducerState(live());
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const live = this.live();
    const peak = this.state.peak;
    const step = reducerStep(this.state, live, this.policy);
    this.state = step.state;
    if (!step.trim) return;
    const before = process.memoryUsage.rss();
    const started = performance.now();
    this.trim();
    this.log.info(
      {
        peak,
        live,
        rssBeforeMiB: +(before / 2 ** 20).toFixed(1),
        rssAfterMiB: +(process.memoryUsage.rss() / 2 ** 20).toFixed(1),
        ms: +(performance.now() - started).toFixed(1),
      },
      'burst over: memory given back',
    );
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
