import { type ClcAcceptConfirm, encodeClcAcceptConfirm } from '../protocol/clc/accept-confirm.js';
import { type ClcAcceptConfirmV2, encodeClcAcceptConfirmV2 } from '../protocol/clc/accept-confirm-v2.js';
import { SMC_CLC_OS, SMC_GID_SIZE, SMC_RELEASE_1, smcrIndicated } from '../protocol/clc/constants.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import type { ClcMessage } from '../protocol/clc/message.js';
import type { ClcProposal } from '../protocol/clc/proposal.js';
import { ClcMachine, type CommonOptions, isValidIbMtu, peerParamsFrom } from './machine.js';
import {
  checkUeidTable,
  confirmV2xCheck,
  firstContactHostname,
  listenV2Check,
  matchEid,
  serverV2xLimits,
  smcrVersionsOffered,
  type V2xLimits,
  v2xPreferences,
} from './negotiate.js';
import { type InterfaceAddress, prefixesMatch } from './prefix-match.js';
import type { HandshakeAction, LocalRdmaParams, NegotiatedLink, PeerPolicy, SmcrV2Options } from './types.js';

export interface ClcServerV2Options extends SmcrV2Options {
  /**
   * Tenant isolation: decline with SMC_CLC_DECL_NOUEID every client that
   * shares no EID with us, including one that also offers SMC-R v1 (default
   * true). With false the server falls back to SMC-R v1 as the kernel's
   * smc_listen_find_device does.
   */
  requireEidMatch?: boolean;
  /** v2_direct in the first-contact extension: no IP gateway between the RoCEv2 ports (default true). */
  direct?: boolean;
}

export interface ClcServerOptions extends CommonOptions {
  rdma: LocalRdmaParams | null;
  /** The client's SYN carried the SMC TCP option. */
  peerIndicatedSmc: boolean;
  /** Addresses of the interface the connection arrived on, for the prefix check. */
  localAddresses: readonly InterfaceAddress[];
  /** We create a new link group for this client (sets the Accept's first-contact flag). */
  firstContact: boolean;
  policy?: PeerPolicy;
  /** Speak SMC-Rv2 with clients that share one of these EIDs. Without it the server speaks SMC-R v1 only. */
  smcrV2?: ClcServerV2Options;
}

type Choice =
  | { version: 1 }
  | { version: 2; eid: Buffer; limits: V2xLimits }
  | { version: 0; code: number; detail: string; cause?: 'no-common-eid' };

/**
 * Server side of the CLC handshake (RFC 7609 "SMC-R rendezvous"; kernel
 * af_smc.c smc_listen_work): await Proposal, check it, Accept, await
 * Confirm, link setup; Decline and TCP fallback on any failure. With
 * `smcrV2` it prefers SMC-Rv2 when the client offers it and shares an EID.
 */
export class ClcServer extends ClcMachine {
  private readonly options: ClcServerOptions;
  private readonly v2Prefs: V2xLimits | null;
  private proposal: ClcProposal | null = null;
  private accepted: ClcAcceptConfirm | ClcAcceptConfirmV2 | null = null;
  private acceptedLimits: V2xLimits | null = null;

  constructor(options: ClcServerOptions) {
    super(options);
    this.options = options;
    const v2 = options.smcrV2;
    if (v2 !== undefined) {
      checkUeidTable(v2.ueids);
      if (v2.roceV2Gid.byteLength !== SMC_GID_SIZE) throw new RangeError('roceV2Gid must be 16 bytes');
    }
    this.v2Prefs = v2 === undefined ? null : v2xPreferences(v2);
  }

  protected override maxAcceptConfirmVersion(): 1 | 2 {
    if (this.accepted !== null) return this.accepted.version;
    return this.options.smcrV2 === undefined ? 1 : 2;
  }

  protected override declineVersion(): 1 | 2 {
    // smc_listen_decline answers in the Proposal's version; without SMC-Rv2 configured we stay at v1.
    return this.options.smcrV2 !== undefined && this.proposal?.version === 2 ? 2 : 1;
  }

  protected start(): HandshakeAction[] {
    if (!this.options.peerIndicatedSmc) return this.silentFallback(SMC_CLC_DECL.PEERNOSMC);
    this.current = 'awaiting-proposal';
    return [{ type: 'await', stage: 'proposal', timeoutMs: this.clcTimeoutMs }];
  }

  protected onDataBeforeStart(bytes: Uint8Array): HandshakeAction[] {
    // The Proposal may simply arrive before the driver started us.
    const started = this.start();
    if (this.isTerminal()) return started;
    return [...started, ...this.handle({ type: 'data', bytes })];
  }

  protected onMessage(message: ClcMessage): HandshakeAction[] {
    if (this.current === 'awaiting-proposal' && message.kind === 'proposal') return this.onProposal(message);
    if (this.current === 'awaiting-confirm' && message.kind === 'confirm') {
      return message.version === 2 ? this.onConfirmV2(message) : this.onConfirm(message);
    }
    return this.unexpected(message);
  }

