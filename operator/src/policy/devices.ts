import type { Node, Pod } from '../api/core.js';
import type { DeviceMatch, SmcPolicy } from '../api/smcpolicy.js';
import type { SmcNode } from '../api/smcnode.js';
import { selectorMatches } from './selector.js';

export interface DeviceLookup {
  smcNode(name: string): SmcNode | undefined;
  node(name: string): Node | undefined;
}

function deviceMatches(m: DeviceMatch, node: SmcNode): boolean {
  for (const d of node.status?.devices ?? []) {
    if (m.deviceName !== undefined && d.name === m.deviceName) return true;
    if (m.pciAddress !== undefined && d.pciAddress === m.pciAddress) return true;
    if (m.netdev !== undefined && (d.ports ?? []).some((p) => p.netdev === m.netdev)) return true;
  }
  return false;
}

/**
 * Whether the pod's node offers an RDMA device the policy allows. A policy without `devices`
 * accepts any node (the node agent and the sidecar decide at connection time); otherwise some
 * entry whose nodeSelector matches the node's labels must name a device the node's SmcNode lists.
 */
export function podHasAllowedDevice(pod: Pod, policy: SmcPolicy, lookup: DeviceLookup): boolean {
  const devices = policy.spec.devices ?? [];
  if (devices.length === 0) return true;
  const nodeName = pod.spec.nodeName;
  if (!nodeName) return false;
  const smcNode = lookup.smcNode(nodeName);
  if (!smcNode) return false;
  const labels = lookup.node(nodeName)?.metadata.labels;
  return devices.some((m) => selectorMatches(m.nodeSelector, labels) && deviceMatches(m, smcNode));
}
