import type { ClcAcceptConfirm } from '../protocol/clc/accept-confirm.js';
import type { ClcAcceptConfirmV2, ClcFirstContactExt } from '../protocol/clc/accept-confirm-v2.js';
import type { ClcMessage } from '../protocol/clc/message.js';
import type { ClcProposal } from '../protocol/clc/proposal.js';

/** What this side puts into its Proposal/Accept/Confirm: the local RoCE port, QP and RMB. */
export interface LocalRdmaParams {
  gid: Buffer;
  mac: Buffer;
  qpn: number;
  rmbRkey: number;
  rmbeIndex: number;
  rmbeAlertToken: number;
  /** Compressed RMBE size n (2^(n+14) bytes). */
  rmbeSize: number;
  /** Path MTU as enum ib_mtu (1..5). */
  qpMtu: number;
  rmbVirtualAddress: bigint;
  initialPsn: number;
}

/** The peer's half of the link, taken from its Accept (client) or Confirm (server). */
export interface PeerRdmaParams {
  peerId: Buffer;
  gid: Buffer;
  mac: Buffer;
  qpn: number;
  rmbRkey: number;
  rmbeIndex: number;
  rmbeAlertToken: number;
  rmbeSize: number;
  rmbeSizeBytes: number;
  qpMtu: number;
  rmbVirtualAddress: bigint;
  initialPsn: number;
}

/** What an SMC-Rv2 handshake settled beyond the v1 parameters. */
export interface NegotiatedV2 {
  /** The EID both sides share (the tenant's UEID). */
  eid: Buffer;
  /** Release and link-group limits fixed by this handshake's first-contact extensions; null when an existing link group is reused. */
  limits: { release: number; maxConns: number; maxLinks: number } | null;
  /** The peer's first-contact extension (its OS, release, host name, v2_direct), null without first contact. */
  peerFirstContact: ClcFirstContactExt | null;
  /** RoCEv2 GIDs the client listed in its first-contact Confirm (server side). */
  peerGidList: Buffer[] | null;
}

/** Local SMC-Rv2 settings shared by client and server. */
export interface SmcrV2Options {
  /** This side's user EIDs (32 bytes each, at most 8): the tenant's UEID first. */
  ueids: readonly Buffer[];
  /** RoCEv2 GID (IPv4-mapped) of the port SMC-Rv2 uses: the Proposal's v2 extension and the v2 Accept/Confirm GID. */
  roceV2Gid: Buffer;
  /** Highest release offered or accepted: 0 (v2.0) or 1 (v2.1, default SMC_RELEASE). */
  release?: number;
  /** Preferred connections per link group, 16..255 (default SMC_CONN_PER_LGR_PREFER 255). */
  maxConns?: number;
  /** Preferred links per link group, 1..2 (default SMC_LINKS_PER_LGR_MAX_PREFER 2). */
  maxLinks?: number;
  /** Host name for the first-contact extension (ASCII, up to 32 bytes, blank padded); default blanks. */
  hostname?: Buffer | string;
}

export interface NegotiatedLink {
  role: 'client' | 'server';
  /** SMC-R version of the link: absent means 1. */
  smcVersion?: 1 | 2;
  /** Present exactly when smcVersion is 2. */
  v2?: NegotiatedV2;
  /** A new link group is set up (LLC Confirm Link follows on the new QP). */
  firstContact: boolean;
  /** min(local path MTU, peer MTU), enum ib_mtu. */
  qpMtu: number;
  local: LocalRdmaParams;
  peer: PeerRdmaParams;
}

/** What the policy callback sees about the peer. */
export interface ClcPeerInfo {
  peerId: Buffer;
  gid: Buffer;
  mac: Buffer;
  message: ClcProposal | ClcAcceptConfirm | ClcAcceptConfirmV2;
  /** The EID the two sides share for SMC-Rv2 (the peer's tenant), absent for SMC-R v1. */
  eid?: Buffer;
}

export type PolicyVerdict = { allow: true } | { allow: false; reasonCode: number; reason?: string };

/** Decides, e.g. on tenant or VLAN/PKey grounds, whether SMC-R may be used with this peer. */
export type PeerPolicy = (peer: ClcPeerInfo) => PolicyVerdict;

/** Local Declines whose code is shared with other causes (see the `fallback` action). */
export type DeclineCause = 'no-common-eid' | 'peer-rmb-too-large';

export type HandshakeStage = 'proposal' | 'accept' | 'confirm' | 'link';

export type HandshakeEvent =
  | { type: 'start' }
  /** Bytes read from the TCP socket, in any chunking. */
  | { type: 'data'; bytes: Uint8Array }
  /** The timer armed by the last `await` action expired. */
  | { type: 'timeout' }
  /** LLC Confirm Link completed on the new link. */
  | { type: 'link-up' }
  /** Link setup failed locally; the code goes to the peer in a Decline (e.g. SMC_CLC_DECL_ERR_RDYLNK). */
  | { type: 'link-failed'; reasonCode: number }
  /** The TCP connection closed or reset during the handshake. */
  | { type: 'closed' };

export type HandshakeAction =
  | { type: 'send'; bytes: Buffer; message: ClcMessage }
  /** Arm a timer; deliver `timeout` if nothing arrives within `timeoutMs`. */
  | { type: 'await'; stage: HandshakeStage; timeoutMs: number }
  /** Bring the link up with these parameters, then report `link-up` or `link-failed`. */
  | { type: 'proceed'; link: NegotiatedLink }
  /** Handshake and link setup complete; data now flows over RDMA. */
  | { type: 'established' }
  /**
   * Use plain TCP. `reasonCode` is our code (origin local) or the peer's
   * diagnosis (origin peer). `residual` holds bytes read past the last CLC
   * message: they are application data.
   */
  | {
      type: 'fallback';
      reasonCode: number;
      origin: 'local' | 'peer';
      description: string;
      /** The peer flagged its Decline out of sync: tear down the link group (smc_lgr_terminate_sched). */
      terminateLinkGroup: boolean;
      residual: Buffer;
      /**
       * Why we declined when the code alone does not say it: `no-common-eid` is the kernel's
       * NOSMCDEV for a client of another tenant (the same code as "no device");
       * `peer-rmb-too-large` is MEM for a peer RMBE above our limit (not a shortage of our own).
       */
      cause?: DeclineCause;
    }
  /** Neither SMC nor TCP can continue (the TCP connection is gone). */
  | { type: 'abort'; reason: string }
  /** The event means nothing in the current state; nothing was done. */
  | { type: 'ignored'; reason: string };

export type HandshakeState =
  | 'idle'
  | 'awaiting-proposal'
  | 'awaiting-accept'
  | 'awaiting-confirm'
  | 'awaiting-link'
  | 'established'
  | 'fallback'
  | 'aborted';
