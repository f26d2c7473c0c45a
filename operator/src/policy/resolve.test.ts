import { describe, expect, it } from 'vitest';
import { pod, policy } from '../testing/fixtures.js';
import { candidatePolicies, comparePolicies, effectivePolicy, resolveNamespace } from './resolve.js';

describe('policy precedence', () => {
  it('orders by creationTimestamp, then name', () => {
    const a = policy('b-old', {}, { created: '2026-01-01T00:00:00Z' });
    const b = policy('a-new', {}, { created: '2026-01-02T00:00:00Z' });
    const c = policy('a-old', {}, { created: '2026-01-01T00:00:00Z' });
    expect([a, b, c].sort(comparePolicies).map((p) => p.metadata.name)).toEqual(['a-old', 'b-old', 'a-new']);
  });
  it('is independent of input order (deterministic)', () => {
    const ps = [
      policy('x', {}, { created: '2026-01-03T00:00:00Z' }),
      policy('y', {}, { created: '2026-01-01T00:00:00Z' }),
      policy('z', {}, { created: '2026-01-02T00:00:00Z' }),
    ];
    const p = pod('p', {});
    expect(effectivePolicy(p, ps)?.metadata.name).toBe('y');
    expect(effectivePolicy(p, [...ps].reverse())?.metadata.name).toBe('y');
    expect(candidatePolicies(p, ps).map((x) => x.metadata.name)).toEqual(['y', 'z', 'x']);
  });
  it('ignores policies of other namespaces and policies being deleted', () => {
    const p = pod('p', { app: 'web' });
    const other = policy('other', {}, { namespace: 'elsewhere', created: '2020-01-01T00:00:00Z' });
    const dying = policy('dying', {}, { deleting: true, created: '2020-01-01T00:00:00Z' });
    const live = policy('live', { podSelector: { matchLabels: { app: 'web' } } });
    expect(effectivePolicy(p, [other, dying, live])?.metadata.name).toBe('live');
    expect(effectivePolicy(p, [other, dying])).toBeUndefined();
  });
});

describe('resolveNamespace', () => {
  it('gives each pod to its oldest matching policy and reports the losers as conflicted', () => {
    const web = policy(
      'web',
      { podSelector: { matchLabels: { app: 'web' } } },
      { created: '2026-01-01T00:00:00Z' },
    );
    const all = policy('all', {}, { created: '2026-01-02T00:00:00Z' });
    const disjoint = policy(
      'db',
      { podSelector: { matchLabels: { app: 'db' } } },
      { created: '2026-01-03T00:00:00Z' },
    );
    const pods = [pod('w1', { app: 'web' }), pod('w2', { app: 'web' }), pod('c1', { app: 'cache' })];
    const r = resolveNamespace(pods, [all, disjoint, web]);
    expect(r.podPolicy.get('ns/w1')).toBe('ns/web');
    expect(r.podPolicy.get('ns/c1')).toBe('ns/all');
    expect(r.policies.get('ns/web')?.matched.map((p) => p.metadata.name)).toEqual(['w1', 'w2']);
    expect(r.policies.get('ns/all')?.matched.map((p) => p.metadata.name)).toEqual(['c1']);
    expect(r.policies.get('ns/all')?.shadowed).toBe(2);
    expect([...(r.policies.get('ns/all')?.conflictsWith ?? [])]).toEqual(['ns/web']);
    expect(r.policies.get('ns/web')?.conflictsWith.size).toBe(0);
    expect(r.policies.get('ns/db')?.matched).toEqual([]);
    expect(r.policies.get('ns/db')?.conflictsWith.size).toBe(0);
  });
  it('skips terminating and finished pods', () => {
    const p = policy('p', {});
    const r = resolveNamespace(
      [pod('a', {}), pod('b', {}, { deleting: true }), pod('c', {}, { phase: 'Succeeded' })],
      [p],
    );
    expect(r.policies.get('ns/p')?.matched.map((x) => x.metadata.name)).toEqual(['a']);
  });
  it('releases pods of a deleted policy to the next one', () => {
    const old = policy('old', {}, { created: '2026-01-01T00:00:00Z', deleting: true });
    const next = policy('next', {}, { created: '2026-01-02T00:00:00Z' });
    const r = resolveNamespace([pod('a', {})], [old, next]);
    expect(r.podPolicy.get('ns/a')).toBe('ns/next');
    expect(r.policies.has('ns/old')).toBe(false);
    expect(r.policies.get('ns/next')?.conflictsWith.size).toBe(0);
  });
});
