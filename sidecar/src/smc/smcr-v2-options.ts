import { hostname } from 'node:os';
import type { ProxyContext } from '../context.js';
import type { SmcrV2Options } from '../handshake/types.js';

/** Connections per link group and links per group that we offer in SMC-Rv2.1's first contact. */
export const V2_MAX_CONNS = 255;
export const V2_MAX_LINKS = 1;

/**
 * What the sidecar proposes and accepts between sidecars: SMC-Rv2 only, with
 * the tenant's User EIDs (ours first, then the tenants we allow) and the
 * device's RoCEv2 GID, one link per group (no failover link yet).
 */
export function smcrV2Options(ctx: ProxyContext, roceV2Gid: Buffer): SmcrV2Options & { offerV1: false } {
  return {
    ueids: ctx.ueids,
    roceV2Gid,
    offerV1: false,
    maxConns: V2_MAX_CONNS,
    maxLinks: V2_MAX_LINKS,
    hostname: hostname().slice(0, 32),
  };
}