  private policyRefusal(p: ClcProposal, eid?: Buffer): { code: number; detail: string } | null {
    const verdict = this.options.policy?.({
      peerId: p.peerId,
      gid: p.version === 2 && eid !== undefined && p.v2Extension !== null ? p.v2Extension.roceV2Gid : p.gid,
      mac: p.mac,
      message: p,
      ...(eid === undefined ? {} : { eid }),
    });
    if (verdict !== undefined && !verdict.allow) {
      return { code: verdict.reasonCode, detail: verdict.reason ?? 'refused by policy' };
    }
    return null;
  }

  /** SMC-R v1 only, as before SMC-Rv2 support. */
  private chooseV1Only(p: ClcProposal): Choice {
    if (!smcrIndicated(p.typeV1) || p.ipArea === null) {
      // We speak SMC-R v1 only: an SMC-Rv2-only offer is a version mismatch, anything else a mode mismatch.
      const v2r = p.version === 2 && smcrIndicated(p.typeV2);
      return v2r
        ? { version: 0, code: SMC_CLC_DECL.VERSMISMAT, detail: 'peer offers SMC-R only as v2' }
        : { version: 0, code: SMC_CLC_DECL.MODEUNSUPP, detail: 'peer does not offer SMC-R' };
    }
    return this.chooseV1(p);
  }

  private chooseV1(p: ClcProposal): Choice {
    if (p.ipArea === null || !prefixesMatch(p.ipArea, this.options.localAddresses)) {
      return { version: 0, code: SMC_CLC_DECL.DIFFPREFIX, detail: 'no common IP subnet' };
    }
    const refusal = this.policyRefusal(p);
    return refusal === null ? { version: 1 } : { version: 0, ...refusal };
  }

  /**
   * smc_listen_v2_check, smc_clc_srv_v2x_features_validate and
   * smc_listen_find_device for SMC-R: v2 when the client offers it with a
   * user EID we share, else v1 when offered (unless tenant isolation wants
   * a common EID), else the most telling decline code.
   */
  private chooseWithV2(p: ClcProposal, prefs: V2xLimits, v2: ClcServerV2Options): Choice {
    const offered = smcrVersionsOffered(p);
    if (!offered.v1 && !offered.v2) {
      return { version: 0, code: SMC_CLC_DECL.MODEUNSUPP, detail: 'peer does not offer SMC-R' };
    }
    const check = listenV2Check(p, true);
    let miss: { code: number; detail: string; cause?: 'no-common-eid' } =
      check.code === SMC_CLC_DECL.NOV2EXT
        ? { code: SMC_CLC_DECL.NOV2EXT, detail: 'SMC-Rv2 offered without the v2 extension' }
        : { code: SMC_CLC_DECL.NOUEID, detail: 'client sent no user EID' };
    if (check.v2 && check.ext !== null) {
      // The kernel declines outright when the v2.1 limits cannot be met, even if v1 would do.
      const limits = serverV2xLimits(check.ext, prefs);
      if (!limits.ok) return { version: 0, code: limits.code, detail: limits.detail };
      const eid = matchEid(check.ext, { localUeids: v2.ueids });
      if (eid !== null) {
        const refusal = this.policyRefusal(p, eid);
        return refusal === null ? { version: 2, eid, limits: limits.value } : { version: 0, ...refusal };
      }
      // As smc_listen_find_device: no device for any version is NOSMCDEV, also when only the EIDs
      // differ (NOUEID is for a Proposal without any user EID). Kernel peers and sidecars of
      // different tenants refuse each other with the same code.
      miss = {
        code: SMC_CLC_DECL.NOSMCDEV,
        detail: 'no common EID: the client belongs to another tenant',
        cause: 'no-common-eid',
      };
    }
    // Tenant isolation: without a shared EID there is no SMC at all, not even v1.
    if ((v2.requireEidMatch ?? true) || !check.v1) return { version: 0, ...miss };
    return this.chooseV1(p);
  }

