import type { SmcrAcceptConfirmR0 } from '../protocol/clc/accept-confirm.js';
import { rmbeSizeFromCompressed, SMC_CLC_OS, SMC_SYSTEMID_LEN } from '../protocol/clc/constants.js';
import { describeDeclineCode, SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { type ClcDecline, encodeClcDecline } from '../protocol/clc/decline.js';
import { type ClcMessage, decodeClcMessage } from '../protocol/clc/message.js';
import { ProtocolDecodeError } from '../protocol/errors.js';
import { ClcFramer } from './framer.js';
import type {
  DeclineCause,
  HandshakeAction,
  HandshakeEvent,
  HandshakeState,
  PeerRdmaParams,
} from './types.js';

/** SMC_LLC_WAIT_FIRST_TIME (smc_llc.h): how long the first link's LLC Confirm Link may take. */
export const LLC_WAIT_FIRST_TIME_MS = 5000;

/**
 * Largest peer RMBE taken when the caller sets no limit: 1 MiB, the largest `rmbSize` an SmcPolicy
 * may give a sidecar, and above the kernel's default RMBE (half of net.smc.rmem, 64 KiB).
 */
export const DEFAULT_MAX_PEER_RMBE_SIZE = 1024 * 1024;

export interface CommonOptions {
  /** Our 8-byte SMC system id (peer id), sent in every CLC message including Declines. */
  peerId: Buffer;
  /** Wait for each CLC message; defaults to CLC_WAIT_TIME (6 s). */
  clcTimeoutMs?: number;
  /** Wait for link setup after Accept/Confirm; defaults to SMC_LLC_WAIT_FIRST_TIME (5 s). */
  linkTimeoutMs?: number;
  /**
   * Largest RMBE (bytes) we take from the peer's Accept/Confirm; default DEFAULT_MAX_PEER_RMBE_SIZE.
   * Our staging ring for that connection is as large as the peer's RMBE, so a larger one is declined
   * before anything is allocated for it.
   */
  maxPeerRmbeSize?: number;
}

/** Maps a decode failure to the code we decline with. */
export function declineCodeForDecodeError(err: ProtocolDecodeError): number {
  // A version we cannot speak is a negotiation outcome, not a broken peer.
  return err.code === 'version' ? SMC_CLC_DECL.VERSMISMAT : SMC_CLC_DECL.SYNCERR;
}

export function peerParamsFrom(m: SmcrAcceptConfirmR0): PeerRdmaParams {
  return {
    peerId: m.peerId,
    gid: m.gid,
    mac: m.mac,
    qpn: m.qpn,
    rmbRkey: m.rmbRkey,
    rmbeIndex: m.rmbeIndex,
    rmbeAlertToken: m.rmbeAlertToken,
    rmbeSize: m.rmbeSize,
    rmbeSizeBytes: rmbeSizeFromCompressed(m.rmbeSize),
    qpMtu: m.qpMtu,
    rmbVirtualAddress: m.rmbVirtualAddress,
    initialPsn: m.initialPsn,
  };
}

export function isValidIbMtu(mtu: number): boolean {
  return mtu >= 1 && mtu <= 5;
}

/**
 * Shared skeleton of the client and server CLC machines: byte framing, peer
 * Declines, our Declines, the link stage, timeouts and terminal states. No
 * I/O: every effect is returned as an action.
 */
export abstract class ClcMachine {
  protected current: HandshakeState = 'idle';
  protected readonly framer = new ClcFramer();
  protected readonly clcTimeoutMs: number;
  protected readonly linkTimeoutMs: number;
  protected readonly peerId: Buffer;
  protected readonly maxPeerRmbeSize: number;

  protected constructor(options: CommonOptions) {
    if (options.peerId.byteLength !== SMC_SYSTEMID_LEN) {
      throw new RangeError(`peerId must be ${SMC_SYSTEMID_LEN} bytes`);
    }
    this.peerId = options.peerId;
    this.clcTimeoutMs = options.clcTimeoutMs ?? 6000;
    this.linkTimeoutMs = options.linkTimeoutMs ?? LLC_WAIT_FIRST_TIME_MS;
    this.maxPeerRmbeSize = options.maxPeerRmbeSize ?? DEFAULT_MAX_PEER_RMBE_SIZE;
  }

  get state(): HandshakeState {
    return this.current;
  }

  protected isTerminal(): boolean {
    return this.current === 'established' || this.current === 'fallback' || this.current === 'aborted';
  }

  handle(event: HandshakeEvent): HandshakeAction[] {
    if (this.isTerminal()) {
      return [{ type: 'ignored', reason: `${event.type} after the handshake ended (${this.current})` }];
    }
    switch (event.type) {
      case 'start':
        return this.current === 'idle' ? this.start() : [{ type: 'ignored', reason: 'already started' }];
      case 'data':
        return this.onData(event.bytes);
      case 'timeout':
        // Nothing is awaited before start, so no timer can be meant.
        if (this.current === 'idle') return [{ type: 'ignored', reason: 'timeout before start' }];
        return this.onTimeout();
      case 'link-up':
        if (this.current !== 'awaiting-link')
          return [{ type: 'ignored', reason: `link-up in ${this.current}` }];
        this.current = 'established';
        return [{ type: 'established' }];
      case 'link-failed':
        if (this.current !== 'awaiting-link')
          return [{ type: 'ignored', reason: `link-failed in ${this.current}` }];
        return this.decline(event.reasonCode);
      case 'closed':
        this.current = 'aborted';
        return [{ type: 'abort', reason: 'TCP connection closed during the CLC handshake' }];
    }
  }

  protected abstract start(): HandshakeAction[];

  /**
   * Version of the Declines we send: the kernel answers in the version of
   * the exchange (the Proposal's on the server, the Accept's on the client).
   */
  protected declineVersion(): 1 | 2 {
    return 1;
  }

  /** Highest Accept/Confirm version this side takes in the current exchange; a newer one is declined VERSMISMAT. */
  protected maxAcceptConfirmVersion(): 1 | 2 {
    return 1;
  }

  /** Handles one complete, decoded message in a waiting state. */
  protected abstract onMessage(message: ClcMessage): HandshakeAction[];

  /** Called for data in `idle`. */
  protected abstract onDataBeforeStart(bytes: Uint8Array): HandshakeAction[];

  private onData(bytes: Uint8Array): HandshakeAction[] {
    if (this.current === 'idle') return this.onDataBeforeStart(bytes);
    this.framer.push(bytes);
    const actions: HandshakeAction[] = [];
    while (!this.isTerminal()) {
      let message: ClcMessage;
      try {
        const frame = this.framer.next();
        if (frame === null) break;
        message = decodeClcMessage(frame, { maxAcceptConfirmVersion: this.maxAcceptConfirmVersion() });
      } catch (err) {
        if (!(err instanceof ProtocolDecodeError)) throw err;
        // The stream can no longer be trusted to be framed: nothing is handed to the application.
        this.framer.takeRest();
        return [
          ...actions,
          ...this.decline(declineCodeForDecodeError(err), `malformed CLC message: ${err.message}`),
        ];
      }
      if (message.kind === 'decline') actions.push(...this.onPeerDecline(message));
      else actions.push(...this.onMessage(message));
    }
    return actions;
  }

  private onTimeout(): HandshakeAction[] {
    if (this.current === 'awaiting-link') return this.decline(SMC_CLC_DECL.TIMEOUT_CL);
    return this.decline(
      SMC_CLC_DECL.TIMEOUT,
      `no CLC message within ${this.clcTimeoutMs} ms (${this.current})`,
    );
  }

  private onPeerDecline(d: ClcDecline): HandshakeAction[] {
    this.current = 'fallback';
    return [
      {
        type: 'fallback',
        reasonCode: d.peerDiagnosis,
        origin: 'peer',
        description: `peer declined: ${describeDeclineCode(d.peerDiagnosis)}`,
        terminateLinkGroup: d.outOfSync,
        residual: this.framer.takeRest(),
      },
    ];
  }

  /** Falls back without telling the peer: no CLC exchange has started. */
  protected silentFallback(reasonCode: number): HandshakeAction[] {
    this.current = 'fallback';
    return [
      {
        type: 'fallback',
        reasonCode,
        origin: 'local',
        description: describeDeclineCode(reasonCode),
        terminateLinkGroup: false,
        residual: this.framer.takeRest(),
      },
    ];
  }

  /** Sends a Decline with `reasonCode` and falls back. */
  protected decline(reasonCode: number, detail?: string, cause?: DeclineCause): HandshakeAction[] {
    const v2 = this.declineVersion() === 2;
    const message: ClcDecline = {
      kind: 'decline',
      version: v2 ? 2 : 1,
      eyecatcher: 'SMC-R',
      // As smc_clc_send_decline: the out-of-sync flag accompanies exactly SYNCERR.
      outOfSync: reasonCode === SMC_CLC_DECL.SYNCERR,
      peerId: this.peerId,
      peerDiagnosis: reasonCode >>> 0,
      // smc_clc_send_decline: SMC_CLC_OS_LINUX and four empty further codes in a v2 Decline.
      osType: v2 ? SMC_CLC_OS.LINUX : 0,
      diagnosisV2: v2 ? [0, 0, 0, 0] : null,
    };
    this.current = 'fallback';
    const description = describeDeclineCode(reasonCode);
    return [
      { type: 'send', bytes: encodeClcDecline(message), message },
      {
        type: 'fallback',
        reasonCode,
        origin: 'local',
        description: detail === undefined ? description : `${description}: ${detail}`,
        terminateLinkGroup: false,
        residual: this.framer.takeRest(),
        ...(cause === undefined ? {} : { cause }),
      },
    ];
  }

  /**
   * Declines (MEM, cause `peer-rmb-too-large`) a peer RMBE above our limit; null when it fits. Runs
   * before any resource is made for the link: the staging ring would be as large as the peer's RMBE.
   */
  protected checkPeerRmbe(m: { rmbeSize: number }): HandshakeAction[] | null {
    const bytes = rmbeSizeFromCompressed(m.rmbeSize);
    if (bytes <= this.maxPeerRmbeSize) return null;
    return this.decline(
      SMC_CLC_DECL.MEM,
      `peer RMBE of ${bytes} bytes (compressed ${m.rmbeSize}) exceeds our limit of ${this.maxPeerRmbeSize}`,
      'peer-rmb-too-large',
    );
  }

  protected unexpected(message: ClcMessage): HandshakeAction[] {
    return this.decline(SMC_CLC_DECL.SYNCERR, `unexpected CLC ${message.kind} in ${this.current}`);
  }
}
