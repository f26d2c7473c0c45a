import type { ClcAcceptConfirm } from '../protocol/clc/accept-confirm.js';
import { encodeClcAcceptConfirm } from '../protocol/clc/accept-confirm.js';
import { SMC_TYPE } from '../protocol/clc/constants.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import type { ClcMessage } from '../protocol/clc/message.js';
import { type ClcIpArea, type ClcProposal, encodeClcProposal } from '../protocol/clc/proposal.js';
import { ClcMachine, type CommonOptions, isValidIbMtu, peerParamsFrom } from './machine.js';
import type { HandshakeAction, LocalRdmaParams, NegotiatedLink, PeerPolicy } from './types.js';

export interface ClcClientOptions extends CommonOptions {
  /** Local RoCE resources, or null when this node has no usable RDMA device. */
  rdma: LocalRdmaParams | null;
  /** The server's SYN-ACK carried the SMC TCP option. */
  peerIndicatedSmc: boolean;
  /** Our outgoing subnet for the Proposal's IP area. */
  ipArea: ClcIpArea;
  /** We have no link group with this server yet, so we expect it to signal first contact. */
  firstContact: boolean;
  policy?: PeerPolicy;
}

/**
 * Client side of the CLC handshake (RFC 7609 "SMC-R rendezvous"; kernel
 * af_smc.c __smc_connect): Proposal -> Accept -> Confirm -> link setup,
 * with a Decline and TCP fallback on any failure.
 */
export class ClcClient extends ClcMachine {
  private readonly options: ClcClientOptions;

  constructor(options: ClcClientOptions) {
    super(options);
    this.options = options;
  }

  protected start(): HandshakeAction[] {
    // As smc_connect: without the peer's TCP option or a local device there is no CLC exchange at all.
    if (!this.options.peerIndicatedSmc) return this.silentFallback(SMC_CLC_DECL.PEERNOSMC);
    const rdma = this.options.rdma;
    if (rdma === null) return this.silentFallback(SMC_CLC_DECL.NOSMCRDEV);
    const proposal: ClcProposal = {
      kind: 'proposal',
      version: 1,
      typeV1: SMC_TYPE.R,
      peerId: this.peerId,
      gid: rdma.gid,
      mac: rdma.mac,
      growthArea: Buffer.alloc(0),
      ipArea: this.options.ipArea,
    };
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
    if (this.current !== 'awaiting-accept' || message.kind !== 'accept' || message.version !== 1)
      return this.unexpected(message);
    return this.onAccept(message);
  }

  private onAccept(accept: ClcAcceptConfirm): HandshakeAction[] {
    const rdma = this.options.rdma;
    if (rdma === null) return this.decline(SMC_CLC_DECL.INTERR, 'no local RDMA parameters');
    // The server reuses a link group we do not have (smc_connect_rdma's first-contact check).
    if (!accept.firstContact && this.options.firstContact) {
      return this.decline(SMC_CLC_DECL.SYNCERR, 'server reuses a link group unknown to us');
    }
    if (!isValidIbMtu(accept.qpMtu)) {
      return this.decline(SMC_CLC_DECL.CNFERR, `peer QP MTU ${accept.qpMtu} is not an IB MTU`);
    }
    const verdict = this.options.policy?.({
      peerId: accept.peerId,
      gid: accept.gid,
      mac: accept.mac,
      message: accept,
    });
    if (verdict !== undefined && !verdict.allow) return this.decline(verdict.reasonCode, verdict.reason);

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
}
