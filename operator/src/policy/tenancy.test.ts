import { describe, expect, it } from 'vitest';
import type { SmcTenant } from '../api/smctenant.js';
import { must, pod, policy } from '../testing/fixtures.js';
import { resolveNamespace } from './resolve.js';
import { computeStatus, conditionChanges } from './status.js';
import { admitPolicy, notAdmittedMessage, tenantAdmitsNamespace } from './tenancy.js';

function tenant(name: string, spec: SmcTenant['spec']): SmcTenant {
  return { metadata: { name }, spec };
}

const tenants = new Map<string, SmcTenant>([
  ['blue', tenant('blue', { namespaces: ['shop', 'shop-canary'] })],
  ['red', tenant('red', { namespaceSelector: { matchLabels: { 'tenant.example/red': 'true' } } })],
  [
    'green',
    tenant('green', {
      namespaces: ['legacy'],
      namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['g1', 'g2'] }] },
    }),
  ],
  ['everyone', tenant('everyone', { namespaceSelector: {} })],
  ['reserved', tenant('reserved', {})],
]);
const lookup = (n: string): SmcTenant | undefined => tenants.get(n);

describe('tenantAdmitsNamespace', () => {
  it('admits the namespaces listed by name', () => {
    expect(tenantAdmitsNamespace(must(tenants.get('blue')), 'shop', {})).toBe(true);
    expect(tenantAdmitsNamespace(must(tenants.get('blue')), 'shop-canary', null)).toBe(true);
    expect(
      tenantAdmitsNamespace(must(tenants.get('blue')), 'intruder', { 'tenant.example/red': 'true' }),
    ).toBe(false);
  });
  it('admits the namespaces whose labels match the selector', () => {
    const red = must(tenants.get('red'));
    expect(tenantAdmitsNamespace(red, 'any', { 'tenant.example/red': 'true' })).toBe(true);
    expect(tenantAdmitsNamespace(red, 'any', { 'tenant.example/red': 'false' })).toBe(false);
    expect(tenantAdmitsNamespace(red, 'any', undefined)).toBe(false);
    const green = must(tenants.get('green'));
    expect(tenantAdmitsNamespace(green, 'legacy', {})).toBe(true);
    expect(tenantAdmitsNamespace(green, 'x', { team: 'g2' })).toBe(true);
    expect(tenantAdmitsNamespace(green, 'x', { team: 'g3' })).toBe(false);
  });
  it('an empty selector admits every namespace; no names and no selector admit none', () => {
    expect(tenantAdmitsNamespace(must(tenants.get('everyone')), 'whatever', {})).toBe(true);
    expect(tenantAdmitsNamespace(must(tenants.get('reserved')), 'whatever', {})).toBe(false);
  });
});

describe('admitPolicy', () => {
  it('admits a policy whose SmcTenant admits its namespace', () => {
    const p = policy('p', { tenant: 'blue' }, { namespace: 'shop' });
    expect(admitPolicy(p, lookup, {})).toEqual({
      admitted: true,
      reason: 'TenantAdmitted',
      message: 'SmcTenant "blue" admits namespace "shop"',
    });
  });
  it('rejects a spoofing policy: another namespace naming the tenant', () => {
    const p = policy('spoof', { tenant: 'blue' }, { namespace: 'intruder' });
    const a = admitPolicy(p, lookup, { 'tenant.example/red': 'true' });
    expect(a.admitted).toBe(false);
    expect(a.reason).toBe('NamespaceNotAdmitted');
    expect(a.message).toBe(notAdmittedMessage('blue', 'intruder'));
    expect(a.message).toBe(
      'SmcTenant "blue" does not admit namespace "intruder": a cluster admin must list the namespace in spec.namespaces or label it to match spec.namespaceSelector',
    );
  });
  it('rejects a tenant no SmcTenant declares (the secure default)', () => {
    const a = admitPolicy(policy('p', { tenant: 'nobody' }, { namespace: 'shop' }), lookup, {});
    expect(a).toMatchObject({ admitted: false, reason: 'TenantNotFound' });
    expect(a.message).toBe(
      'no SmcTenant "nobody" exists: a cluster admin must create it and admit namespace "shop"',
    );
  });
});

describe('status of a policy that is not admitted', () => {
  const now = new Date('2026-03-01T12:00:00.000Z');
  const ok = (): boolean => true;

  it('is not Ready, is Degraded and says why in TenantAdmitted=False', () => {
    const p = policy('spoof', { tenant: 'blue' }, { namespace: 'intruder' });
    const res = resolveNamespace([pod('a', {}, { namespace: 'intruder', ready: true })], [p]);
    const admission = admitPolicy(p, lookup, {});
    const s = computeStatus(p, must(res.policies.get('intruder/spoof')), ok, now, admission);
    const cond = (t: string) => s.conditions?.find((c) => c.type === t);
    expect(cond('TenantAdmitted')).toMatchObject({ status: 'False', reason: 'NamespaceNotAdmitted' });
    expect(cond('Ready')).toMatchObject({ status: 'False', reason: 'NamespaceNotAdmitted' });
    expect(cond('Degraded')).toMatchObject({ status: 'True', reason: 'NamespaceNotAdmitted' });
    expect(cond('Degraded')?.message).toContain('no pod of this policy is published in the directory');
    // A bad-news Event for each condition that flipped, TenantAdmitted=False included.
    const events = conditionChanges([], s.conditions ?? []);
    expect(events.find((e) => e.type === 'TenantAdmitted')?.eventType).toBe('Warning');
  });

  it('an admitted policy reports TenantAdmitted=True as good news', () => {
    const p = policy('p', { tenant: 'blue' }, { namespace: 'shop' });
    const res = resolveNamespace([pod('a', {}, { namespace: 'shop', ready: true })], [p]);
    const s = computeStatus(p, must(res.policies.get('shop/p')), ok, now, admitPolicy(p, lookup, {}));
    expect(s.conditions?.find((c) => c.type === 'TenantAdmitted')?.status).toBe('True');
    expect(s.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
    const old = (s.conditions ?? []).map((c) =>
      c.type === 'TenantAdmitted' ? { ...c, status: 'False' as const } : c,
    );
    expect(conditionChanges(old, s.conditions ?? [])).toEqual([
      expect.objectContaining({ type: 'TenantAdmitted', status: 'True', eventType: 'Normal' }),
    ]);
  });
});
