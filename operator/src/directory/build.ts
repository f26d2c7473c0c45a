import { createHash } from 'node:crypto';
import type { Pod } from '../api/core.js';
import {
  DIRECTORY_VERSION,
  IpLiteralSchema,
  shardOf,
  tenantsMayPeer,
  type Directory,
  type DirectoryEndpoint,
} from '../api/directory.js';
import type { SmcPolicy } from '../api/smcpolicy.js';
import { podInjected, podLive, sidecarReady } from '../policy/pod.js';

/**
 * Every IP of a pod, the primary first (`status.podIPs`, which the API server starts with podIP),
 * without duplicates or anything the sidecars' schema would refuse (it would reject the shard).
 */
export function podAddresses(pod: Pod, primary: string): string[] {
  const all = [primary, ...(pod.status?.podIPs ?? []).map((p) => p.ip)];
  return [...new Set(all)].filter((ip) => IpLiteralSchema.safeParse(ip).success);
}

/** The directory entry of a pod, or undefined when the pod must not be advertised. */
export function endpointFor(
  pod: Pod,
  policy: SmcPolicy | undefined,
  sidecarPort: number,
  deviceOk: boolean,
): DirectoryEndpoint | undefined {
  if (!policy || policy.spec.mode === 'Disabled' || policy.metadata.deletionTimestamp) return undefined;
  if (!podLive(pod) || pod.status?.phase !== 'Running') return undefined;
  const podIP = pod.status.podIP;
  if (!podIP || !podInjected(pod) || !sidecarReady(pod) || !deviceOk) return undefined;
  const e: DirectoryEndpoint = {
    podIP,
    podIPs: podAddresses(pod, podIP),
    node: pod.spec.nodeName ?? '',
    namespace: pod.metadata.namespace ?? '',
    pod: pod.metadata.name,
    tenant: policy.spec.tenant,
    sidecarPort,
    allowedPeerTenants: [...(policy.spec.allowedPeerTenants ?? [])].sort(),
  };
  const vlan = policy.spec.vlans?.[0];
  if (vlan !== undefined) e.vlan = vlan;
  const pkey = policy.spec.pkeys?.[0];
  if (pkey !== undefined) e.pkey = pkey.toLowerCase();
  return e;
}

/** The tenants a namespace's pods may run as (one entry per distinct tenant + peer list). */
export interface TenantProfile {
  readonly tenant: string;
  readonly allowedPeerTenants: readonly string[];
}

export function namespaceProfiles(policies: Iterable<SmcPolicy>): TenantProfile[] {
  const seen = new Map<string, TenantProfile>();
  for (const p of policies) {
    if (p.metadata.deletionTimestamp || p.spec.mode === 'Disabled') continue;
    const allowed = [...(p.spec.allowedPeerTenants ?? [])].sort();
    const key = `${p.spec.tenant}|${allowed.join(',')}`;
    if (!seen.has(key)) seen.set(key, { tenant: p.spec.tenant, allowedPeerTenants: allowed });
  }
  return [...seen.values()];
}

export interface ShardContent {
  readonly shard: number;
  /** The document, unsigned (the publisher adds issuedAt, keyId and signature when it writes it). */
  readonly doc: Directory;
  /** The unsigned document as JSON (deterministic for equal content). */
  readonly json: string;
  /** sha256 of `json`, hex. */
  readonly hash: string;
  readonly endpoints: number;
}

export function hashContent(json: string): string {
  return createHash('sha256').update(json).digest('hex');
}

function compareEndpoints(a: DirectoryEndpoint, b: DirectoryEndpoint): number {
  return a.podIP < b.podIP ? -1 : a.podIP > b.podIP ? 1 : 0;
}

/**
 * Serialises one shard deterministically (sorted endpoints, fixed key order). `namespace` is the
 * namespace whose view it is (the sidecars of another namespace reject it).
 */
export function renderShard(
  shard: number,
  shards: number,
  endpoints: DirectoryEndpoint[],
  namespace?: string,
): ShardContent {
  const sorted = [...endpoints].sort(compareEndpoints);
  const doc: Directory =
    namespace === undefined
      ? { version: DIRECTORY_VERSION, shard, shards, endpoints: sorted }
      : { version: DIRECTORY_VERSION, shard, shards, namespace, endpoints: sorted };
  const json = JSON.stringify(doc);
  return { shard, doc, json, hash: hashContent(json), endpoints: sorted.length };
}

/**
 * Each namespace's view of the directory: the endpoints some tenant of that namespace may talk
 * to, split into `shards` shards by the primary podIP. `profiles` maps namespace -> tenant
 * profiles; only namespaces listed there get a view.
 */
export function buildViews(
  endpoints: readonly DirectoryEndpoint[],
  profiles: ReadonlyMap<string, readonly TenantProfile[]>,
  shards: number,
): Map<string, ShardContent[]> {
  // Group endpoints by (tenant, peers) first: visibility depends only on that.
  const groups = new Map<string, { profile: TenantProfile; endpoints: DirectoryEndpoint[] }>();
  for (const e of endpoints) {
    const key = `${e.tenant}|${e.allowedPeerTenants.join(',')}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { profile: e, endpoints: [] }));
    g.endpoints.push(e);
  }
  const out = new Map<string, ShardContent[]>();
  for (const [ns, nsProfiles] of profiles) {
    if (nsProfiles.length === 0) continue;
    const buckets: DirectoryEndpoint[][] = Array.from({ length: shards }, () => []);
    for (const g of groups.values()) {
      if (!nsProfiles.some((p) => tenantsMayPeer(p, g.profile))) continue;
      for (const e of g.endpoints) buckets[shardOf(e.podIP, shards)]?.push(e);
    }
    out.set(
      ns,
      buckets.map((b, i) => renderShard(i, shards, b, ns)),
    );
  }
  return out;
}
