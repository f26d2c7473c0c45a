/**
 * Pure mapping for the device plugin: the node's inventory plus its RDMA character devices to the
 * list of shared slots the kubelet schedules on, and to what a container allocated one of them
 * gets (device nodes and SMC_RDMA_DEVICES).
 */
import type { InventoryDevice } from '../inventory.js';
import {
  type AllocateRequest,
  type AllocateResponse,
  type ContainerAllocateResponse,
  type Device,
  HEALTHY,
  type PreferredAllocationRequest,
  type PreferredAllocationResponse,
} from './api.js';

/** Where device nodes live, on the host and (same path) in the container. */
export const DEV_INFINIBAND = '/dev/infiniband';
export const RDMA_DEVICES_ENV = 'SMC_RDMA_DEVICES';

/** What sysfs and /dev/infiniband say about the node's RDMA character devices. */
export interface RdmaCharDevices {
  /** ib device name (rxe0) -> its uverbs node name (uverbs0). */
  readonly uverbs: ReadonlyMap<string, string>;
  /** /dev/infiniband/rdma_cm exists (rdma_ucm loaded). */
  readonly rdmaCm: boolean;
}

/** The RDMA devices a container allocated the resource gets. */
export interface NodeRdmaDevices {
  /** RoCE ib devices with a uverbs node, sorted. */
  readonly ibDevices: readonly string[];
  /** Device node paths, uverbs in ibDevices order, then rdma_cm. */
  readonly charDevices: readonly string[];
  /** RoCE devices left out because no uverbs node was found (logged by the caller). */
  readonly withoutUverbs: readonly string[];
}

function isRoce(device: InventoryDevice): boolean {
  return device.ports.some((p) => p.linkLayer?.toLowerCase() === 'ethernet');
}

export function nodeRdmaDevices(
  devices: readonly InventoryDevice[],
  chars: RdmaCharDevices,
): NodeRdmaDevices {
  const roce = [...new Set(devices.filter(isRoce).map((d) => d.name))].sort();
  const ibDevices = roce.filter((name) => chars.uverbs.has(name));
  const charDevices = ibDevices.map((name) => `${DEV_INFINIBAND}/${chars.uverbs.get(name) ?? ''}`);
  // rdma_cm alone is of no use to SMC-R and would only widen the container's device access.
  if (chars.rdmaCm && ibDevices.length > 0) charDevices.push(`${DEV_INFINIBAND}/rdma_cm`);
  return { ibDevices, charDevices, withoutUverbs: roce.filter((name) => !chars.uverbs.has(name)) };
}

export function sameNodeRdmaDevices(a: NodeRdmaDevices, b: NodeRdmaDevices): boolean {
  const eq = (x: readonly string[], y: readonly string[]) =>
    x.length === y.length && x.every((v, i) => v === y[i]);
  return eq(a.ibDevices, b.ibDevices) && eq(a.charDevices, b.charDevices);
}

/** Slot IDs are opaque to the kubelet (at most 63 characters); any slot grants all devices. */
export function slotId(index: number): string {
  return `rdma-${index}`;
}

/**
 * The slots advertised in ListAndWatch: the same count and all Healthy whether or not the node has
 * RDMA devices, so pods requesting the resource schedule on every node and fall back to TCP where
 * there is no RoCE device (Allocate then maps nothing).
 */
export function slotDevices(slots: number): Device[] {
  return Array.from({ length: slots }, (_, i) => ({ ID: slotId(i), health: HEALTHY }));
}

export function containerAllocation(node: NodeRdmaDevices): ContainerAllocateResponse {
  return {
    envs: { [RDMA_DEVICES_ENV]: node.ibDevices.join(',') },
    mounts: [],
    devices: node.charDevices.map((path) => ({ container_path: path, host_path: path, permissions: 'rw' })),
    annotations: {},
    cdi_devices: [],
  };
}

export class UnknownDeviceError extends Error {
  constructor(readonly ids: readonly string[]) {
    super(`unknown device IDs: ${ids.join(', ')}`);
    this.name = 'UnknownDeviceError';
  }
}

/** One response per container request, all alike; throws UnknownDeviceError for IDs never advertised. */
export function allocate(request: AllocateRequest, slots: number, node: NodeRdmaDevices): AllocateResponse {
  const known = new Set(slotDevices(slots).map((d) => d.ID));
  const unknown = request.container_requests.flatMap((c) => c.devices_ids.filter((id) => !known.has(id)));
  if (unknown.length > 0) throw new UnknownDeviceError(unknown);
  return { container_responses: request.container_requests.map(() => containerAllocation(node)) };
}

/** Slots are interchangeable: the required ones, then the first available, up to the size asked. */
export function preferredAllocation(request: PreferredAllocationRequest): PreferredAllocationResponse {
  return {
    container_responses: request.container_requests.map((c) => {
      const chosen = [...new Set(c.must_include_deviceIDs)];
      for (const id of c.available_deviceIDs) {
        if (chosen.length >= c.allocation_size) break;
        if (!chosen.includes(id)) chosen.push(id);
      }
      return { deviceIDs: chosen };
    }),
  };
}
