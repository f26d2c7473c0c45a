import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';

/**
 * Why a connection is not carried over SMC-R. Values are the `reason` label of
 * smc_connections_total; each maps to the kernel CLC decline code (SMC_CLC_DECL_*)
 * sent when the decision is taken during or instead of a CLC exchange.
 */
export const FallbackReason = {
  /** Destination is not a directory endpoint (no sidecar): plain relay, no CLC bytes. */
  PeerNotInDirectory: 'peer-not-in-directory',
  /**
   * Inbound plain TCP from a directory peer: its sidecar chose TCP before any CLC byte (its mode,
   * its limits, handshake overload, our sidecar unreachable). The peer's own counter says which.
   */
  PeerChoseTcp: 'peer-chose-tcp',
  /** Local policy mode is Disabled. */
  ModeDisabled: 'mode-disabled',
  /** The peer's tenant and ours do not allow each other. */
  TenantNotAllowed: 'tenant-not-allowed',
  VlanMismatch: 'vlan-mismatch',
  PkeyMismatch: 'pkey-mismatch',
  /** No usable RDMA device (addon missing, device absent, port down). */
  NoRdmaDevice: 'no-rdma-device',
  /**
   * This pod's SMC-R budget (limits.maxConnections, limits.maxRegisteredMemory) is used up: the
   * client relays over TCP, the server declines (SMC_CLC_DECL_MEM).
   */
  LimitReached: 'limit-reached',
  /**
   * limits.maxConcurrentHandshakes CLC exchanges and link set-ups were already in flight: the
   * connection falls back at once instead of queueing into a handshake timeout (client: TCP to
   * the destination; server: SMC_CLC_DECL_MEM).
   */
  HandshakeOverload: 'handshake-overload',
  /** The peer sidecar sent a CLC Decline. */
  PeerDeclined: 'peer-declined',
  /** The peer sidecar's port could not be reached; relayed to the original destination instead. */
  PeerSidecarUnreachable: 'peer-sidecar-unreachable',
  /**
   * A peer without a sidecar put the SMC TCP option on its SYN-ACK (or SYN) but did not speak CLC:
   * a server that answered our Proposal with something else or not at all (the application's
   * connection went on over a new TCP connection), or a client that did not open with a Proposal
   * (its bytes went to the application as they came).
   */
  PeerNotSmc: 'peer-not-smc',
  /** The peer sidecar closed or reset the connection during the handshake (e.g. its application refused). */
  PeerReset: 'peer-reset',
  HandshakeTimeout: 'handshake-timeout',
  /** Malformed or out-of-order CLC message, or an unexpected end of stream. */
  ProtocolError: 'protocol-error',
  /** Creating or bringing up the RDMA link (QP, Confirm Link) failed. */
  LinkSetupFailed: 'link-setup-failed',
  /** Registering the RMB failed. */
  BufferRegistrationFailed: 'buffer-registration-failed',
  /**
   * The peer's Accept/Confirm names an RMBE larger than `limits.maxPeerRmbSize`: our staging ring
   * mirrors it, so the peer would choose how much memory we pin. Declined (SMC_CLC_DECL_MEM).
   */
  PeerRmbTooLarge: 'peer-rmb-too-large',
  /** The original destination of a redirected connection could not be found. */
  OriginalDstUnknown: 'original-dst-unknown',
  InternalError: 'internal-error',
} as const;

export type FallbackReason = (typeof FallbackReason)[keyof typeof FallbackReason];

export const ALL_FALLBACK_REASONS: readonly FallbackReason[] = Object.values(FallbackReason);

/**
 * How loudly a fallback is logged: reasons that are a policy's answer (another tenant, not in the
 * directory, no device) are routine; a handshake that timed out, a link that failed to come up or
 * a peer that broke the protocol means a loaded or failing path, and an operator must hear of it.
 */
export function fallbackLogLevel(reason: FallbackReason): 'info' | 'warn' {
  switch (reason) {
    case FallbackReason.HandshakeTimeout:
    case FallbackReason.HandshakeOverload:
    case FallbackReason.LimitReached:
    case FallbackReason.LinkSetupFailed:
    case FallbackReason.BufferRegistrationFailed:
    case FallbackReason.PeerRmbTooLarge:
    case FallbackReason.ProtocolError:
    case FallbackReason.PeerReset:
    case FallbackReason.InternalError:
      return 'warn';
    default:
      return 'info';
  }
}

/** The CLC decline code for a reason, or null when no CLC message is involved. */
export function declineCodeFor(reason: FallbackReason): number | null {
  switch (reason) {
    case FallbackReason.PeerNotInDirectory:
    case FallbackReason.PeerChoseTcp:
    case FallbackReason.PeerSidecarUnreachable:
    case FallbackReason.OriginalDstUnknown:
    case FallbackReason.PeerReset:
    case FallbackReason.PeerNotSmc:
      return null;
    case FallbackReason.ModeDisabled:
      return SMC_CLC_DECL.MODEUNSUPP;
    case FallbackReason.TenantNotAllowed:
    case FallbackReason.VlanMismatch:
    case FallbackReason.PkeyMismatch:
      return SMC_CLC_DECL.CNFERR;
    case FallbackReason.NoRdmaDevice:
      return SMC_CLC_DECL.NOSMCRDEV;
    case FallbackReason.LimitReached:
    case FallbackReason.HandshakeOverload:
      // The kernel's code for resources it cannot provide: the RMB budget, or handshake capacity.
      return SMC_CLC_DECL.MEM;
    case FallbackReason.PeerDeclined:
      return SMC_CLC_DECL.PEERDECL;
    case FallbackReason.HandshakeTimeout:
      return SMC_CLC_DECL.TIMEOUT;
    case FallbackReason.ProtocolError:
      return SMC_CLC_DECL.SYNCERR;
    case FallbackReason.LinkSetupFailed:
      return SMC_CLC_DECL.ERR_RDYLNK;
    case FallbackReason.BufferRegistrationFailed:
      return SMC_CLC_DECL.ERR_REGBUF;
    case FallbackReason.PeerRmbTooLarge:
      // The kernel's code for buffers it cannot provide (smc_buf_create failing).
      return SMC_CLC_DECL.MEM;
    case FallbackReason.InternalError:
      return SMC_CLC_DECL.INTERR;
  }
}
