/**
 * Inventory sources that read the kernel's view of the node: /sys/class/infiniband for RDMA
 * devices (ports, GID and PKey tables, GID types and netdevs; no device access needed) and
 * /proc/net/vlan/config plus /sys/class/net for VLAN netdevs. Paths are parameters so tests run
 * against a fake tree.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type {
  InventoryDevice,
  InventoryGid,
  InventoryGidType,
  InventoryPort,
  RdmaInventorySource,
  VlanNetdev,
  VlanSource,
} from './inventory.js';
import { roceMtuFromNetdevMtu } from './mapping.js';

async function readText(path: string): Promise<string | null> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return null;
  }
}

async function listDir(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch {
    return [];
  }
}

function numericEntries(names: string[]): number[] {
  return names
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

/** sysfs gid_attrs/types/N: "IB/RoCE v1", "RoCE v2" (or unreadable for unused entries). */
export function parseGidType(text: string | null, linkLayer: string | null): InventoryGidType {
  const t = (text ?? '').trim().toLowerCase();
  if (t === 'roce v2') return 'RoCEv2';
  if (t === 'ib/roce v1') return linkLayer?.toLowerCase() === 'infiniband' ? 'IB' : 'RoCEv1';
  if (t === '' && linkLayer?.toLowerCase() === 'infiniband') return 'IB';
  return 'unknown';
}

export interface SysfsPaths {
  /** /sys/class/infiniband */
  readonly infiniband: string;
  /** /sys/class/net */
  readonly net: string;
}

export const DEFAULT_SYSFS_PATHS: SysfsPaths = { infiniband: '/sys/class/infiniband', net: '/sys/class/net' };

/** Reads RDMA devices from sysfs: /sys/class/infiniband/<dev>/ports/<n>/{state,link_layer,gids,pkeys,gid_attrs}. */
export class SysfsInventorySource implements RdmaInventorySource {
  readonly kind = 'sysfs';

  constructor(private readonly paths: SysfsPaths = DEFAULT_SYSFS_PATHS) {}

  async listDevices(): Promise<InventoryDevice[]> {
    const names = (await listDir(this.paths.infiniband)).sort();
    const devices: InventoryDevice[] = [];
    for (const name of names) devices.push(await this.readDevice(name));
    return devices;
  }

  private async readDevice(name: string): Promise<InventoryDevice> {
    const dir = join(this.paths.infiniband, name);
    let pciAddress: string | null;
    try {
      // device -> ../../../0000:3b:00.0 on PCI devices; soft-RoCE (rxe) has none.
      pciAddress = basename(await readlink(join(dir, 'device')));
    } catch {
      pciAddress = null;
    }
    const ports: InventoryPort[] = [];
    for (const port of numericEntries(await listDir(join(dir, 'ports')))) {
      ports.push(await this.readPort(dir, port));
    }
    return { name, pciAddress, ports };
  }

  private async readPort(deviceDir: string, port: number): Promise<InventoryPort> {
    const dir = join(deviceDir, 'ports', String(port));
    const state = (await readText(join(dir, 'state'))) ?? 'Unknown';
    const linkLayer = await readText(join(dir, 'link_layer'));
    const gids: InventoryGid[] = [];
    for (const index of numericEntries(await listDir(join(dir, 'gids')))) {
      const gid = await readText(join(dir, 'gids', String(index)));
      if (gid === null || /^[0:]+$/.test(gid)) continue;
      // Unused entries fail to read their attributes (EINVAL); used ones name type and netdev.
      const type = parseGidType(await readText(join(dir, 'gid_attrs', 'types', String(index))), linkLayer);
      const netdev = await readText(join(dir, 'gid_attrs', 'ndevs', String(index)));
      gids.push({ index, gid, type, netdev: netdev === '' ? null : netdev });
    }
    const pkeys: number[] = [];
    for (const index of numericEntries(await listDir(join(dir, 'pkeys')))) {
      const text = await readText(join(dir, 'pkeys', String(index)));
      if (text !== null && /^0x[0-9a-fA-F]{1,4}$/.test(text)) pkeys.push(parseInt(text, 16));
    }
    const netdev = gids.find((g) => g.index === 0)?.netdev ?? gids.find((g) => g.netdev)?.netdev ?? null;
    let activeMtu: number | null = null;
    if (linkLayer?.toLowerCase() === 'ethernet' && netdev) {
      const mtu = Number(await readText(join(this.paths.net, netdev, 'mtu')));
      activeMtu = Number.isInteger(mtu) && mtu > 0 ? (roceMtuFromNetdevMtu(mtu) ?? null) : null;
    }
    return { port, state, linkLayer, activeMtu, netdev, gids, pkeys };
  }
}

/**
 * /proc/net/vlan/config:
 *   VLAN Dev name    | VLAN ID
 *   Name-Type: VLAN_NAME_TYPE_RAW_PLUS_VID_NO_PAD
 *   eth0.100       | 100  | eth0
 */
export function parseVlanConfig(text: string): VlanNetdev[] {
  const out: VlanNetdev[] = [];
  for (const line of text.split('\n')) {
    const cols = line.split('|').map((c) => c.trim());
    if (cols.length < 2) continue;
    const [netdev, id, parent] = cols;
    if (!netdev || !id || !/^\d+$/.test(id)) continue;
    out.push({ netdev, vlan: Number(id), parent: parent || null });
  }
  return out;
}

export interface VlanPaths {
  /** /proc/net/vlan/config (mode 0600, root) */
  readonly procConfig: string;
  /** /sys/class/net */
  readonly net: string;
}

export const DEFAULT_VLAN_PATHS: VlanPaths = { procConfig: '/proc/net/vlan/config', net: '/sys/class/net' };

/**
 * VLAN netdevs of the node's network namespace. /proc/net/vlan/config is authoritative; when it
 * is absent (8021q not loaded: then there are no VLANs) or unreadable, sysfs is used: a netdev
 * whose uevent says DEVTYPE=vlan, its parent from lower_<dev>, its id from the name (dev.ID or
 * vlanID), which is all sysfs exposes.
 */
export class ProcVlanSource implements VlanSource {
  constructor(private readonly paths: VlanPaths = DEFAULT_VLAN_PATHS) {}

  async listVlans(): Promise<VlanNetdev[]> {
    let text: string | null = null;
    let missing = false;
    try {
      text = await readFile(this.paths.procConfig, 'utf8');
    } catch (err) {
      missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    }
    if (text !== null) return parseVlanConfig(text);
    if (missing) return [];
    return this.fromSysfs();
  }

  private async fromSysfs(): Promise<VlanNetdev[]> {
    const out: VlanNetdev[] = [];
    for (const name of (await listDir(this.paths.net)).sort()) {
      const uevent = await readText(join(this.paths.net, name, 'uevent'));
      if (uevent === null || !/^DEVTYPE=vlan$/m.test(uevent)) continue;
      const m = /^(?:.+\.|vlan)(\d{1,4})$/.exec(name);
      if (!m) continue;
      const lower = (await listDir(join(this.paths.net, name))).find((e) => e.startsWith('lower_'));
      out.push({ netdev: name, vlan: Number(m[1]), parent: lower ? lower.slice('lower_'.length) : null });
    }
    return out;
  }
}
