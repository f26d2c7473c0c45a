import { describe, expect, it } from 'vitest';
import { pod, policy, must } from '../testing/fixtures.js';
import { resolveNamespace } from './resolve.js';
import { computeStatus, conditionChanges, mergeConditions, statusEqual } from './status.js';

const now = new Date('2026-03-01T12:00:00.000Z');
const later = new Date('2026-03-01T13:00:00.000Z');
const ok = (): boolean => true;

function cond(s: ReturnType<typeof computeStatus>, type: string) {
  return s.conditions?.find((c) => c.type === type);
}

describe('computeStatus', () => {
  it('counts matched and ready pods and sets Ready', () => {
    const p = policy('p', {}, { generation: 3 });
    const res = resolveNamespace([pod('a', {}, { ready: true }), pod('b', {}, { ready: false })], [p]);
    const s = computeStatus(p, must(res.policies.get('ns/p')), ok, now);
    expect(s.matchedPods).toBe(2);
    expect(s.readyPods).toBe(1);
    expect(s.observedGeneration).toBe(3);
    expect(cond(s, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'SidecarsNotReady',
      observedGeneration: 3,
    });
    expect(cond(s, 'Conflicted')?.status).toBe('False');
    expect(cond(s, 'Degraded')?.status).toBe('False');
    expect(cond(s, 'Ready')?.lastTransitionTime).toBe('2026-03-01T12:00:00Z');
  });
  it('is Ready with no pods, and when every sidecar is ready', () => {
    const p = policy('p', {});
    const none = computeStatus(p, { matched: [], shadowed: 0, conflictsWith: new Set() }, ok, now);
    expect(cond(none, 'Ready')).toMatchObject({ status: 'True', reason: 'NoPodsMatched' });
    const res = resolveNamespace([pod('a', {}, { ready: true })], [p]);
    expect(cond(computeStatus(p, must(res.policies.get('ns/p')), ok, now), 'Ready')).toMatchObject({
      status: 'True',
      reason: 'AllSidecarsReady',
    });
  });
  it('reports conflicts naming the winning policies', () => {
    const older = policy('older', {}, { created: '2026-01-01T00:00:00Z' });
    const newer = policy('newer', {}, { created: '2026-01-02T00:00:00Z' });
    const res = resolveNamespace([pod('a', {})], [older, newer]);
    const s = computeStatus(newer, must(res.policies.get('ns/newer')), ok, now);
    expect(s.matchedPods).toBe(0);
    expect(s.conflictingPolicies).toEqual(['older']);
    expect(cond(s, 'Conflicted')).toMatchObject({ status: 'True', reason: 'OverlapsOlderPolicy' });
    expect(cond(s, 'Conflicted')?.message).toContain('older');
  });
  it('is Degraded in Require mode when pods lack the sidecar, and when nodes lack devices', () => {
    const p = policy('p', { mode: 'Require' });
    const res = resolveNamespace([pod('a', {}, { injected: false }), pod('b', {}, { ready: true })], [p]);
    const s = computeStatus(p, must(res.policies.get('ns/p')), ok, now);
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'SidecarMissing' });
    const prefer = policy('p', { mode: 'Prefer' });
    const s2 = computeStatus(prefer, must(res.policies.get('ns/p')), ok, now);
    expect(cond(s2, 'Degraded')?.status).toBe('False');
    const s3 = computeStatus(prefer, must(res.policies.get('ns/p')), () => false, now);
    expect(cond(s3, 'Degraded')).toMatchObject({ status: 'True', reason: 'NoMatchingDevice' });
  });
  it('reports Disabled policies as Ready and not Degraded', () => {
    const p = policy('p', { mode: 'Disabled' });
    const res = resolveNamespace([pod('a', {}, { injected: false })], [p]);
    const s = computeStatus(p, must(res.policies.get('ns/p')), ok, now);
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True', reason: 'Disabled' });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'False', reason: 'Disabled' });
  });
  it('is idempotent: recomputing an unchanged world yields an equal status with the same timestamps', () => {
    const p = policy('p', {});
    const res = resolveNamespace([pod('a', {}, { ready: true })], [p]);
    const s1 = computeStatus(p, must(res.policies.get('ns/p')), ok, now);
    const withStatus = { ...p, status: s1 };
    const s2 = computeStatus(withStatus, must(res.policies.get('ns/p')), ok, later);
    expect(statusEqual(s1, s2)).toBe(true);
    expect(s2.conditions).toEqual(s1.conditions);
  });
});

describe('conditions', () => {
  it('keeps lastTransitionTime while the status is unchanged', () => {
    const first = mergeConditions(
      [],
      [{ type: 'Ready', status: 'False', reason: 'A', message: 'm' }],
      1,
      now,
    );
    const same = mergeConditions(
      first,
      [{ type: 'Ready', status: 'False', reason: 'B', message: 'n' }],
      2,
      later,
    );
    expect(same[0]?.lastTransitionTime).toBe('2026-03-01T12:00:00Z');
    expect(same[0]?.observedGeneration).toBe(2);
    const flipped = mergeConditions(
      first,
      [{ type: 'Ready', status: 'True', reason: 'C', message: 'o' }],
      2,
      later,
    );
    expect(flipped[0]?.lastTransitionTime).toBe('2026-03-01T13:00:00Z');
  });
  it('statusEqual sees every field but lastTransitionTime', () => {
    const base = {
      observedGeneration: 1,
      matchedPods: 1,
      readyPods: 1,
      conflictingPolicies: [],
      conditions: mergeConditions([], [{ type: 'Ready', status: 'True', reason: 'R', message: 'm' }], 1, now),
    };
    expect(statusEqual(base, { ...base })).toBe(true);
    expect(statusEqual(undefined, base)).toBe(false);
    expect(statusEqual(base, { ...base, readyPods: 0 })).toBe(false);
    expect(statusEqual(base, { ...base, observedGeneration: 2 })).toBe(false);
    expect(statusEqual(base, { ...base, conflictingPolicies: ['x'] })).toBe(false);
    const msg = { ...base, conditions: [{ ...must(base.conditions[0]), message: 'other' }] };
    expect(statusEqual(base, msg)).toBe(false);
    const ts = { ...base, conditions: [{ ...must(base.conditions[0]), lastTransitionTime: 'x' }] };
    expect(statusEqual(base, ts)).toBe(true);
  });
  it('reports status changes as events, bad news as warnings', () => {
    const old = mergeConditions(
      [],
      [
        { type: 'Ready', status: 'True', reason: 'R', message: '' },
        { type: 'Conflicted', status: 'False', reason: 'N', message: '' },
      ],
      1,
      now,
    );
    const next = mergeConditions(
      old,
      [
        { type: 'Ready', status: 'False', reason: 'SidecarsNotReady', message: '0/1' },
        { type: 'Conflicted', status: 'False', reason: 'N', message: '' },
        { type: 'Degraded', status: 'False', reason: 'AsExpected', message: '' },
      ],
      1,
      later,
    );
    const changes = conditionChanges(old, next);
    expect(changes).toEqual([
      { type: 'Ready', status: 'False', reason: 'SidecarsNotReady', message: '0/1', eventType: 'Warning' },
    ]);
    expect(conditionChanges(next, next)).toEqual([]);
  });
});
