/**
 * The directory of SMC-capable endpoints, published by the operator and read by every sidecar.
 *
 * Layout: in every namespace that runs injected pods (or is labelled smc.dev/injection=enabled),
 * the operator keeps `shards` ConfigMaps named `smc-directory-<i>` (i = 0..shards-1), each with
 * one key `shard-<i>.json` holding a {@link Directory} document. The webhook mounts all of them
 * through one projected volume at {@link DIRECTORY_MOUNT_PATH}, so a sidecar reads every
 * `shard-*.json` file there and merges them with {@link mergeDirectories}. An endpoint lives in
 * shard `shardOf(podIP, shards)` of its primary podIP and lists all its addresses in `podIPs`. A
 * namespace's copy only lists the endpoints its own pods may talk to (same tenant, or both sides
 * allow each other's tenant), so it stays small and a change to a pod only rewrites the shards of
 * namespaces that can see that pod.
 *
 * Those ConfigMaps are writable by anyone with `edit` in the namespace, so the operator signs
 * every shard (Ed25519, operator/src/api/directory-signature.ts) and names the namespace it was
 * built for; the webhook gives each sidecar the public key, and a sidecar that has one accepts
 * only shards signed with it for its own namespace, never older than the last one it accepted.
 *
 * This module is shared with the sidecar: keep it dependency-free apart from zod.
 */
import { z } from 'zod';

export const DIRECTORY_VERSION = 1 as const;
/** Most shards a directory may have (--directory-shards; the chart's RBAC names this many ConfigMaps). */
export const MAX_DIRECTORY_SHARDS = 64;
export const DIRECTORY_CONFIGMAP_PREFIX = 'smc-directory';
export const DIRECTORY_MOUNT_PATH = '/var/run/smc/directory';
export const DIRECTORY_VOLUME_NAME = 'smc-directory';
/** Label on every directory ConfigMap (value "true"). */
export const DIRECTORY_LABEL = 'smc.dev/directory';
/** Annotation on every directory ConfigMap: sha256 of the shard's JSON, compared before writing. */
export const DIRECTORY_HASH_ANNOTATION = 'smc.dev/directory-hash';

/** An IPv4 or IPv6 address literal, as the API server reports pod IPs. */
export const IpLiteralSchema = z.union([z.ipv4(), z.ipv6()]);

export const DirectoryEndpointSchema = z.object({
  /** The pod's primary IP (`status.podIP`): its shard and sort key, and all an older sidecar reads. */
  podIP: z.string().min(1),
  /**
   * Every IP of the pod (`status.podIPs`), the primary first: a dual-stack pod is found by its
   * IPv4 and its IPv6 address. Absent from an older operator's shards (then only podIP counts).
   */
  podIPs: z.array(IpLiteralSchema).optional(),
  node: z.string(),
  namespace: z.string(),
  pod: z.string(),
  tenant: z.string(),
  vlan: z.number().int().min(1).max(4094).optional(),
  pkey: z.string().optional(),
  sidecarPort: z.number().int().min(1).max(65535),
  allowedPeerTenants: z.array(z.string()),
});
export type DirectoryEndpoint = z.infer<typeof DirectoryEndpointSchema>;

export const DirectorySchema = z.object({
  version: z.literal(DIRECTORY_VERSION),
  shard: z.number().int().min(0),
  shards: z.number().int().min(1),
  /** The namespace whose view this is (a signed shard is valid only there). */
  namespace: z.string().optional(),
  /** When the operator signed it (ms since the epoch); a sidecar never goes back to an older shard. */
  issuedAt: z.number().int().min(0).optional(),
  endpoints: z.array(DirectoryEndpointSchema),
  /** Which key signed it: the first 16 hex digits of sha256 of the raw Ed25519 public key. */
  keyId: z.string().optional(),
  /** Ed25519 signature (base64) of the document without this field (directory-signature.ts). */
  signature: z.string().optional(),
});
export type Directory = z.infer<typeof DirectorySchema>;

export function directoryConfigMapName(shard: number): string {
  return `${DIRECTORY_CONFIGMAP_PREFIX}-${shard}`;
}

export function directoryFileName(shard: number): string {
  return `shard-${shard}.json`;
}

/**
 * All addresses of an endpoint, the primary first: `podIP` and `podIPs` (which the operator starts
 * with podIP; an older operator's shards have podIP alone).
 */
export function endpointAddresses(e: Pick<DirectoryEndpoint, 'podIP' | 'podIPs'>): string[] {
  return [...new Set([e.podIP, ...(e.podIPs ?? [])])];
}

/** FNV-1a 32-bit hash: the stable shard function (same result in the operator and the sidecar). */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function shardOf(podIP: string, shards: number): number {
  return fnv1a32(podIP) % shards;
}

/** Whether two tenants may talk: same tenant, or each allows the other. */
export function tenantsMayPeer(
  a: { tenant: string; allowedPeerTenants: readonly string[] },
  b: { tenant: string; allowedPeerTenants: readonly string[] },
): boolean {
  if (a.tenant === b.tenant) return true;
  return a.allowedPeerTenants.includes(b.tenant) && b.allowedPeerTenants.includes(a.tenant);
}

/**
 * Parses shard documents (e.g. the files of the mounted directory) into one podIP -> endpoint map,
 * keyed by the primary podIP (a later endpoint with the same one replaces an earlier one).
 */
export function mergeDirectories(docs: readonly unknown[]): Map<string, DirectoryEndpoint> {
  const out = new Map<string, DirectoryEndpoint>();
  for (const raw of docs) {
    const doc = DirectorySchema.parse(raw);
    for (const e of doc.endpoints) out.set(e.podIP, e);
  }
  return out;
}
