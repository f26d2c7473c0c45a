/**
 * Pure mapping from a node's inventory to the SmcNode object the node agent publishes
 * (crds/smc.dev_smcnodes.yaml). Deterministic: the same inventory always gives the same object,
 * whatever order the sources listed things in, so "did anything change?" is a plain comparison.
 */
import { formatIpv6, parseIp } from '../net/ip.js';
import type { InventoryDevice, InventoryGid, InventoryPort, NodeInventory, VlanNetdev } from './inventory.js';

export const SMC_API_GROUP = 'smc.dev';
export const SMC_API_VERSION = 'v1alpha1';
export const SMCNODE_PLURAL = 'smcnodes';
export const SMCNODE_KIND = 'SmcNode';

/** Limits from the CRD schema; anything beyond them is cut (and counted by the caller's logs). */
export const LIMITS = {
  devices: 64,
  portsPerDevice: 16,
  gidsPerPort: 256,
  pkeysPerPort: 128,
  vlanNetdevs: 256,
  netdevName: 15,
} as const;

export type PortState = 'Down' | 'Init' | 'Armed' | 'Active' | 'ActiveDefer' | 'Unknown';
export type LinkLayer = 'InfiniBand' | 'Ethernet' | 'Unknown';
export type GidType = 'IB' | 'RoCEv1' | 'RoCEv2';

export interface SmcNodeGid {
  index: number;
  gid: string;
  type: GidType;
  netdev?: string;
  vlan?: number;
}

export interface SmcNodePort {
  port: number;
  state: PortState;
  linkLayer: LinkLayer;
  activeMtu?: number;
  netdev?: string;
  gids: SmcNodeGid[];
  pkeys: string[];
}

export interface SmcNodeDevice {
  name: string;
  pciAddress?: string;
  ports: SmcNodePort[];
}

export interface SmcNodeVlanNetdev {
  vlan: number;
  netdev: string;
  parent?: string;
}

/** status of an SmcNode, without observedTime (which is not content). */
export interface SmcNodeContent {
  deviceCount: number;
  devices: SmcNodeDevice[];
  vlanNetdevs: SmcNodeVlanNetdev[];
}

export interface SmcNodeStatus extends SmcNodeContent {
  observedTime?: string;
}

export interface SmcNodeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    labels?: Record<string, string>;
    resourceVersion?: string;
  };
  spec: { nodeName: string };
  status?: SmcNodeStatus;
}

const PORT_STATES: Record<number, PortState> = {
  1: 'Down',
  2: 'Init',
  3: 'Armed',
  4: 'Active',
  5: 'ActiveDefer',
};

const PORT_STATE_NAMES: Record<string, PortState> = {
  DOWN: 'Down',
  INIT: 'Init',
  ARMED: 'Armed',
  ACTIVE: 'Active',
  ACTIVE_DEFER: 'ActiveDefer',
  ACTIVEDEFER: 'ActiveDefer',
};

/** "4: ACTIVE" (sysfs), "ACTIVE", "IBV_PORT_ACTIVE", "Active" or 4 → Active; anything else → Unknown. */
export function normalizePortState(raw: string | number): PortState {
  if (typeof raw === 'number') return PORT_STATES[raw] ?? 'Unknown';
  const text = raw.trim();
  const m = /^(\d+)\s*:\s*(\S*)$/.exec(text);
  if (m) {
    const byName = PORT_STATE_NAMES[(m[2] ?? '').toUpperCase()];
    return byName ?? PORT_STATES[Number(m[1])] ?? 'Unknown';
  }
  if (/^\d+$/.test(text)) return PORT_STATES[Number(text)] ?? 'Unknown';
  const name = text.toUpperCase().replace(/^IBV_PORT_/, '');
  return PORT_STATE_NAMES[name] ?? 'Unknown';
}

export function normalizeLinkLayer(raw: string | null | undefined): LinkLayer {
  const t = (raw ?? '').trim().toLowerCase();
  if (t === 'ethernet') return 'Ethernet';
  if (t === 'infiniband') return 'InfiniBand';
  return 'Unknown';
}

const IB_MTUS = [256, 512, 1024, 2048, 4096] as const;

