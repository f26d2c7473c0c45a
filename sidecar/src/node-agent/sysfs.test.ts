import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inventoryToContent } from './mapping.js';
import { ProcVlanSource, SysfsInventorySource, parseGidType, parseVlanConfig } from './sysfs.js';

let root: string;

async function put(path: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
}

const ZERO_GID = '0000:0000:0000:0000:0000:0000:0000:0000';

/** A sysfs tree like the kernel's for rxe0 on eth0 (plus VLAN eth0.100) and an IB HCA on PCI. */
async function fakeTree(): Promise<void> {
  const rxe = 'sys/class/infiniband/rxe0/ports/1';
  await put(`${rxe}/state`, '4: ACTIVE\n');
  await put(`${rxe}/link_layer`, 'Ethernet\n');
  await put(`${rxe}/gids/0`, 'fe80:0000:0000:0000:5054:00ff:fe12:3456\n');
  await put(`${rxe}/gids/1`, '0000:0000:0000:0000:0000:ffff:0a4d:0001\n');
  await put(`${rxe}/gids/2`, '0000:0000:0000:0000:0000:ffff:0a64:0001\n');
  await put(`${rxe}/gids/3`, `${ZERO_GID}\n`);
  await put(`${rxe}/gid_attrs/types/0`, 'RoCE v2\n');
  await put(`${rxe}/gid_attrs/types/1`, 'RoCE v2\n');
  await put(`${rxe}/gid_attrs/types/2`, 'RoCE v2\n');
  await put(`${rxe}/gid_attrs/ndevs/0`, 'eth0\n');
  await put(`${rxe}/gid_attrs/ndevs/1`, 'eth0\n');
  await put(`${rxe}/gid_attrs/ndevs/2`, 'eth0.100\n');
  await put(`${rxe}/pkeys/0`, '0xffff\n');
  await put(`${rxe}/pkeys/1`, '0x0000\n');
  await put('sys/class/net/eth0/mtu', '1500\n');
  await put('sys/class/net/eth0/uevent', 'INTERFACE=eth0\nIFINDEX=2\n');
  await put('sys/class/net/eth0.100/mtu', '1500\n');
  await put('sys/class/net/eth0.100/uevent', 'DEVTYPE=vlan\nINTERFACE=eth0.100\nIFINDEX=3\n');
  await mkdir(join(root, 'sys/class/net/eth0.100/lower_eth0'), { recursive: true });

  const mlx = 'sys/class/infiniband/mlx5_0';
  await put(`${mlx}/ports/1/state`, '1: DOWN\n');
  await put(`${mlx}/ports/1/link_layer`, 'InfiniBand\n');
  await put(`${mlx}/ports/1/gids/0`, 'fe80:0000:0000:0000:248a:0703:0049:d4f0\n');
  await put(`${mlx}/ports/1/pkeys/0`, '0xffff\n');
  await put(`${mlx}/ports/1/pkeys/1`, '0x8001\n');
  await mkdir(join(root, 'sys/devices/pci0000:00/0000:3b:00.0'), { recursive: true });
  await symlink('../../../devices/pci0000:00/0000:3b:00.0', join(root, mlx, 'device'));
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'smc-node-agent-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('SysfsInventorySource', () => {
  it('reads devices, ports, GIDs with type and netdev, PKeys, PCI address and RoCE MTU', async () => {
    await fakeTree();
    const source = new SysfsInventorySource({
      infiniband: join(root, 'sys/class/infiniband'),
      net: join(root, 'sys/class/net'),
    });
    const devices = await source.listDevices();
    expect(devices.map((d) => d.name)).toEqual(['mlx5_0', 'rxe0']);
    const [mlx, rxe] = devices;
    expect(mlx?.pciAddress).toBe('0000:3b:00.0');
    expect(mlx?.ports[0]).toMatchObject({
      port: 1,
      state: '1: DOWN',
      linkLayer: 'InfiniBand',
      pkeys: [0xffff, 0x8001],
    });
    expect(mlx?.ports[0]?.gids).toEqual([
      { index: 0, gid: 'fe80:0000:0000:0000:248a:0703:0049:d4f0', type: 'IB', netdev: null },
    ]);
    expect(rxe?.pciAddress).toBeNull();
    expect(rxe?.ports[0]).toMatchObject({ port: 1, linkLayer: 'Ethernet', netdev: 'eth0', activeMtu: 1024 });
    expect(rxe?.ports[0]?.gids.map((g) => [g.index, g.type, g.netdev])).toEqual([
      [0, 'RoCEv2', 'eth0'],
      [1, 'RoCEv2', 'eth0'],
      [2, 'RoCEv2', 'eth0.100'],
    ]);

    const vlans = await new ProcVlanSource({
      procConfig: join(root, 'proc/net/vlan/config'),
      net: join(root, 'sys/class/net'),
    }).listVlans();
    expect(vlans).toEqual([]); // no /proc/net/vlan/config: 8021q not loaded, no VLANs

    await put(
      'proc/net/vlan/config',
      'VLAN Dev name\t | VLAN ID\nName-Type: VLAN_NAME_TYPE_RAW_PLUS_VID_NO_PAD\neth0.100       | 100  | eth0\n',
    );
    const content = inventoryToContent({
      devices,
      vlans: await new ProcVlanSource({
        procConfig: join(root, 'proc/net/vlan/config'),
        net: join(root, 'sys/class/net'),
      }).listVlans(),
    });
    expect(content.devices[1]?.ports[0]?.gids[2]).toEqual({
      index: 2,
      gid: '::ffff:10.100.0.1',
      type: 'RoCEv2',
      netdev: 'eth0.100',
      vlan: 100,
    });
    expect(content.vlanNetdevs).toEqual([{ vlan: 100, netdev: 'eth0.100', parent: 'eth0' }]);
  });

  it('no /sys/class/infiniband: no devices', async () => {
    const source = new SysfsInventorySource({ infiniband: join(root, 'nope'), net: join(root, 'nope') });
    expect(await source.listDevices()).toEqual([]);
  });
});

