import type { ClcAcceptConfirm } from '../protocol/clc/accept-confirm.js';
import { encodeClcAcceptConfirm } from '../protocol/clc/accept-confirm.js';
import { type ClcAcceptConfirmV2, encodeClcAcceptConfirmV2 } from '../protocol/clc/accept-confirm-v2.js';
import { ETH_ALEN, SMC_CLC_OS, SMC_GID_SIZE, SMC_SYSTEMID_LEN, SMC_TYPE } from '../protocol/clc/constants.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import type { ClcMessage } from '../protocol/clc/message.js';
import { type ClcIpArea, type ClcProposal, encodeClcProposal } from '../protocol/clc/proposal.js';
import { ClcMachine, type CommonOptions, isValidIbMtu, peerParamsFrom } from './machine.js';
import {
  checkUeidTable,
  clientV2xLimits,
  firstContactHostname,
  type V2xLimits,
  v2xPreferences,
} from './negotiate.js';
import type { HandshakeAction, LocalRdmaParams, NegotiatedLink, PeerPolicy, SmcrV2Options } from './types.js';

export interface ClcClientV2Options extends SmcrV2Options {
  /** Offer SMC-R v1 next to v2 (typev1 R, with the IP prefix area); false proposes SMC-Rv2 only. Default true. */
  offerV1?: boolean;
  /** RoCEv2 GIDs for the first-contact Confirm's GID list (smc_fill_gid_list); default [roceV2Gid]. */
  gidList?: readonly Buffer[];
}

export interface ClcClientOptions extends CommonOptions {
  /** Local RoCE resources, or null when this node has no usable RDMA device. */
  rdma: LocalRdmaParams | null;
  /** The server's SYN-ACK carried the SMC TCP option. */
  peerIndicatedSmc: boolean;
  /** Our outgoing subnet for the Proposal's IP area. */
  ipArea: ClcIpArea;
  /** We have no link group with this server yet, so we expect it to signal first contact. */
  firstContact: boolean;
  /**
   * With `firstContact` false: the server's half of the link we expect it to reuse. An Accept that
   * reuses another link is declined with NOSRVLINK (smc_connect_rdma's link lookup).
   */
  reuse?: { peerQpn: number; peerGid: Buffer; peerMac: Buffer };
  /**
   * With `firstContact` false, the server may still start a new link group (it has none with us
   * any more, or ours is full): this creates the resources of a new link and returns their
   * parameters for the Confirm, or null when it cannot (the Accept is then declined).
   */
  rdmaForFirstContact?: () => LocalRdmaParams | null;
  policy?: PeerPolicy;
  /**
   * Offer SMC-Rv2 with these EIDs and the RoCEv2 GID. Without it the client
   * proposes SMC-R v1 only, in a version 1 Proposal, as before.
   */
  smcrV2?: ClcClientV2Options;
}

/**
 * Client side of the CLC handshake (RFC 7609 "SMC-R rendezvous"; kernel
 * af_smc.c __smc_connect): Proposal -> Accept -> Confirm -> link setup,
 * with a Decline and TCP fallback on any failure. With `smcrV2` the Proposal
 * offers SMC-Rv2 (and v1 unless `offerV1` is false) and the server picks.
 */
export class ClcClient extends ClcMachine {
  private readonly options: ClcClientOptions;
  private readonly v2Limits: V2xLimits | null;
  private proposal: ClcProposal | null = null;
  private acceptVersion: 1 | 2 | null = null;

  constructor(options: ClcClientOptions) {
    super(options);
    this.options = options;
    const v2 = options.smcrV2;
    if (v2 !== undefined) {
      checkUeidTable(v2.ueids);
      if (v2.roceV2Gid.byteLength !== SMC_GID_SIZE) throw new RangeError('roceV2Gid must be 16 bytes');
    }
    this.v2Limits = v2 === undefined ? null : v2xPreferences(v2);
  }

  private offersV2(): boolean {
    return this.proposal?.version === 2 && this.proposal.typeV2 !== SMC_TYPE.N;
  }

  private offersV1(): boolean {
    return this.proposal !== null && this.proposal.typeV1 !== SMC_TYPE.N;
  }

  protected override maxAcceptConfirmVersion(): 1 | 2 {
    return this.offersV2() ? 2 : 1;
  }

  protected override declineVersion(): 1 | 2 {
    return this.acceptVersion ?? 1;
  }

