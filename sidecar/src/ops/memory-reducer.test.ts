import { describe, expect, it } from 'vitest';
import { initialReducerState, type ReducerState, reducerStep } from './memory-reducer.js';

/** Feeds running totals of opened connections one sample at a time; the indexes that trimmed. */
function trims(samples: number[], start = 0): number[] {
  let state: ReducerState = initialReducerState(start);
  const at: number[] = [];
  samples.forEach((opened, i) => {
    const step = reducerStep(state, opened, { minChurn: 256, quietSamples: 2 });
    state = step.state;
    if (step.trim) at.push(i);
  });
  return at;
}

describe('memory reducer policy', () => {
  it('trims once after a burst, when no connection has arrived for two samples', () => {
    expect(trims([10, 500, 1000, 1000, 1000, 1000, 1000])).toEqual([4]);
  });

  it('waits while connections keep arriving, however many', () => {
    expect(trims([300, 600, 900, 1200, 1500, 1800, 2100])).toEqual([]);
  });

  it('leaves a few connections alone', () => {
    expect(trims([10, 60, 60, 60, 60, 60])).toEqual([]);
  });

  it('trims again after a second burst, not before', () => {
    expect(trims([1000, 1000, 1000, 1000, 1100, 1100, 1100, 1400, 1400, 1400])).toEqual([2, 9]);
  });

  it('never trims an idle sidecar', () => {
    expect(trims([0, 0, 0, 0, 0, 0])).toEqual([]);
  });
});
