import { describe, expect, it } from 'vitest';
import type { NodeInventory } from './inventory.js';
import {
  LIMITS,
  buildSmcNode,
  formatPkey,
  inventoryToContent,
  labelsSatisfied,
  normalizeGid,
  normalizeLinkLayer,
  normalizePortState,
  roceMtuFromNetdevMtu,
  sameContent,
  smcNodeLabels,
} from './mapping.js';
import { rxeInventory } from './testing.js';

const T0 = new Date('2025-01-02T03:04:05.000Z');

describe('normalizers', () => {
  it.each([
    ['4: ACTIVE', 'Active'],
    ['1: DOWN', 'Down'],
    ['2: INIT', 'Init'],
    ['3: ARMED', 'Armed'],
    ['5: ACTIVE_DEFER', 'ActiveDefer'],
    ['ACTIVE', 'Active'],
    ['IBV_PORT_DOWN', 'Down'],
    ['ACTIVE_DEFER', 'ActiveDefer'],
    ['Active', 'Active'],
    ['NOP', 'Unknown'],
    ['9: WEIRD', 'Unknown'],
    ['', 'Unknown'],
  ] as const)('port state %j -> %s', (raw, want) => {
    expect(normalizePortState(raw)).toBe(want);
  });

  it('port state from a number', () => {
    expect(normalizePortState(4)).toBe('Active');
    expect(normalizePortState(0)).toBe('Unknown');
  });

  it('link layer', () => {
    expect(normalizeLinkLayer('Ethernet')).toBe('Ethernet');
    expect(normalizeLinkLayer('InfiniBand\n')).toBe('InfiniBand');
    expect(normalizeLinkLayer('Unspecified')).toBe('Unknown');
    expect(normalizeLinkLayer(null)).toBe('Unknown');
  });

  it('GIDs: one spelling, zero and garbage dropped', () => {
    expect(normalizeGid('fe80:0000:0000:0000:5054:00ff:fe12:3456')).toBe('fe80::5054:ff:fe12:3456');
    expect(normalizeGid('0000:0000:0000:0000:0000:ffff:0a4d:0001')).toBe('::ffff:10.77.0.1');
    expect(normalizeGid('::ffff:10.77.0.1')).toBe('::ffff:10.77.0.1');
    expect(normalizeGid('FE80::1')).toBe('fe80::1');
    expect(normalizeGid('0000:0000:0000:0000:0000:0000:0000:0000')).toBeNull();
    expect(normalizeGid('::')).toBeNull();
    expect(normalizeGid('not-a-gid')).toBeNull();
    expect(normalizeGid('10.0.0.1')).toBeNull();
    const longest = normalizeGid('fe80:1234:5678:9abc:def0:1234:5678:9abc');
    expect(longest?.length).toBeLessThanOrEqual(39);
  });

  it('PKeys: unused entries dropped, 4 hex digits', () => {
    expect(formatPkey(0xffff)).toBe('0xffff');
    expect(formatPkey(0x7fff)).toBe('0x7fff');
    expect(formatPkey(0x8001)).toBe('0x8001');
    expect(formatPkey(0x12)).toBe('0x0012');
    expect(formatPkey(0)).toBeNull();
    expect(formatPkey(0x8000)).toBeNull();
    expect(formatPkey(0x10000)).toBeNull();
    expect(formatPkey(-1)).toBeNull();
  });

  it('RoCE MTU from the netdev MTU', () => {
    expect(roceMtuFromNetdevMtu(1500)).toBe(1024);
    expect(roceMtuFromNetdevMtu(9000)).toBe(4096);
    expect(roceMtuFromNetdevMtu(4200)).toBe(4096);
    expect(roceMtuFromNetdevMtu(4000)).toBe(2048);
    expect(roceMtuFromNetdevMtu(300)).toBeUndefined();
  });
});