  private buildProposal(rdma: LocalRdmaParams): ClcProposal | null {
    const v2 = this.options.smcrV2;
    // As smc_find_proposal_devices: SMC-Rv2 is offered only with at least one user EID.
    const withV2 = v2 !== undefined && v2.ueids.length > 0 && this.v2Limits !== null;
    if (!withV2) {
      if (v2 !== undefined && v2.offerV1 === false) return null;
      return {
        kind: 'proposal',
        version: 1,
        typeV1: SMC_TYPE.R,
        peerId: this.peerId,
        gid: rdma.gid,
        mac: rdma.mac,
        growthArea: Buffer.alloc(0),
        ipArea: this.options.ipArea,
      };
    }
    const limits = this.v2Limits;
    if (limits === null) return null;
    const v1 = v2.offerV1 ?? true;
    return {
      kind: 'proposal',
      version: 2,
      typeV1: v1 ? SMC_TYPE.R : SMC_TYPE.N,
      typeV2: SMC_TYPE.R,
      // smc_clc_send_proposal fills the local area only when typev1 offers SMC-R.
      peerId: v1 ? this.peerId : Buffer.alloc(SMC_SYSTEMID_LEN),
      gid: v1 ? rdma.gid : Buffer.alloc(SMC_GID_SIZE),
      mac: v1 ? rdma.mac : Buffer.alloc(ETH_ALEN),
      smcd: { ismGid: 0n, ismChid: 0 },
      ipArea: v1 ? this.options.ipArea : null,
      v2Extension: {
        release: limits.release,
        seid: false,
        userEids: v2.ueids.map((e) => Buffer.from(e)),
        roceV2Gid: v2.roceV2Gid,
        maxConns: limits.maxConns,
        maxLinks: limits.maxLinks,
        featureMask: 0,
        smcdV2: null,
      },
    };
  }

  protected start(): HandshakeAction[] {
    // As smc_connect: without the peer's TCP option or a local device there is no CLC exchange at all.
    if (!this.options.peerIndicatedSmc) return this.silentFallback(SMC_CLC_DECL.PEERNOSMC);
    const rdma = this.options.rdma;
    if (rdma === null) return this.silentFallback(SMC_CLC_DECL.NOSMCRDEV);
    const proposal = this.buildProposal(rdma);
    // v2 only and no user EID: nothing can be proposed (smc_find_proposal_devices' NOSMCDEV).
    if (proposal === null) return this.silentFallback(SMC_CLC_DECL.NOSMCDEV);
    this.proposal = proposal;
    this.current = 'awaiting-accept';
    return [
      { type: 'send', bytes: encodeClcProposal(proposal), message: proposal },
      { type: 'await', stage: 'accept', timeoutMs: this.clcTimeoutMs },
    ];
  }

  protected onDataBeforeStart(): HandshakeAction[] {
    // The client speaks first; a server talking before our Proposal is out of step.
    this.current = 'awaiting-accept';
    return this.decline(SMC_CLC_DECL.SYNCERR, 'data before the Proposal was sent');
  }

  protected onMessage(message: ClcMessage): HandshakeAction[] {
    if (this.current !== 'awaiting-accept' || message.kind !== 'accept') return this.unexpected(message);
    this.acceptVersion = message.version;
    if (message.version === 2) return this.onAcceptV2(message);
    // smc_connect_check_aclc: a v1 Accept needs SMC-R offered in typev1.
    if (!this.offersV1())
      return this.decline(SMC_CLC_DECL.MODEUNSUPP, 'v1 Accept to an SMC-Rv2-only Proposal');
    return this.onAccept(message);
  }

  /** Checks shared by both versions; null when the Accept may proceed. */
  private checkAccept(accept: ClcAcceptConfirm | ClcAcceptConfirmV2): HandshakeAction[] | null {
    // The server reuses a link group we do not have (smc_connect_rdma's first-contact check).
    if (!accept.firstContact && this.options.firstContact) {
      return this.decline(SMC_CLC_DECL.SYNCERR, 'server reuses a link group unknown to us');
    }
    const r = this.options.reuse;
    if (
      !accept.firstContact &&
      r !== undefined &&
      (accept.qpn !== r.peerQpn || !accept.gid.equals(r.peerGid) || !accept.mac.equals(r.peerMac))
    ) {
      return this.decline(SMC_CLC_DECL.NOSRVLINK, `server reuses QP ${accept.qpn}, not the link we have`);
    }
    if (!isValidIbMtu(accept.qpMtu)) {
      return this.decline(SMC_CLC_DECL.CNFERR, `peer QP MTU ${accept.qpMtu} is not an IB MTU`);
    }
    // Before localFor: a server starting a new link group would otherwise get one made for it.
    return this.checkPeerRmbe(accept);
  }

  /** Our half of the link for this Accept: a new link when the server starts a new link group. */
  private localFor(accept: ClcAcceptConfirm | ClcAcceptConfirmV2): LocalRdmaParams | null {
    if (accept.firstContact && !this.options.firstContact)
      return this.options.rdmaForFirstContact?.() ?? null;
    return this.options.rdma;
  }

