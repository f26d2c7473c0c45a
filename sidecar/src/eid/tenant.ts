import { createHash } from 'node:crypto';
import { UEID_LENGTH, ueidToBytes } from './ueid.js';

/*
 * Tenants as EIDs. A tenant's User EID is derived from policy data alone, so
 * every node and every sidecar computes the same EID without coordination:
 *
 *   UEID = "SMCK8S-" + base32(sha256(input))[0..25)
 *   input = "smc-operator/tenant-ueid/v1" NUL
 *           || for cluster, namespace, tenant: u32be(utf8 length) || utf8 bytes
 *              (a cluster-scoped tenant has no namespace: length 0)
 *
 * base32 is RFC 4648 (A-Z, 2-7), so the 32 characters are all valid UEID
 * characters (smc_clc_ueid_valid) and need no padding; 25 characters keep 125
 * bits of the hash. The length prefixes make the encoding injective
 * ("a/b" + "c" and "a" + "b/c" differ), and the version tag lets the scheme
 * change without colliding with v1 EIDs.
 */

export const TENANT_UEID_PREFIX = 'SMCK8S-';
const DOMAIN = 'smc-operator/tenant-ueid/v1';
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export interface TenantIdentity {
  /** A stable cluster identifier: the cluster name from policy, or e.g. the kube-system namespace UID. */
  cluster: string;
  /**
   * Namespace of the tenant object; absent for a cluster-scoped tenant (the
   * sidecar's: tenants are matched by name across namespaces, as in the
   * endpoint directory). Encoded as a zero length, unlike any namespace.
   */
  namespace?: string;
  /** Tenant name. */
  tenant: string;
}

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

function field(name: string, value: string): Buffer {
  if (typeof value !== 'string' || value.length === 0) {
    throw new RangeError(`tenant identity: ${name} must be a non-empty string`);
  }
  const bytes = Buffer.from(value, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.byteLength);
  return Buffer.concat([length, bytes]);
}

/** The tenant's UEID as 32 characters of text, e.g. "SMCK8S-5NQ2M...". */
export function tenantUeid(id: TenantIdentity): string {
  const digest = createHash('sha256')
    .update(DOMAIN)
    .update(Buffer.alloc(1))
    .update(field('cluster', id.cluster))
    .update(id.namespace === undefined ? Buffer.alloc(4) : field('namespace', id.namespace))
    .update(field('tenant', id.tenant))
    .digest();
  return TENANT_UEID_PREFIX + base32(digest).slice(0, UEID_LENGTH - TENANT_UEID_PREFIX.length);
}

/** The tenant's UEID in its 32-byte wire form (Proposal EID list, Accept/Confirm eid). */
export function tenantUeidBytes(id: TenantIdentity): Buffer {
  return ueidToBytes(tenantUeid(id));
}