describe('buildSmcNode', () => {
  it('maps a soft-RoCE node to an SmcNode named after the node', () => {
    const obj = buildSmcNode('worker-1', rxeInventory(), T0);
    expect(obj).toEqual({
      apiVersion: 'smc.dev/v1alpha1',
      kind: 'SmcNode',
      metadata: {
        name: 'worker-1',
        labels: { 'app.kubernetes.io/managed-by': 'smc-node-agent', 'smc.dev/node': 'worker-1' },
      },
      spec: { nodeName: 'worker-1' },
      status: {
        observedTime: '2025-01-02T03:04:05.000Z',
        deviceCount: 1,
        devices: [
          {
            name: 'rxe0',
            ports: [
              {
                port: 1,
                state: 'Active',
                linkLayer: 'Ethernet',
                activeMtu: 1024,
                netdev: 'eth0',
                gids: [
                  { index: 0, gid: 'fe80::5054:ff:fe12:3456', type: 'RoCEv2', netdev: 'eth0' },
                  { index: 1, gid: '::ffff:10.77.0.1', type: 'RoCEv2', netdev: 'eth0' },
                  { index: 2, gid: '::ffff:10.100.0.1', type: 'RoCEv2', netdev: 'eth0.100', vlan: 100 },
                ],
                pkeys: ['0xffff'],
              },
            ],
          },
        ],
        vlanNetdevs: [{ vlan: 100, netdev: 'eth0.100', parent: 'eth0' }],
      },
    });
  });

  it('an InfiniBand HCA keeps its PCI address, IB GIDs and several PKeys', () => {
    const inv: NodeInventory = {
      devices: [
        {
          name: 'mlx5_0',
          pciAddress: '0000:3B:00.0',
          ports: [
            {
              port: 1,
              state: 'ACTIVE',
              linkLayer: 'InfiniBand',
              activeMtu: 4096,
              gids: [{ index: 0, gid: 'fe80::248a:703:49:d4f0', type: 'IB' }],
              pkeys: [0xffff, 0x8001, 0x8001, 0x0000],
            },
          ],
        },
      ],
      vlans: [],
    };
    const device = inventoryToContent(inv).devices[0];
    expect(device?.pciAddress).toBe('0000:3b:00.0');
    expect(device?.ports[0]).toEqual({
      port: 1,
      state: 'Active',
      linkLayer: 'InfiniBand',
      activeMtu: 4096,
      gids: [{ index: 0, gid: 'fe80::248a:703:49:d4f0', type: 'IB' }],
      pkeys: ['0xffff', '0x8001'],
    });
  });

  it('is independent of the order the sources list things in', () => {
    const a = rxeInventory();
    const b: NodeInventory = {
      devices: [
        { name: 'rxe1', ports: [] },
        ...a.devices.map((d) => ({
          ...d,
          ports: d.ports.map((p) => ({ ...p, gids: [...p.gids].reverse() })),
        })),
      ],
      vlans: [{ netdev: 'eth1.7', vlan: 7, parent: 'eth1' }, ...a.vlans],
    };
    const c: NodeInventory = { devices: [...b.devices].reverse(), vlans: [...b.vlans].reverse() };
    expect(inventoryToContent(b)).toEqual(inventoryToContent(c));
    expect(inventoryToContent(b).devices.map((d) => d.name)).toEqual(['rxe0', 'rxe1']);
    expect(inventoryToContent(b).vlanNetdevs.map((v) => v.vlan)).toEqual([7, 100]);
  });

  it('drops what the CRD would reject: bad MTU, bad PCI address, bad netdev names, bad VLAN ids', () => {
    const inv: NodeInventory = {
      devices: [
        {
          name: 'dev0',
          pciAddress: 'virtual',
          ports: [
            {
              port: 1,
              state: 'ACTIVE',
              linkLayer: 'Ethernet',
              activeMtu: 1500,
              netdev: 'a-very-long-netdev-name',
              gids: [{ index: 0, gid: 'fe80::1', type: 'RoCEv2', netdev: 'bad/name' }],
              pkeys: [],
            },
            { port: 0, state: 'ACTIVE', gids: [], pkeys: [] },
            { port: 1, state: 'DOWN', gids: [], pkeys: [] },
          ],
        },
      ],
      vlans: [
        { netdev: 'eth0.0', vlan: 0 },
        { netdev: 'eth0.4095', vlan: 4095 },
        { netdev: 'eth0.5', vlan: 5 },
        { netdev: 'eth0.5', vlan: 6 },
      ],
    };
    const content = inventoryToContent(inv);
    expect(content.devices[0]).toEqual({
      name: 'dev0',
      ports: [
        {
          port: 1,
          state: 'Active',
          linkLayer: 'Ethernet',
          gids: [{ index: 0, gid: 'fe80::1', type: 'RoCEv2' }],
          pkeys: [],
        },
      ],
    });
    expect(content.vlanNetdevs).toEqual([{ vlan: 5, netdev: 'eth0.5' }]);
  });

  it('caps lists at the CRD limits', () => {
    const gids = Array.from({ length: 300 }, (_, i) => ({
      index: i,
      gid: `fe80::${(i + 1).toString(16)}`,
      type: 'RoCEv2' as const,
    }));
    const pkeys = Array.from({ length: 200 }, (_, i) => i + 1);
    const devices = Array.from({ length: 70 }, (_, i) => ({
      name: `d${String(i).padStart(2, '0')}`,
      ports: i === 0 ? [{ port: 1, state: 'ACTIVE', gids, pkeys }] : [],
    }));
    const content = inventoryToContent({ devices, vlans: [] });
    expect(content.devices).toHaveLength(LIMITS.devices);
    expect(content.deviceCount).toBe(LIMITS.devices);
    expect(content.devices[0]?.ports[0]?.gids).toHaveLength(LIMITS.gidsPerPort);
    expect(content.devices[0]?.ports[0]?.pkeys).toHaveLength(LIMITS.pkeysPerPort);
  });

  it('a node without RDMA devices still gets an SmcNode', () => {
    const obj = buildSmcNode('cpu-only', { devices: [], vlans: [] }, T0);
    expect(obj.status).toEqual({
      observedTime: T0.toISOString(),
      deviceCount: 0,
      devices: [],
      vlanNetdevs: [],
    });
  });

  it('long node names are not copied into a label', () => {
    const name = `n${'x'.repeat(70)}.example.com`;
    expect(smcNodeLabels(name)).toEqual({ 'app.kubernetes.io/managed-by': 'smc-node-agent' });
  });
});