  private checkPolicy(accept: ClcAcceptConfirm | ClcAcceptConfirmV2, eid?: Buffer): HandshakeAction[] | null {
    const verdict = this.options.policy?.({
      peerId: accept.peerId,
      gid: accept.gid,
      mac: accept.mac,
      message: accept,
      ...(eid === undefined ? {} : { eid }),
    });
    return verdict !== undefined && !verdict.allow ? this.decline(verdict.reasonCode, verdict.reason) : null;
  }

  private onAccept(accept: ClcAcceptConfirm): HandshakeAction[] {
    const refused = this.checkAccept(accept) ?? this.checkPolicy(accept);
    if (refused !== null) return refused;
    const rdma = this.localFor(accept);
    if (rdma === null) return this.decline(SMC_CLC_DECL.INTERR, 'no local RDMA parameters for this link');

    const qpMtu = Math.min(rdma.qpMtu, accept.qpMtu);
    const confirm: ClcAcceptConfirm = {
      kind: 'confirm',
      version: 1,
      firstContact: accept.firstContact,
      peerId: this.peerId,
      ...rdma,
      qpMtu,
    };
    const link: NegotiatedLink = {
      role: 'client',
      firstContact: accept.firstContact,
      qpMtu,
      local: rdma,
      peer: peerParamsFrom(accept),
    };
    this.current = 'awaiting-link';
    return [
      { type: 'send', bytes: encodeClcAcceptConfirm(confirm), message: confirm },
      { type: 'proceed', link },
      { type: 'await', stage: 'link', timeoutMs: this.linkTimeoutMs },
    ];
  }

  private onAcceptV2(accept: ClcAcceptConfirmV2): HandshakeAction[] {
    const v2 = this.options.smcrV2;
    const prefs = this.v2Limits;
    if (this.options.rdma === null || v2 === undefined || prefs === null) {
      return this.decline(SMC_CLC_DECL.INTERR, 'no local SMC-Rv2 parameters');
    }
    // The server must pick one of the EIDs we proposed: another tenant's EID never gets a link.
    if (!v2.ueids.some((e) => Buffer.from(e).equals(accept.eid))) {
      return this.decline(SMC_CLC_DECL.NOUEID, 'server chose an EID we did not propose');
    }
    const refused = this.checkAccept(accept);
    if (refused !== null) return refused;
    let limits: V2xLimits | null = null;
    const fce = accept.firstContactExt;
    if (fce !== null) {
      const negotiated = clientV2xLimits(fce, prefs.release);
      if (!negotiated.ok) return this.decline(negotiated.code, negotiated.detail);
      limits = negotiated.value;
    }
    const policyRefused = this.checkPolicy(accept, accept.eid);
    if (policyRefused !== null) return policyRefused;
    const rdma = this.localFor(accept);
    if (rdma === null) return this.decline(SMC_CLC_DECL.INTERR, 'no local RDMA parameters for this link');

    const local: LocalRdmaParams = { ...rdma, gid: v2.roceV2Gid };
    const qpMtu = Math.min(rdma.qpMtu, accept.qpMtu);
    const confirm: ClcAcceptConfirmV2 = {
      kind: 'confirm',
      version: 2,
      firstContact: accept.firstContact,
      peerId: this.peerId,
      ...local,
      qpMtu,
      eid: accept.eid,
      // smc_clc_fill_fce: our OS, the negotiated release and limits (zero below release 1), 52 bytes for SMC-R.
      firstContactExt:
        fce === null || limits === null
          ? null
          : {
              v2Direct: fce.v2Direct,
              osType: SMC_CLC_OS.LINUX,
              release: limits.release,
              hostname: firstContactHostname(v2.hostname),
              v2x:
                limits.release >= 1
                  ? { maxConns: limits.maxConns, maxLinks: limits.maxLinks, featureMask: 0, vendorOptions: 0 }
                  : { maxConns: 0, maxLinks: 0, featureMask: 0, vendorOptions: 0 },
            },
      gidList: fce === null ? null : (v2.gidList ?? [v2.roceV2Gid]).map((g) => Buffer.from(g)),
    };
    const link: NegotiatedLink = {
      role: 'client',
      smcVersion: 2,
      firstContact: accept.firstContact,
      qpMtu,
      local,
      peer: peerParamsFrom(accept),
      v2: { eid: accept.eid, limits, peerFirstContact: fce, peerGidList: null },
    };
    this.current = 'awaiting-link';
    return [
      { type: 'send', bytes: encodeClcAcceptConfirmV2(confirm), message: confirm },
      { type: 'proceed', link },
      { type: 'await', stage: 'link', timeoutMs: this.linkTimeoutMs },
    ];
  }
}