  private onProposal(p: ClcProposal): HandshakeAction[] {
    this.proposal = p;
    const rdma = this.options.rdma;
    if (rdma === null) return this.decline(SMC_CLC_DECL.NOSMCRDEV, 'no local RoCE device');
    const v2 = this.options.smcrV2;
    const prefs = this.v2Prefs;
    const choice =
      v2 === undefined || prefs === null ? this.chooseV1Only(p) : this.chooseWithV2(p, prefs, v2);
    if (choice.version === 0) return this.decline(choice.code, choice.detail, choice.cause);

    let accept: ClcAcceptConfirm | ClcAcceptConfirmV2;
    let bytes: Buffer;
    if (choice.version === 1 || v2 === undefined) {
      const v1: ClcAcceptConfirm = {
        kind: 'accept',
        version: 1,
        firstContact: this.options.firstContact,
        peerId: this.peerId,
        ...rdma,
      };
      accept = v1;
      bytes = encodeClcAcceptConfirm(v1);
    } else {
      const { limits } = choice;
      const v2Accept: ClcAcceptConfirmV2 = {
        kind: 'accept',
        version: 2,
        firstContact: this.options.firstContact,
        peerId: this.peerId,
        ...rdma,
        gid: v2.roceV2Gid,
        eid: choice.eid,
        // smc_clc_fill_fce: 52 bytes for SMC-R, the limits only from release 1 on.
        firstContactExt: this.options.firstContact
          ? {
              v2Direct: v2.direct ?? true,
              osType: SMC_CLC_OS.LINUX,
              release: limits.release,
              hostname: firstContactHostname(v2.hostname),
              v2x:
                limits.release >= SMC_RELEASE_1
                  ? { maxConns: limits.maxConns, maxLinks: limits.maxLinks, featureMask: 0, vendorOptions: 0 }
                  : { maxConns: 0, maxLinks: 0, featureMask: 0, vendorOptions: 0 },
            }
          : null,
        gidList: null,
      };
      accept = v2Accept;
      this.acceptedLimits = limits;
      bytes = encodeClcAcceptConfirmV2(v2Accept);
    }
    this.accepted = accept;
    this.current = 'awaiting-confirm';
    return [
      { type: 'send', bytes, message: accept },
      { type: 'await', stage: 'confirm', timeoutMs: this.clcTimeoutMs },
    ];
  }

  /** Checks shared by both versions; null when the Confirm may proceed. */
  private checkConfirm(c: ClcAcceptConfirm | ClcAcceptConfirmV2): HandshakeAction[] | null {
    const rdma = this.options.rdma;
    const proposal = this.proposal;
    if (rdma === null || proposal === null || this.accepted === null) {
      return this.decline(SMC_CLC_DECL.INTERR, 'confirm without a proposal');
    }
    if (c.version !== this.accepted.version) {
      return this.decline(
        SMC_CLC_DECL.VERSMISMAT,
        `v${c.version} Confirm to a v${this.accepted.version} Accept`,
      );
    }
    // A v2-only Proposal leaves the local area zero (smc_clc_send_proposal): there is no peer id to compare.
    const proposedId = proposal.peerId.some((b) => b !== 0) ? proposal.peerId : null;
    if (proposedId !== null && !c.peerId.equals(proposedId)) {
      return this.decline(SMC_CLC_DECL.SYNCERR, 'Confirm comes from another peer id than the Proposal');
    }
    if (!isValidIbMtu(c.qpMtu))
      return this.decline(SMC_CLC_DECL.CNFERR, `peer QP MTU ${c.qpMtu} is not an IB MTU`);
    return this.checkPeerRmbe(c);
  }

  private onConfirm(c: ClcAcceptConfirm): HandshakeAction[] {
    const refused = this.checkConfirm(c);
    if (refused !== null) return refused;
    const rdma = this.options.rdma;
    if (rdma === null) return this.decline(SMC_CLC_DECL.INTERR, 'no local RDMA parameters');
    const link: NegotiatedLink = {
      role: 'server',
      firstContact: this.options.firstContact,
      qpMtu: Math.min(rdma.qpMtu, c.qpMtu),
      local: rdma,
      peer: peerParamsFrom(c),
    };
    this.current = 'awaiting-link';
    return [
      { type: 'proceed', link },
      { type: 'await', stage: 'link', timeoutMs: this.linkTimeoutMs },
    ];
  }

  private onConfirmV2(c: ClcAcceptConfirmV2): HandshakeAction[] {
    const refused = this.checkConfirm(c);
    if (refused !== null) return refused;
    const rdma = this.options.rdma;
    const accepted = this.accepted;
    const v2 = this.options.smcrV2;
    if (rdma === null || accepted === null || accepted.version !== 2 || v2 === undefined) {
      return this.decline(SMC_CLC_DECL.INTERR, 'v2 Confirm without a v2 Accept');
    }
    if (!c.eid.equals(accepted.eid)) {
      return this.decline(SMC_CLC_DECL.SYNCERR, 'Confirm carries another EID than our Accept');
    }
    let limits: V2xLimits | null = null;
    if (c.firstContactExt !== null && this.acceptedLimits !== null) {
      const code = confirmV2xCheck(c.firstContactExt, this.acceptedLimits);
      if (code !== null)
        return this.decline(code, 'Confirm does not echo the release and limits of our Accept');
    }
    if (this.options.firstContact) limits = this.acceptedLimits;
    const local: LocalRdmaParams = { ...rdma, gid: v2.roceV2Gid };
    const link: NegotiatedLink = {
      role: 'server',
      smcVersion: 2,
      firstContact: this.options.firstContact,
      qpMtu: Math.min(rdma.qpMtu, c.qpMtu),
      local,
      peer: peerParamsFrom(c),
      v2: { eid: c.eid, limits, peerFirstContact: c.firstContactExt, peerGidList: c.gidList },
    };
    this.current = 'awaiting-link';
    return [
      { type: 'proceed', link },
      { type: 'await', stage: 'link', timeoutMs: this.linkTimeoutMs },
    ];
  }
}