describe('change detection', () => {
  it('ignores observedTime', () => {
    const a = buildSmcNode('n', rxeInventory(), T0).status;
    const b = buildSmcNode('n', rxeInventory(), new Date(T0.getTime() + 60_000)).status;
    expect(sameContent(a, b)).toBe(true);
  });

  it('sees a port going down, a GID added, a VLAN removed', () => {
    const base = buildSmcNode('n', rxeInventory(), T0).status;
    const down = rxeInventory();
    const port = down.devices[0]?.ports[0];
    if (!port) throw new Error('fixture');
    const downInv: NodeInventory = {
      ...down,
      devices: [{ name: 'rxe0', ports: [{ ...port, state: '1: DOWN' }] }],
    };
    expect(sameContent(base, buildSmcNode('n', downInv, T0).status)).toBe(false);
    const moreGids: NodeInventory = {
      ...down,
      devices: [
        {
          name: 'rxe0',
          ports: [{ ...port, gids: [...port.gids, { index: 9, gid: 'fe80::9', type: 'RoCEv2' }] }],
        },
      ],
    };
    expect(sameContent(base, buildSmcNode('n', moreGids, T0).status)).toBe(false);
    expect(sameContent(base, buildSmcNode('n', { ...rxeInventory(), vlans: [] }, T0).status)).toBe(false);
  });

  it('is insensitive to key order of what the API server returned', () => {
    const status = buildSmcNode('n', rxeInventory(), T0).status;
    const reverseKeys = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reverseKeys)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reverseKeys(x)]),
            )
          : v;
    const roundTripped = reverseKeys(JSON.parse(JSON.stringify(status))) as typeof status;
    expect(JSON.stringify(roundTripped)).not.toBe(JSON.stringify(status));
    expect(sameContent(status, roundTripped)).toBe(true);
    expect(sameContent(null, { deviceCount: 0, devices: [], vlanNetdevs: [] })).toBe(true);
  });

  it('labels: desired ones must be present, others are left alone', () => {
    expect(labelsSatisfied({ a: '1', b: '2' }, { a: '1' })).toBe(true);
    expect(labelsSatisfied({ a: '2' }, { a: '1' })).toBe(false);
    expect(labelsSatisfied(null, { a: '1' })).toBe(false);
    expect(labelsSatisfied(undefined, {})).toBe(true);
  });
});
