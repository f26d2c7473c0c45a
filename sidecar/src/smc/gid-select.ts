import type { GidEntry } from '../../../native/index.js';
import { parseIp } from '../net/ip.js';

/** A device's candidate GIDs on one port, as the sidecar saw them. */
export interface DeviceGids {
  readonly device: string;
  readonly port: number;
  readonly gids: readonly GidEntry[];
}

export type GidChoice = { readonly device: string; readonly gidIndex: number } | { readonly problem: string };

/** Which devices the sidecar may consider: "auto" means every device the pod can see. */
export function candidateDevices(
  configured: string,
  mapped: readonly string[] | null,
  present: readonly string[],
): string[] {
  const wanted =
    configured === 'auto'
      ? present
      : configured
          .split(',')
          .map((d) => d.trim())
          .filter((d) => d !== '');
  // A device plugin that mapped none (a node without RDMA) leaves nothing to try.
  return mapped === null
    ? wanted.filter((d) => present.includes(d))
    : wanted.filter((d) => mapped.includes(d));
}

const V4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/** 16 bytes; an IPv4 address becomes its IPv4-mapped form, as RoCE v2 GIDs carry it. */
function asGid(text: string): Buffer | null {
  try {
    const b = parseIp(text);
    return b.length === 4 ? Buffer.concat([V4_MAPPED_PREFIX, b]) : b;
  } catch {
    return null;
  }
}

function sameAddress(gid: string, address: string): boolean {
  const a = asGid(gid);
  const b = asGid(address);
  return a !== null && b !== null && a.equals(b);
}

/**
 * The GID that carries `address` (the node's IP on the RoCE network), as the kernel's SMC-Rv2
 * picks the GID of the route's netdev: RoCE v2 first, then v1, first device in order wins.
 * Inside a pod the node's netdevs are invisible, so the node's address is the only link between
 * the pod's TCP path and a GID.
 */
export function selectGidByAddress(devices: readonly DeviceGids[], address: string): GidChoice {
  for (const type of ['RoCEv2', 'RoCEv1'] as const) {
    for (const d of devices) {
      const hit = d.gids.find((g) => g.type === type && sameAddress(g.gid, address));
      if (hit) return { device: d.device, gidIndex: hit.index };
    }
  }
  const seen = devices.map((d) => d.device).join(', ') || 'none';
  return { problem: `no RoCE GID for ${address} on device(s) ${seen}` };
}
