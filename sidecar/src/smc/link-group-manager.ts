import type { Socket } from 'node:net';
import type { LocalRdmaParams, NegotiatedLink } from '../handshake/types.js';
import { canonicalIp } from '../net/ip.js';
import type { SmcConnection } from './smc-connection.js';

export interface LinkGroupStats {
  linkGroups: number;
  links: number;
  /** Bytes registered with the RDMA device (RMBs, staging rings, LLC rings) by live link groups. */
  registeredBytes: number;
  /** RMBs held by a connection, and RMBs kept for the next connection of their link group. */
  rmbsInUse: number;
  rmbsPooled: number;
  /** RMBs no connection will use again, registered until the peer answers their DELETE RKEY. */
  rmbsRetiring: number;
}

/** The statistics of a sidecar without link groups. */
export const NO_LINK_GROUPS: Readonly<LinkGroupStats> = {
  linkGroups: 0,
  links: 0,
  registeredBytes: 0,
  rmbsInUse: 0,
  rmbsPooled: 0,
  rmbsRetiring: 0,
};

/** The peer a connection is prepared for. */
export interface SmcPeer {
  /** The address this connection uses to reach the peer (canonical); for logs. */
  address: string;
  /**
   * Who the peer is, which link groups are kept by (with the role): `namespace/pod` for a peer
   * sidecar, whichever of its addresses the connection used; the address for a kernel peer.
   * See {@link linkGroupPeerKey}.
   */
  key: string;
  role: 'client' | 'server';
  /** Connection id for logs. */
  connId: string;
}

/**
 * The point of no return of link setup, handed to `establish` by the CLC
 * driver. Before it, a timeout on either side is a clean fallback (the side
 * that gives up declines over TCP and never sends the step below). After it,
 * the peer may start its data path, so the side does not fall back any more.
 */
export interface LinkCommit {
  /**
   * Called right before the step after which the peer may start its data
   * path: the server before posting CONFIRM LINK, the client before posting
   * the CONFIRM LINK response. False when the handshake already gave up
   * (timeout, Decline): establish must then fail without taking that step.
   */
  commit(): boolean;
}

export interface ReleaseOptions {
  /** The peer does not know the link group we offered (its Decline said so): end the group. */
  terminateLinkGroup?: boolean;
  /**
   * The handshake had committed to SMC-R: the peer may have written into our
   * RMB, so it must not serve another connection (it stays registered until
   * the group ends).
   */
  committed?: boolean;
}

/**
 * Resources reserved for one connection before its CLC exchange: an RMB
 * (registered for remote write) and, when no link group to the peer exists
 * yet, a new QP. Its parameters go into our Proposal / Accept / Confirm.
 */
export interface PreparedSmcConnection {
  readonly rdma: LocalRdmaParams;
  /** No link group with this peer exists: the CLC exchange creates one. */
  readonly firstContact: boolean;
  /** Joining a link group: the peer's half of its link, which the server's Accept must name (client). */
  readonly reuse?: { peerQpn: number; peerGid: Buffer; peerMac: Buffer };
  /**
   * Joining a link group as the client, the server may start a new one instead:
   * this creates the new link's resources and returns their parameters (null
   * when it cannot). `establish` then sets that link up.
   */
  readonly rdmaForFirstContact?: () => LocalRdmaParams | null;
  /**
   * After Accept (client) / Confirm (server): brings the QP to RTS with the
   * peer's parameters, runs LLC Confirm Link on a first contact, and hands
   * back the connection. Rejects with LinkSetupError; before `gate.commit()`
   * the handshake then declines and both sides continue over TCP, after it the
   * connection is aborted (the peer may already be running its data path).
   */
  establish(link: NegotiatedLink, tcp: Socket, gate?: LinkCommit): Promise<SmcConnection>;
  /** Gives the reserved resources back (the handshake fell back). Idempotent. */
  release(options?: ReleaseOptions): void;
}

/**
 * Whom a link group belongs to (`SmcPeer.key`). A peer sidecar is its pod, `namespace/pod` of its
 * directory entry: its IPv4 and IPv6 connections share one link group, as they reach the same
 * sidecar and RoCE GID. A peer outside the directory (the kernel's SMC-R) is known by its address.
 */
export function linkGroupPeerKey(
  endpoint: { readonly namespace: string; readonly pod: string } | null | undefined,
  address: string,
): string {
  if (endpoint && endpoint.namespace !== '' && endpoint.pod !== '')
    return `${endpoint.namespace}/${endpoint.pod}`;
  return canonicalIp(address);
}

/**
 * Owns the RDMA device and every link group of this sidecar. The control path
 * (CLC over TCP) asks it for resources; it decides link group reuse (one
 * group per peer, first contact when none), idles groups out after
 * timeouts.linkGroupIdleMs, and counts what it has for the metrics.
 */
export interface LinkGroupManager {
  /** Our 8-byte SMC system id (the CLC "peer id"). */
  readonly peerId: Buffer;
  /** The data path SMC-R connections use: native, js, link-only, or none. */
  readonly dataPath?: string;
  /** A device is open and its port is ACTIVE. */
  available(): boolean;
  /** Rejects with LinkSetupError. */
  prepare(peer: SmcPeer): Promise<PreparedSmcConnection>;
  stats(): LinkGroupStats;
  close(): Promise<void>;
}
