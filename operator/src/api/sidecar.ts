// The injected sidecar's ports and uid: the defaults of the sidecar's own configuration
// (sidecar/src/config/schema.ts) and of the operator's injection flags (operator/src/config.ts),
// so the two never disagree.

/** The TCP ports the sidecar listens on, by role. */
export interface SidecarPorts {
  /** The pod's outgoing TCP, redirected by nftables. */
  readonly outbound: number;
  /** Incoming TCP from peers without a sidecar, redirected by nftables. */
  readonly inbound: number;
  /** Sidecar-to-sidecar connections (preamble, CLC, then SMC-R or TCP); published in the directory. */
  readonly smc: number;
  /** GET /metrics (Prometheus). */
  readonly metrics: number;
  /** GET /healthz/live and /healthz/ready. */
  readonly health: number;
  /** GET /connections, bound to 127.0.0.1 and ::1 only. */
  readonly admin: number;
}

/**
 * Clear of Istio's ports (Envoy and ztunnel use 15000-15090; see ISTIO_PORTS), so both sidecars
 * can share a pod: 15100 for SMC, and Istio's port + 100 for the roles they share (outbound 15001,
 * inbound 15006, health 15021, metrics 15090; admin takes debug 15004 + 100, as 15100 is taken).
 */
export const SIDECAR_DEFAULT_PORTS: SidecarPorts = {
  outbound: 15101,
  inbound: 15106,
  smc: 15100,
  metrics: 15190,
  health: 15121,
  admin: 15104,
};

/** The sidecar's handshake timeouts (sidecar config `timeouts.clcHandshakeMs`, `timeouts.linkSetupMs`). */
export interface SidecarTimeouts {
  readonly clcHandshakeMs: number;
  readonly linkSetupMs: number;
}

/**
 * The sidecar's uid (and gid): the interception rules exempt its sockets (`meta skuid`). Not
 * Istio's proxy uid 1337, so each proxy's rules tell the two apart; 7609 is SMC-R's RFC number.
 */
export const SIDECAR_DEFAULT_UID = 7609;

/**
 * The ports Istio's sidecar (Envoy), ztunnel and gateways use inside a pod: admin 15000, outbound
 * 15001, debug 15004, inbound 15006, HBONE 15008/15009, merged metrics 15020, health 15021, DNS
 * 15053, ztunnel 15080, Envoy metrics 15090, gateway SNI 15443. Istio's proxy uid and gid: 1337.
 */
export const ISTIO_PORTS: readonly number[] = [
  15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15080, 15090, 15443,
];
export const ISTIO_PROXY_UID = 1337;

/** The roles in a stable order (flags, env, docs). */
export const SIDECAR_PORT_ROLES = ['outbound', 'inbound', 'smc', 'metrics', 'health', 'admin'] as const;
export type SidecarPortRole = (typeof SIDECAR_PORT_ROLES)[number];
