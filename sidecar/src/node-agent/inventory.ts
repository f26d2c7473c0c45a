/**
 * What the node agent learns about its node, independent of where it learned it: the RDMA devices
 * with their ports, GID and PKey tables (from sysfs or from the verbs addon) and the VLAN netdevs.
 * Sources fill these plain records; mapping.ts turns them into an SmcNode.
 */

/** GID type as the sources report it; 'unknown' entries are dropped by the mapping. */
export type InventoryGidType = 'IB' | 'RoCEv1' | 'RoCEv2' | 'unknown';

export interface InventoryGid {
  readonly index: number;
  /** Any spelling: sysfs's 8 groups of 4 hex digits, or IPv6 text (also IPv4-mapped dotted). */
  readonly gid: string;
  readonly type: InventoryGidType;
  /** The netdev the GID belongs to (RoCE), e.g. eth0 or eth0.100. */
  readonly netdev?: string | null;
}

export interface InventoryPort {
  /** 1-based port number. */
  readonly port: number;
  /** Raw port state: sysfs "4: ACTIVE", or a verbs name ACTIVE / IBV_PORT_ACTIVE, or a number. */
  readonly state: string | number;
  /** "Ethernet", "InfiniBand", or anything else (mapped to Unknown). */
  readonly linkLayer?: string | null;
  /** Active MTU in bytes (256..4096), when known. */
  readonly activeMtu?: number | null;
  /** The port's netdev (RoCE), when known. */
  readonly netdev?: string | null;
  readonly gids: readonly InventoryGid[];
  /** PKey table in table order; 0x0000 / 0x8000 (unused entries) are dropped by the mapping. */
  readonly pkeys: readonly number[];
}

export interface InventoryDevice {
  /** RDMA device name, e.g. mlx5_0 or rxe0. */
  readonly name: string;
  /** PCI address (0000:3b:00.0) when the device sits on PCI; absent for soft-RoCE. */
  readonly pciAddress?: string | null;
  readonly ports: readonly InventoryPort[];
}

export interface VlanNetdev {
  /** The VLAN netdev, e.g. eth0.100. */
  readonly netdev: string;
  readonly vlan: number;
  /** The netdev it sits on, e.g. eth0. */
  readonly parent?: string | null;
}

export interface NodeInventory {
  readonly devices: readonly InventoryDevice[];
  readonly vlans: readonly VlanNetdev[];
}

/** Where the RDMA device inventory comes from: sysfs or the verbs addon (or a fake in tests). */
export interface RdmaInventorySource {
  readonly kind: string;
  listDevices(): Promise<InventoryDevice[]>;
}

/** Where the VLAN netdevs come from: /proc/net/vlan/config and /sys/class/net (or a fake). */
export interface VlanSource {
  listVlans(): Promise<VlanNetdev[]>;
}
