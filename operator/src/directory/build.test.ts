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
      podIPs: ['10.0.0.1'],
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

describe('dual-stack pods', () => {
  const p = policy('p', { tenant: 'blue' });
  const dual = pod('a', {}, { ip: '10.0.0.1', ips: ['10.0.0.1', 'fd00:10:244:1::5'], ready: true });

  it('lists every pod IP, the primary first, and shards by the primary', () => {
    const e = must(endpointFor(dual, p, 15100, true));
    expect(e.podIP).toBe('10.0.0.1');
    expect(e.podIPs).toEqual(['10.0.0.1', 'fd00:10:244:1::5']);
    // An IPv6-primary pod (the cluster's first family is IPv6) keeps that order.
    const v6first = pod('b', {}, { ip: 'fd00::7', ips: ['fd00::7', '10.0.0.7'], ready: true });
    expect(endpointFor(v6first, p, 15100, true)?.podIPs).toEqual(['fd00::7', '10.0.0.7']);
    // The primary goes first even if a status lists it later; duplicates and non-IPs are dropped
    // (one would make the sidecars refuse the whole shard).
    const odd = pod(
      'c',
      {},
      { ip: '10.0.0.8', ips: ['fd00::8', '10.0.0.8', 'fd00::8', 'bogus'], ready: true },
    );
    expect(endpointFor(odd, p, 15100, true)?.podIPs).toEqual(['10.0.0.8', 'fd00::8']);
    const views = buildViews([e], new Map([['ns', [{ tenant: 'blue', allowedPeerTenants: [] }]]]), 4);
    const shards = views.get('ns') ?? [];
    const holding = shards.filter((s) => s.endpoints > 0).map((s) => s.shard);
    expect(holding).toEqual([shardOf('10.0.0.1', 4)]);
    const doc = DirectorySchema.parse(JSON.parse(shards[holding[0] ?? 0]?.json ?? '{}'));
    expect(doc.endpoints[0]?.podIPs).toEqual(['10.0.0.1', 'fd00:10:244:1::5']);
  });

  it('the directory schema takes IP literals only in podIPs, and an older shard without them', () => {
    const base = { version: 1, shard: 0, shards: 1 };
    const e = must(endpointFor(dual, p, 15100, true));
    expect(DirectorySchema.safeParse({ ...base, endpoints: [e] }).success).toBe(true);
    const { podIPs: _omitted, ...older } = e;
    expect(DirectorySchema.safeParse({ ...base, endpoints: [older] }).success).toBe(true);
    for (const bad of ['fd00::1%eth0', 'pod-a', '10.0.0.256', ''])
      expect(DirectorySchema.safeParse({ ...base, endpoints: [{ ...e, podIPs: [bad] }] }).success).toBe(
        false,
      );
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
