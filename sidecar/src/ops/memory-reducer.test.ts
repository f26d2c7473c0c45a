import { describe, expect, it } from 'vitest';
import { initialReducerState, type ReducerState, reducerStep } from './memory-reducer.js';

/** Feeds live counts one sample at a time; the indexes of the samples that trimmed. */
function trims(samples: number[], start = 0): number[] {
  let state: ReducerState = initialReducerState(start);
  const at: number[] = [];
  samples.forEach((live, i) => {
    const step = reducerStep(state, live, { minDrop: 64, quietSamples: 2 });
    state = step.state;
    if (step.trim) at.push(i);
  });
  return at;
}

describe('memory reducer policy', () => {
  it('trims once after a burst has drained and stayed quiet', () => {
    expect(trims([10, 500, 1000, 400, 20, 20, 20, 20, 20])).toEqual([6]);
  });

  it('waits while connections are still arriving or draining', () => {
    // Falling from 1000, but rising again at every other sample: never quiet for two samples.
    expect(trims([1000, 800, 900, 700, 800, 600, 700])).toEqual([]);
  });

  it('leaves a small swing alone', () => {
    expect(trims([10, 60, 10, 10, 10, 10])).toEqual([]);
  });

  it('trims again after a second burst, not before', () => {
    expect(trims([1000, 0, 0, 0, 0, 300, 0, 0, 0])).toEqual([3, 8]);
  });

  it('never trims an idle sidecar', () => {
    expect(trims([0, 0, 0, 0, 0, 0])).toEqual([]);
  });
});
