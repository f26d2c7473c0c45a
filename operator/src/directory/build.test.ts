import { describe, expect, it } from 'vitest';
import {
  DirectorySchema,
  mergeDirectories,
  shardOf,
  tenantsMayPeer,
  type DirectoryEndpoint,
} from '../api/directory.js';
import { pod, policy, must } from '../testing/fixtures.js';
import { buildViews, endpointFor, hashContent, namespaceProfiles, renderShard } from './build.js';

const ep = (ip: string, tenant: string, allowed: string[] = [], ns = 'ns'): DirectoryEndpoint => ({
  podIP: ip,
  node: 'n',
  namespace: ns,
  pod: `p-${ip}`,
  tenant,
  sidecarPort: 15100,
  allowedPeerTenants: allowed,
});

describe('endpointFor', () => {
  const p = policy('p', {
    tenant: 'blue',
    vlans: [7, 8],
    pkeys: ['0x8001'],
    allowedPeerTenants: ['red', 'green'],
  });
  it('publishes running injected pods with a ready sidecar', () => {
    const e = endpointFor(pod('a', {}, { ip: '10.0.0.1', ready: true }), p, 15100, true);
    expect(e).toEqual({
      podIP: '10.0.0.1',
      node: 'node-1',
      namespace: 'ns',
      pod: 'a',
      tenant: 'blue',
      vlan: 7,
      pkey: '0x8001',
      sidecarPort: 15100,
      allowedPeerTenants: ['green', 'red'],
    });
    expect(DirectorySchema.parse({ version: 1, shard: 0, shards: 1, endpoints: [e] })).toBeTruthy();
  });
  it('leaves out pods that cannot take SMC-R connections', () => {
    expect(endpointFor(pod('a', {}, { ip: '10.0.0.1', ready: false }), p, 15100, true)).toBeUndefined();
    expect(endpointFor(pod('a', {}, { ready: true }), p, 15100, true)).toBeUndefined(); // no IP
    expect(
      endpointFor(pod('a', {}, { ip: '1.1.1.1', ready: true, injected: false }), p, 15100, true),
    ).toBeUndefined();
    expect(endpointFor(pod('a', {}, { ip: '1.1.1.1', ready: true }), p, 15100, false)).toBeUndefined();
    expect(
      endpointFor(pod('a', {}, { ip: '1.1.1.1', ready: true, deleting: true }), p, 15100, true),
    ).toBeUndefined();
    const off = policy('off', { mode: 'Disabled' });
    expect(endpointFor(pod('a', {}, { ip: '1.1.1.1', ready: true }), off, 15100, true)).toBeUndefined();
    expect(endpointFor(pod('a', {}, { ip: '1.1.1.1', ready: true }), undefined, 15100, true)).toBeUndefined();
  });
});

describe('tenant visibility', () => {
  it('same tenant always, other tenants only when both allow each other', () => {
    expect(
      tenantsMayPeer({ tenant: 'a', allowedPeerTenants: [] }, { tenant: 'a', allowedPeerTenants: [] }),
    ).toBe(true);
    expect(
      tenantsMayPeer({ tenant: 'a', allowedPeerTenants: ['b'] }, { tenant: 'b', allowedPeerTenants: [] }),
    ).toBe(false);
    expect(
      tenantsMayPeer({ tenant: 'a', allowedPeerTenants: ['b'] }, { tenant: 'b', allowedPeerTenants: ['a'] }),
    ).toBe(true);
  });
  it('namespace profiles dedupe and skip Disabled and deleted policies', () => {
    const pr = namespaceProfiles([
      policy('a', { tenant: 'x', allowedPeerTenants: ['z', 'y'] }),
      policy('b', { tenant: 'x', allowedPeerTenants: ['y', 'z'] }),
      policy('c', { tenant: 'q', mode: 'Disabled' }),
      policy('d', { tenant: 'r' }, { deleting: true }),
    ]);
    expect(pr).toEqual([{ tenant: 'x', allowedPeerTenants: ['y', 'z'] }]);
  });
});

describe('buildViews and hashing', () => {
  const endpoints = [
    ep('10.0.0.1', 'blue', [], 'a'),
    ep('10.0.0.2', 'blue', [], 'a'),
    ep('10.0.0.3', 'red', ['blue'], 'b'),
    ep('10.0.0.4', 'green', [], 'c'),
  ];
  const profiles = new Map([
    ['a', [{ tenant: 'blue', allowedPeerTenants: ['red'] }]],
    ['c', [{ tenant: 'green', allowedPeerTenants: [] }]],
  ]);

  it('gives each namespace the endpoints its tenants may reach, split by podIP shard', () => {
    const views = buildViews(endpoints, profiles, 4);
    expect([...views.keys()]).toEqual(['a', 'c']);
    const a = mergeDirectories((views.get('a') ?? []).map((s) => JSON.parse(s.json)));
    expect([...a.keys()].sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    const c = mergeDirectories((views.get('c') ?? []).map((s) => JSON.parse(s.json)));
    expect([...c.keys()]).toEqual(['10.0.0.4']);
    for (const s of views.get('a') ?? []) {
      const doc = DirectorySchema.parse(JSON.parse(s.json));
      expect(doc.shards).toBe(4);
      for (const e of doc.endpoints) expect(shardOf(e.podIP, 4)).toBe(s.shard);
    }
  });

  it('is deterministic: same content in any order gives the same bytes and hash', () => {
    const v1 = buildViews(endpoints, profiles, 4);
    const v2 = buildViews([...endpoints].reverse(), profiles, 4);
    expect(v1.get('a')?.map((s) => s.hash)).toEqual(v2.get('a')?.map((s) => s.hash));
    expect(renderShard(0, 1, [must(endpoints[1]), must(endpoints[0])]).json).toBe(
      renderShard(0, 1, [must(endpoints[0]), must(endpoints[1])]).json,
    );
  });

  it('a change to one endpoint changes only the hash of its own shard', () => {
    const before = buildViews(endpoints, profiles, 4).get('a') ?? [];
    const changed = endpoints.map((e) => (e.podIP === '10.0.0.2' ? { ...e, node: 'other' } : e));
    const after = buildViews(changed, profiles, 4).get('a') ?? [];
    const differing = before.filter((s, i) => s.hash !== after[i]?.hash).map((s) => s.shard);
    expect(differing).toEqual([shardOf('10.0.0.2', 4)]);
  });

  it('hash is sha256 of the stored JSON', () => {
    const s = renderShard(0, 1, []);
    expect(s.json).toBe('{"version":1,"shard":0,"shards":1,"endpoints":[]}');
    expect(s.hash).toBe(hashContent(s.json));
    expect(s.hash).toMatch(/^[0-9a-f]{64}$/);
  });
});
