import type { SidecarPorts } from '../../operator/src/api/sidecar.js';
import type { SidecarConfig } from './config/schema.js';
import { tenantUeidBytes } from './eid/tenant.js';
import type { EndpointDirectory } from './directory/endpoint-directory.js';
import type { OriginalDstResolver } from './intercept/original-dst.js';
import type { Logger } from './log.js';
import type { ConnectionRegistry } from './ops/connections.js';
import type { SidecarMetrics } from './ops/metrics.js';
import type { LocalIdentity } from './policy/decide.js';
import type { LinkGroupManager } from './smc/link-group-manager.js';
import type { SmcBudget } from './smc/smc-budget.js';
import type { SynInspector } from './smc/syn-inspector.js';
import { type PipeEnd, type PipeOptions, type PipeResult, relay } from './relay/pipe.js';

/** Everything a proxied connection's handler needs; built once by `run`, injected everywhere. */
export interface ProxyContext {
  config: SidecarConfig;
  identity: LocalIdentity;
  /**
   * User EIDs of the SMC-Rv2 handshake: our tenant's first, then those of the
   * tenants we allow. Two pods upgrade only with an EID in common.
   */
  ueids: readonly Buffer[];
  /** The current directory snapshot (it is replaced when the file changes). */
  directory: () => EndpointDirectory;
  originalDst: OriginalDstResolver;
  links: LinkGroupManager;
  /** Present when `policy.kernelPeers` is on and the addon can read saved SYNs. */
  syn?: SynInspector;
  metrics: SidecarMetrics;
  /** Every connection being carried, and the last closed ones (GET /connections on the admin port). */
  connections: ConnectionRegistry;
  /** The SmcPolicy limits on SMC-R connections: upgrades reserve here, plain TCP relays do not. */
  budget: SmcBudget;
  log: Logger;
  /** The ports this sidecar listens on, once bound (configured port 0 = an ephemeral one); config.ports otherwise. */
  ownPorts?: () => SidecarPorts;
  /** Carries a connection over plain TCP: the addon's native relay when it is loaded, relay() otherwise. */
  relay?: RelayFn;
}

export type RelayFn = (app: PipeEnd, peer: PipeEnd, opts?: PipeOptions) => Promise<PipeResult>;

/** The relay this sidecar carries plain TCP connections with. */
export function tcpRelay(ctx: Pick<ProxyContext, 'relay'>): RelayFn {
  return ctx.relay ?? relay;
}

/** How much of one side's data is held in memory while the CLC handshake decides the path. */
export const HANDSHAKE_HOLD_BYTES = 256 * 1024;

export function identityFromConfig(cfg: SidecarConfig): LocalIdentity {
  return {
    tenant: cfg.tenant,
    allowedPeerTenants: cfg.policy.allowedPeerTenants,
    vlan: cfg.rdma.vlan,
    pkey: cfg.rdma.pkey,
    mode: cfg.policy.mode,
  };
}

/** The tenant's UEID and those of the allowed peer tenants (cluster-scoped tenants). */
export function ueidsFromConfig(cfg: SidecarConfig): Buffer[] {
  return [cfg.tenant, ...cfg.policy.allowedPeerTenants].map((tenant) =>
    tenantUeidBytes({ cluster: cfg.cluster, tenant }),
  );
}
