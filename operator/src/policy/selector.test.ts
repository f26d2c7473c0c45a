import { describe, expect, it } from 'vitest';
import { selectorMatches } from './selector.js';

describe('selectorMatches', () => {
  it('matches everything with an empty or absent selector', () => {
    expect(selectorMatches(undefined, { a: '1' })).toBe(true);
    expect(selectorMatches(null, undefined)).toBe(true);
    expect(selectorMatches({}, {})).toBe(true);
  });
  it('requires all matchLabels', () => {
    const s = { matchLabels: { app: 'web', tier: 'fe' } };
    expect(selectorMatches(s, { app: 'web', tier: 'fe', x: 'y' })).toBe(true);
    expect(selectorMatches(s, { app: 'web' })).toBe(false);
    expect(selectorMatches(s, { app: 'web', tier: 'be' })).toBe(false);
  });
  it('implements In, NotIn, Exists, DoesNotExist', () => {
    const sel = (operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist', values?: string[]) => ({
      matchExpressions: [{ key: 'env', operator, values }],
    });
    expect(selectorMatches(sel('In', ['a', 'b']), { env: 'a' })).toBe(true);
    expect(selectorMatches(sel('In', ['a', 'b']), { env: 'c' })).toBe(false);
    expect(selectorMatches(sel('In', ['a']), {})).toBe(false);
    expect(selectorMatches(sel('NotIn', ['a']), { env: 'b' })).toBe(true);
    expect(selectorMatches(sel('NotIn', ['a']), {})).toBe(true);
    expect(selectorMatches(sel('NotIn', ['a']), { env: 'a' })).toBe(false);
    expect(selectorMatches(sel('Exists'), { env: '' })).toBe(true);
    expect(selectorMatches(sel('Exists'), {})).toBe(false);
    expect(selectorMatches(sel('DoesNotExist'), {})).toBe(true);
    expect(selectorMatches(sel('DoesNotExist'), { env: 'x' })).toBe(false);
  });
  it('combines matchLabels and matchExpressions with AND', () => {
    const s = {
      matchLabels: { app: 'web' },
      matchExpressions: [{ key: 'env', operator: 'In' as const, values: ['prod'] }],
    };
    expect(selectorMatches(s, { app: 'web', env: 'prod' })).toBe(true);
    expect(selectorMatches(s, { app: 'web', env: 'dev' })).toBe(false);
  });
});