/** Only the five IB MTUs are valid; anything else is dropped. */
export function normalizeMtu(mtu: number | null | undefined): number | undefined {
  return mtu !== null && mtu !== undefined && (IB_MTUS as readonly number[]).includes(mtu) ? mtu : undefined;
}

/**
 * The active RoCE MTU the kernel derives from a netdev MTU: the largest IB MTU that fits in the
 * netdev MTU less the RoCE v2 headers (GRH 40 + UDP 8 + BTH 12 + ext 32 + ICRC 4 = 96 bytes).
 */
export function roceMtuFromNetdevMtu(netdevMtu: number): number | undefined {
  const payload = netdevMtu - 96;
  let best: number | undefined;
  for (const m of IB_MTUS) if (m <= payload) best = m;
  return best;
}

const V4_MAPPED = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/**
 * One spelling per GID: RFC 5952 IPv6 text, IPv4-mapped GIDs (RoCE v2 over IPv4) as
 * ::ffff:a.b.c.d. Returns null for the all-zero GID (an unused table entry) and for garbage.
 */
export function normalizeGid(raw: string): string | null {
  let bytes: Buffer;
  try {
    bytes = parseIp(raw.trim());
  } catch {
    return null;
  }
  if (bytes.length !== 16 || bytes.every((b) => b === 0)) return null;
  if (bytes.subarray(0, 12).equals(V4_MAPPED)) return `::ffff:${Array.from(bytes.subarray(12)).join('.')}`;
  return formatIpv6(bytes);
}

/** PKey table entries 0x0000 and 0x8000 mean "no key"; the rest print as 0xffff. */
export function formatPkey(pkey: number): string | null {
  if (!Number.isInteger(pkey) || pkey < 0 || pkey > 0xffff) return null;
  if ((pkey & 0x7fff) === 0) return null;
  return `0x${pkey.toString(16).padStart(4, '0')}`;
}

const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;
const NETDEV_NAME = /^[^\s/:]{1,15}$/;

function netdevOrUndefined(name: string | null | undefined): string | undefined {
  return name !== null && name !== undefined && NETDEV_NAME.test(name) ? name : undefined;
}

function byNumber<T>(key: (t: T) => number): (a: T, b: T) => number {
  return (a, b) => key(a) - key(b);
}

function byString<T>(key: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}

function mapGids(gids: readonly InventoryGid[], vlanOf: Map<string, number>): SmcNodeGid[] {
  const seen = new Set<number>();
  const out: SmcNodeGid[] = [];
  for (const g of [...gids].sort(byNumber((x) => x.index))) {
    if (g.type === 'unknown' || !Number.isInteger(g.index) || g.index < 0 || g.index > 0xffff) continue;
    if (seen.has(g.index)) continue;
    const gid = normalizeGid(g.gid);
    if (gid === null) continue;
    seen.add(g.index);
    const entry: SmcNodeGid = { index: g.index, gid, type: g.type };
    const netdev = netdevOrUndefined(g.netdev);
    if (netdev !== undefined) {
      entry.netdev = netdev;
      const vlan = vlanOf.get(netdev);
      if (vlan !== undefined) entry.vlan = vlan;
    }
    out.push(entry);
    if (out.length >= LIMITS.gidsPerPort) break;
  }
  return out;
}

function mapPkeys(pkeys: readonly number[]): string[] {
  const out: string[] = [];
  for (const p of pkeys) {
    const text = formatPkey(p);
    if (text !== null && !out.includes(text)) out.push(text);
    if (out.length >= LIMITS.pkeysPerPort) break;
  }
  return out;
}

function mapPort(p: InventoryPort, vlanOf: Map<string, number>): SmcNodePort {
  const gids = mapGids(p.gids, vlanOf);
  const port: SmcNodePort = {
    port: p.port,
    state: normalizePortState(p.state),
    linkLayer: normalizeLinkLayer(p.linkLayer),
    gids,
    pkeys: mapPkeys(p.pkeys),
  };
  const mtu = normalizeMtu(p.activeMtu);
  if (mtu !== undefined) port.activeMtu = mtu;
  // The port's netdev: as reported, else the netdev of its lowest GID entry.
  const netdev = netdevOrUndefined(p.netdev) ?? gids.find((g) => g.netdev !== undefined)?.netdev;
  if (netdev !== undefined) port.netdev = netdev;
  return port;
}

