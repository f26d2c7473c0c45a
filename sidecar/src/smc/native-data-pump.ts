import type { CompletionQueue, MemoryRegion, QueuePair } from '../../../native/index.js';

/**
 * What the sidecar expects from the addon's DataPump (native/README.md,
 * "Data pump"), so that `rdma.dataPath: native` can replace JsSmcConnection
 * with the same wire behaviour. The TypeScript side binds it in
 * VerbsLinkGroupManager.establish once `DataPump` is exported.
 */
export interface NativeDataPumpOptions {
  /** The application's TCP socket (net.Socket fd; the pump watches it with its own uv_poll). */
  fd: number;
  /** The link's RC QP at RTS; the pump takes it exclusively. */
  qp: QueuePair;
  /** Completion queue of the QP (send and receive); the pump installs itself as its sink. */
  cq: CompletionQueue;
  sendMr: MemoryRegion;
  sendOffset: number;
  sendSize: number;
  /** Our RMB (the peer writes into it). */
  rmbMr: MemoryRegion;
  rmbOffset: number;
  rmbSize: number;
  peer: { addr: bigint; rkey: number; size: number; alertToken: number };
  /** Our RMBE alert token: incoming CDCs carry it and must be checked against it. */
  localAlertToken: number;
  cdcSeqStart: number;
  /**
   * Receive WRs already posted on the QP for LLC (44-byte slots of `mr`, wrIds
   * 0..slots-1): they receive CDC messages too, so the pump must consume and
   * repost them (or the addon must offer a way to post its ring first).
   */
  postedReceives: { mr: MemoryRegion; slots: number; slotSize: number };
}

export type NativeDataPumpState = 'established' | 'draining' | 'closed' | 'aborted';

export interface NativeDataPumpCounters {
  bytesIn: number;
  bytesOut: number;
  cdcSent: number;
  cdcRecv: number;
  stallsPeerFull: number;
  stallsSocketFull: number;
}

export interface NativeDataPump {
  /** State changes, ending with 'closed' or 'aborted' (reason: e.g. a work completion status). */
  onState: ((state: NativeDataPumpState, reason: string) => void) | null;
  counters(): NativeDataPumpCounters;
  /** Abortive close: CDC with the abort flag, socket reset. */
  abort(): void;
  /** Releases the pump after 'closed'/'aborted' (the QP goes back to JS, to be closed). */
  close(): void;
}

export type NativeDataPumpConstructor = new (opts: NativeDataPumpOptions) => NativeDataPump;
