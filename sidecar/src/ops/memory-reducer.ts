import type { Logger } from '../log.js';

/**
 * Gives back the memory a burst of connections left behind, once the burst is over. V8 keeps the
 * heap it grew to and collects old space lazily, and glibc keeps freed arena pages, so a sidecar
 * that carried a thousand connections stays that large for minutes after they closed. When many
 * connections have come and gone since the last trim and none has arrived for a while, one
 * `trimMemory()` (the addon: V8's low-memory notification, then malloc_trim) returns it. It costs
 * one full GC, so it runs at most once per burst, never while connections keep arriving.
 */
export interface MemoryReducerPolicy {
  /** Connections opened since the last trim before another is worth its GC. */
  minChurn: number;
  /** Samples in a row in which no connection was opened. */
  quietSamples: number;
}

export const DEFAULT_MEMORY_REDUCER_POLICY: MemoryReducerPolicy = { minChurn: 256, quietSamples: 2 };

export interface ReducerState {
  /** Connections opened (a running total) at the last trim. */
  trimmedAt: number;
  /** The previous sample's running total. */
  last: number;
  /** Samples in a row without a new connection. */
  quiet: number;
}

export function initialReducerState(opened: number): ReducerState {
  return { trimmedAt: opened, last: opened, quiet: 0 };
}

/** Pure: the next state after a sample of the running total of opened connections, and whether to trim now. */
export function reducerStep(
  state: ReducerState,
  opened: number,
  policy: MemoryReducerPolicy = DEFAULT_MEMORY_REDUCER_POLICY,
): { state: ReducerState; trim: boolean } {
  const quiet = opened === state.last ? state.quiet + 1 : 0;
  if (opened - state.trimmedAt >= policy.minChurn && quiet >= policy.quietSamples) {
    return { state: { trimmedAt: opened, last: opened, quiet: 0 }, trim: true };
  }
  return { state: { trimmedAt: state.trimmedAt, last: opened, quiet }, trim: false };
}

/** Samples `opened()` every `intervalMs` and calls `trim` when {@link reducerStep} says so. */
export class MemoryReducer {
  private state: ReducerState;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly opened: () => number,
    private readonly trim: () => void,
    private readonly log: Logger,
    intervalMs = 1000,
    private readonly policy: MemoryReducerPolicy = DEFAULT_MEMORY_REDUCER_POLICY,
  ) {
    this.state = initialReducerState(opened());
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const opened = this.opened();
    const churn = opened - this.state.trimmedAt;
    const step = reducerStep(this.state, opened, this.policy);
    this.state = step.state;
    if (!step.trim) return;
    const before = process.memoryUsage.rss();
    const started = performance.now();
    this.trim();
    this.log.info(
      {
        connections: churn,
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
