import { describe, expect, it } from 'vitest';
import type { Pod } from '../api/core.js';
import type { SmcPolicy } from '../api/smcpolicy.js';
import { must, pod, policy } from '../testing/fixtures.js';
import { notInjectedReason } from '../webhook/inject.js';
import { NotInjectedReporter, podNotInjectedReason, type NotInjectedOptions } from './notinjected.js';

const enabledNs = { 'smc.dev/injection': 'enabled' };
const web = policy('web', { tenant: 'blue', podSelector: { matchLabels: { app: 'web' } } });

/** A pod as the cache holds it after admission without the sidecar. */
function bare(name: string, labels: Record<string, string>, over: Partial<Pod['metadata']> = {}): Pod {
  const p = pod(name, labels, { injected: false });
  return { ...p, metadata: { ...p.metadata, uid: `uid-${name}`, ...over } };
}

describe('podNotInjectedReason', () => {
  it('gives the webhook reason for the same pod', () => {
    const db = bare('db', { app: 'db' });
    expect(podNotInjectedReason(db, enabledNs, [web])).toBe('no SmcPolicy selects the pod');
    expect(podNotInjectedReason(db, enabledNs, [web])).toBe(notInjectedReason(db, 'ns', enabledNs, [web]));
    const off = policy('off', { mode: 'Disabled' });
    expect(podNotInjectedReason(db, enabledNs, [off])).toBe('SmcPolicy off is Disabled');
  });
  it('explains a pod the webhook should have injected but did not', () => {
    expect(podNotInjectedReason(bare('w', { app: 'web' }), enabledNs, [web])).toBe(
      'SmcPolicy web selects the pod but the webhook did not inject it; recreate the pod',
    );
  });
  it('says nothing for injected, not opted in, opted out or finished pods', () => {
    expect(podNotInjectedReason(pod('w', { app: 'web' }, { injected: true }), enabledNs, [])).toBeUndefined();
    expect(podNotInjectedReason(bare('db', { app: 'db' }), {}, [])).toBeUndefined();
    expect(podNotInjectedReason(bare('db', { app: 'db' }), undefined, [])).toBeUndefined();
    expect(
      podNotInjectedReason(
        bare('db', { app: 'db' }, { annotations: { 'smc.dev/inject': 'false' } }),
        enabledNs,
        [],
      ),
    ).toBeUndefined();
    expect(podNotInjectedReason(bare('db', { 'smc.dev/inject': 'false' }), enabledNs, [])).toBeUndefined();
    const done = { ...bare('job', { app: 'db' }), status: { phase: 'Succeeded' } };
    expect(podNotInjectedReason(done, enabledNs, [])).toBeUndefined();
    const going = bare('going', { app: 'db' }, { deletionTimestamp: '2026-01-02T00:00:00Z' });
    expect(podNotInjectedReason(going, enabledNs, [])).toBeUndefined();
  });
  it('counts the pod opt-in label outside enabled namespaces', () => {
    expect(podNotInjectedReason(bare('x', { 'smc.dev/inject': 'true' }), {}, [])).toBe(
      'no SmcPolicy selects the pod',
    );
  });
});

describe('NotInjectedReporter', () => {
  function setup(
    o: Partial<NotInjectedOptions> = {},
    policies: SmcPolicy[] = [web],
    now = Date.parse('2026-01-01T00:10:00Z'),
  ): { r: NotInjectedReporter; emitted: [string, string][] } {
    const emitted: [string, string][] = [];
    const r = new NotInjectedReporter(
      { namespaceLabels: (ns) => (ns === 'ns' ? enabledNs : {}), policies: () => policies },
      (p, reason) => emitted.push([p.metadata.name, reason]),
      { maxAgeMs: 3_600_000, maxTracked: 100, skipNamespaces: ['smc-system'], ...o },
      () => now,
    );
    return { r, emitted };
  }

  it('reports a pod once per UID and again after it was deleted', () => {
    const { r, emitted } = setup();
    const db = bare('db', { app: 'db' });
    expect(r.observe(db)).toBe('no SmcPolicy selects the pod');
    expect(r.observe(db)).toBeUndefined();
    expect(r.observe({ ...db, status: { phase: 'Running', podIP: '10.0.0.1' } })).toBeUndefined();
    expect(emitted).toEqual([['db', 'no SmcPolicy selects the pod']]);
    expect(r.size).toBe(1);
    r.forget(db);
    expect(r.size).toBe(0);
    // A pod of the same name is a new object with a new UID.
    r.observe(bare('db', { app: 'db' }, { uid: 'uid-db-2' }));
    expect(emitted).toHaveLength(2);
  });

  it('remembers only reported pods', () => {
    const { r, emitted } = setup();
    r.observe(pod('w', { app: 'web' }, { injected: true }));
    r.observe(bare('plain', { app: 'db' }, { namespace: 'other' }));
    expect(emitted).toEqual([]);
    expect(r.size).toBe(0);
  });

  it('skips the operator namespace and pods older than the window', () => {
    const { r, emitted } = setup();
    r.observe(bare('op', { app: 'db' }, { namespace: 'smc-system' }));
    r.observe(bare('old', { app: 'db' }, { creationTimestamp: '2025-12-31T22:00:00Z' }));
    r.observe(bare('recent', { app: 'db' }, { creationTimestamp: '2026-01-01T00:00:00Z' }));
    expect(emitted.map(([n]) => n)).toEqual(['recent']);
  });

  it('stays bounded: the oldest UIDs go first, and pods gone from the cache are dropped', () => {
    const { r } = setup({ maxTracked: 3 });
    const pods = ['a', 'b', 'c', 'd'].map((n) => bare(n, { app: 'db' }));
    for (const p of pods) r.observe(p);
    expect(r.size).toBe(3);
    // 'a' was evicted, so it would be reported again; the others not.
    expect(r.observe(must(pods[1]))).toBeUndefined();
    r.retainOnly([must(pods[3])]);
    expect(r.size).toBe(1);
    expect(r.observe(must(pods[3]))).toBeUndefined();
  });
});
