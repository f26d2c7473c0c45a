import { type ClcAcceptConfirm, encodeClcAcceptConfirm } from '../protocol/clc/accept-confirm.js';
import { smcrIndicated } from '../protocol/clc/constants.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import type { ClcMessage } from '../protocol/clc/message.js';
import type { ClcProposal } from '../protocol/clc/proposal.js';
import { ClcMachine, type CommonOptions, isValidIbMtu, peerParamsFrom } from './machine.js';
import { type InterfaceAddress, prefixesMatch } from './prefix-match.js';
import type { HandshakeAction, LocalRdmaParams, NegotiatedLink, PeerPolicy } from './types.js';

export interface ClcServerOptions extends CommonOptions {
  rdma: LocalRdmaParams | null;
  /** The client's SYN carried the SMC TCP option. */
  peerIndicatedSmc: boolean;
  /** Addresses of the interface the connection arrived on, for the prefix check. */
  localAddresses: readonly InterfaceAddress[];
  /** We create a new link group for this client (sets the Accept's first-contact flag). */
  firstContact: boolean;
  policy?: PeerPolicy;
}

/**
 * Server side of the CLC handshake (RFC 7609 "SMC-R rendezvous"; kernel
 * af_smc.c smc_listen_work): await Proposal, check it, Accept, await
 * Confirm, link setup; Decline and TCP fallback on any failure.
 */
export class ClcServer extends ClcMachine {
  private readonly options: ClcServerOptions;
  private proposal: ClcProposal | null = null;

  constructor(options: ClcServerOptions) {
    super(options);
    this.options = options;
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
    if (this.current === 'awaiting-confirm' && message.kind === 'confirm' && message.version === 1)
      return this.onConfirm(message);
    return this.unexpected(message);
  }

  private checkProposal(p: ClcProposal): { code: number; detail: string } | null {
    if (this.options.rdma === null) return { code: SMC_CLC_DECL.NOSMCRDEV, detail: 'no local RoCE device' };
    if (!smcrIndicated(p.typeV1) || p.ipArea === null) {
      // We speak SMC-R v1 only: an SMC-Rv2-only offer is a version mismatch, anything else a mode mismatch.
      const v2r = p.version === 2 && smcrIndicated(p.typeV2);
      return v2r
        ? { code: SMC_CLC_DECL.VERSMISMAT, detail: 'peer offers SMC-R only as v2' }
        : { code: SMC_CLC_DECL.MODEUNSUPP, detail: 'peer does not offer SMC-R' };
    }
    if (!prefixesMatch(p.ipArea, this.options.localAddresses)) {
      return { code: SMC_CLC_DECL.DIFFPREFIX, detail: 'no common IP subnet' };
    }
    const verdict = this.options.policy?.({ peerId: p.peerId, gid: p.gid, mac: p.mac, message: p });
    if (verdict !== undefined && !verdict.allow) {
      return { code: verdict.reasonCode, detail: verdict.reason ?? 'refused by policy' };
    }
    return null;
  }

  private onProposal(p: ClcProposal): HandshakeAction[] {
    const refusal = this.checkProposal(p);
    const rdma = this.options.rdma;
    if (refusal !== null || rdma === null) {
      return this.decline(refusal?.code ?? SMC_CLC_DECL.NOSMCRDEV, refusal?.detail);
    }
    this.proposal = p;
    const accept: ClcAcceptConfirm = {
      kind: 'accept',
      version: 1,
      firstContact: this.options.firstContact,
      peerId: this.peerId,
      ...rdma,
    };
    this.current = 'awaiting-confirm';
    return [
      { type: 'send', bytes: encodeClcAcceptConfirm(accept), message: accept },
      { type: 'await', stage: 'confirm', timeoutMs: this.clcTimeoutMs },
    ];
  }

  private onConfirm(c: ClcAcceptConfirm): HandshakeAction[] {
    const rdma = this.options.rdma;
    if (rdma === null || this.proposal === null)
      return this.decline(SMC_CLC_DECL.INTERR, 'confirm without a proposal');
    if (!c.peerId.equals(this.proposal.peerId)) {
      return this.decline(SMC_CLC_DECL.SYNCERR, 'Confirm comes from another peer id than the Proposal');
    }
    if (!isValidIbMtu(c.qpMtu))
      return this.decline(SMC_CLC_DECL.CNFERR, `peer QP MTU ${c.qpMtu} is not an IB MTU`);
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
}