describe('VLANs', () => {
  it('parses /proc/net/vlan/config', () => {
    const text = [
      'VLAN Dev name\t | VLAN ID',
      'Name-Type: VLAN_NAME_TYPE_RAW_PLUS_VID_NO_PAD',
      'eth0.100       | 100  | eth0',
      'vlan200        | 200  | bond0',
      '',
    ].join('\n');
    expect(parseVlanConfig(text)).toEqual([
      { netdev: 'eth0.100', vlan: 100, parent: 'eth0' },
      { netdev: 'vlan200', vlan: 200, parent: 'bond0' },
    ]);
  });

  it('falls back to sysfs when /proc/net/vlan/config cannot be read', async () => {
    if (process.getuid?.() === 0) {
      // root reads a mode-000 file anyway; simulate the unreadable file with a directory (EISDIR).
      await mkdir(join(root, 'proc/net/vlan/config'), { recursive: true });
    } else {
      await put('proc/net/vlan/config', 'x');
      await chmod(join(root, 'proc/net/vlan/config'), 0o000);
    }
    await fakeTree();
    const vlans = await new ProcVlanSource({
      procConfig: join(root, 'proc/net/vlan/config'),
      net: join(root, 'sys/class/net'),
    }).listVlans();
    expect(vlans).toEqual([{ netdev: 'eth0.100', vlan: 100, parent: 'eth0' }]);
  });

  it('GID types', () => {
    expect(parseGidType('RoCE v2', 'Ethernet')).toBe('RoCEv2');
    expect(parseGidType('IB/RoCE v1', 'Ethernet')).toBe('RoCEv1');
    expect(parseGidType('IB/RoCE v1', 'InfiniBand')).toBe('IB');
    expect(parseGidType(null, 'InfiniBand')).toBe('IB');
    expect(parseGidType(null, 'Ethernet')).toBe('unknown');
  });
});