function mapDevice(d: InventoryDevice, vlanOf: Map<string, number>): SmcNodeDevice {
  const ports = [...d.ports]
    .filter((p) => Number.isInteger(p.port) && p.port >= 1 && p.port <= 255)
    .sort(byNumber((p) => p.port))
    .filter((p, i, all) => i === 0 || all[i - 1]?.port !== p.port)
    .slice(0, LIMITS.portsPerDevice)
    .map((p) => mapPort(p, vlanOf));
  const device: SmcNodeDevice = { name: d.name, ports };
  const pci = d.pciAddress?.toLowerCase();
  if (pci !== undefined && PCI_ADDRESS.test(pci)) device.pciAddress = pci;
  return device;
}

function mapVlans(vlans: readonly VlanNetdev[]): SmcNodeVlanNetdev[] {
  const byName = new Map<string, SmcNodeVlanNetdev>();
  for (const v of vlans) {
    const netdev = netdevOrUndefined(v.netdev);
    if (netdev === undefined || !Number.isInteger(v.vlan) || v.vlan < 1 || v.vlan > 4094) continue;
    if (byName.has(netdev)) continue;
    const entry: SmcNodeVlanNetdev = { vlan: v.vlan, netdev };
    const parent = netdevOrUndefined(v.parent);
    if (parent !== undefined) entry.parent = parent;
    byName.set(netdev, entry);
  }
  return [...byName.values()]
    .sort((a, b) => a.vlan - b.vlan || byString<SmcNodeVlanNetdev>((x) => x.netdev)(a, b))
    .slice(0, LIMITS.vlanNetdevs);
}

/** The content of status: devices sorted by name, ports by number, GIDs by index, VLANs by id. */
export function inventoryToContent(inventory: NodeInventory): SmcNodeContent {
  const vlanNetdevs = mapVlans(inventory.vlans);
  const vlanOf = new Map(vlanNetdevs.map((v) => [v.netdev, v.vlan]));
  const devices = [...inventory.devices]
    .filter((d) => d.name.length >= 1 && d.name.length <= 64)
    .sort(byString((d) => d.name))
    .filter((d, i, all) => i === 0 || all[i - 1]?.name !== d.name)
    .slice(0, LIMITS.devices)
    .map((d) => mapDevice(d, vlanOf));
  return { deviceCount: devices.length, devices, vlanNetdevs };
}

/** Labels the agent keeps on its SmcNode. */
export function smcNodeLabels(nodeName: string): Record<string, string> {
  const labels: Record<string, string> = { 'app.kubernetes.io/managed-by': 'smc-node-agent' };
  // A label value is at most 63 characters; node names can be longer (up to 253).
  if (/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(nodeName)) labels['smc.dev/node'] = nodeName;
  return labels;
}

/** The complete SmcNode object for a node: name = spec.nodeName = the node's name. */
export function buildSmcNode(nodeName: string, inventory: NodeInventory, observedTime: Date): SmcNodeObject {
  return {
    apiVersion: `${SMC_API_GROUP}/${SMC_API_VERSION}`,
    kind: SMCNODE_KIND,
    metadata: { name: nodeName, labels: smcNodeLabels(nodeName) },
    spec: { nodeName },
    status: { observedTime: observedTime.toISOString(), ...inventoryToContent(inventory) },
  };
}

/** Stable JSON: object keys sorted, so two equal values always print the same. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The content part of a (possibly foreign or partial) status, for comparison. */
export function contentOf(status: Partial<SmcNodeStatus> | null | undefined): SmcNodeContent {
  return {
    deviceCount: status?.deviceCount ?? 0,
    devices: status?.devices ?? [],
    vlanNetdevs: status?.vlanNetdevs ?? [],
  };
}

/** True when two statuses carry the same content; observedTime is ignored. */
export function sameContent(
  a: Partial<SmcNodeStatus> | null | undefined,
  b: Partial<SmcNodeStatus> | null | undefined,
): boolean {
  return stableStringify(contentOf(a)) === stableStringify(contentOf(b));
}

/** True when every desired label is present with the same value (other labels are left alone). */
export function labelsSatisfied(
  actual: Record<string, string> | null | undefined,
  desired: Record<string, string>,
): boolean {
  return Object.entries(desired).every(([k, v]) => actual?.[k] === v);
}
