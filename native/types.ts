// Types of the smc_verbs addon: the plain data it returns and takes, and the shape of the native
// binding that native/index.ts wraps.

/** Work completion status: the libibverbs enum name (`enum ibv_wc_status`), e.g. 'IBV_WC_REM_ACCESS_ERR'. */
export type WcStatus =
  | 'IBV_WC_SUCCESS'
  | 'IBV_WC_LOC_LEN_ERR'
  | 'IBV_WC_LOC_QP_OP_ERR'
  | 'IBV_WC_LOC_EEC_OP_ERR'
  | 'IBV_WC_LOC_PROT_ERR'
  | 'IBV_WC_WR_FLUSH_ERR'
  | 'IBV_WC_MW_BIND_ERR'
  | 'IBV_WC_BAD_RESP_ERR'
  | 'IBV_WC_LOC_ACCESS_ERR'
  | 'IBV_WC_REM_INV_REQ_ERR'
  | 'IBV_WC_REM_ACCESS_ERR'
  | 'IBV_WC_REM_OP_ERR'
  | 'IBV_WC_RETRY_EXC_ERR'
  | 'IBV_WC_RNR_RETRY_EXC_ERR'
  | 'IBV_WC_LOC_RDD_VIOL_ERR'
  | 'IBV_WC_REM_INV_RD_REQ_ERR'
  | 'IBV_WC_REM_ABORT_ERR'
  | 'IBV_WC_INV_EECN_ERR'
  | 'IBV_WC_INV_EEC_STATE_ERR'
  | 'IBV_WC_FATAL_ERR'
  | 'IBV_WC_RESP_TIMEOUT_ERR'
  | 'IBV_WC_GENERAL_ERR'
  | 'IBV_WC_TM_ERR'
  | 'IBV_WC_TM_RNDV_INCOMPLETE'
  | 'IBV_WC_UNKNOWN';

/** Work completion opcode: `enum ibv_wc_opcode` without its IBV_WC_ prefix. Not meaningful on error completions. */
export type WcOpcode =
  | 'SEND'
  | 'RDMA_WRITE'
  | 'RDMA_READ'
  | 'COMP_SWAP'
  | 'FETCH_ADD'
  | 'BIND_MW'
  | 'LOCAL_INV'
  | 'TSO'
  | 'RECV'
  | 'RECV_RDMA_WITH_IMM'
  | 'UNKNOWN';

export interface WorkCompletion {
  /** The wrId of the work request (a non-negative safe integer). */
  readonly wrId: number;
  readonly status: WcStatus;
  readonly opcode: WcOpcode;
  /** Bytes received (receive completions); undefined content for send completions. */
  readonly byteLen: number;
  /** Immediate data, host byte order, present only when the completion carries one. */
  readonly immData?: number;
  readonly qpNum: number;
  readonly srcQp: number;
  readonly wcFlags: number;
  readonly vendorErr: number;
}

export interface DeviceInfo {
  readonly name: string;
  /** Node GUID as 4 groups of 4 hex digits. */
  readonly guid: string;
  readonly nodeType: string;
  readonly transport: string;
}

export interface DeviceAttr {
  readonly fwVer: string;
  readonly nodeGuid: string;
  readonly sysImageGuid: string;
  readonly maxMrSize: number;
  readonly pageSizeCap: number;
  readonly vendorId: number;
  readonly vendorPartId: number;
  readonly hwVer: number;
  readonly maxQp: number;
  readonly maxQpWr: number;
  readonly maxSge: number;
  readonly maxCq: number;
  readonly maxCqe: number;
  readonly maxMr: number;
  readonly maxPd: number;
  readonly maxQpRdAtom: number;
  readonly maxQpInitRdAtom: number;
  readonly physPortCnt: number;
}

export type PortState = 'NOP' | 'DOWN' | 'INIT' | 'ARMED' | 'ACTIVE' | 'ACTIVE_DEFER' | 'UNKNOWN';
export type LinkLayer = 'InfiniBand' | 'Ethernet' | 'Unspecified';
export type Mtu = 256 | 512 | 1024 | 2048 | 4096;

export interface PortAttr {
  readonly port: number;
  readonly state: PortState;
  /** Bytes. */
  readonly maxMtu: Mtu;
  /** Bytes. */
  readonly activeMtu: Mtu;
  readonly linkLayer: LinkLayer;
  readonly gidTblLen: number;
  readonly pkeyTblLen: number;
  readonly lid: number;
  readonly smLid: number;
  readonly portCapFlags: number;
  readonly activeSpeed: number;
  readonly activeWidth: number;
  readonly maxMsgSz: number;
}

/** 'IB' on InfiniBand ports; on Ethernet ports 'RoCEv1' (IB/RoCE v1) or 'RoCEv2'. */
export type GidType = 'IB' | 'RoCEv1' | 'RoCEv2' | 'unknown';

export interface GidEntry {
  readonly index: number;
  readonly port: number;
  /** IPv6 text form, e.g. '::ffff:10.77.0.1' or 'fe80::...'. */
  readonly gid: string;
  readonly type: GidType;
  /** The network device the GID belongs to (RoCE), or null. */
  readonly netdev: string | null;
  readonly ifindex: number;
}

/**
 * Memory region access. Default: local write only. Remote write must be asked for. Remote read lets
 * any peer holding the rkey read the region; it is refused (VerbsError EACCES) unless
 * `allowRemoteRead: true` is passed too.
 */
export interface MrAccess {
  localWrite?: boolean;
  remoteWrite?: boolean;
  remoteRead?: boolean;
  allowRemoteRead?: boolean;
  /** MW_BIND: type 2 memory windows may be bound to the region (grants no remote access itself). */
  mwBind?: boolean;
}

export interface MrAccessFlags {
  readonly localWrite: boolean;
  readonly remoteWrite: boolean;
  readonly remoteRead: boolean;
  readonly mwBind: boolean;
}

/** Memory that can be registered. */
export type RegistrableMemory = ArrayBufferView | ArrayBuffer;

export interface QpCaps {
  maxSendWr?: number;
  maxRecvWr?: number;
  maxSendSge?: number;
  maxRecvSge?: number;
  maxInlineData?: number;
}

export interface QpCapsActual {
  readonly maxSendWr: number;
  readonly maxRecvWr: number;
  readonly maxSendSge: number;
  readonly maxRecvSge: number;
  readonly maxInlineData: number;
}

export interface QpInitAttr {
  port?: number;
  pkeyIndex?: number;
  /** Let the peer RDMA WRITE into MRs of this QP's PD that allow it. Default false. */
  remoteWrite?: boolean;
  /** Refused (EACCES) unless allowRemoteRead is set. */
  remoteRead?: boolean;
  allowRemoteRead?: boolean;
}

export interface QpRtrAttr {
  remoteQpn: number;
  /** The peer's initial send PSN (24 bits). */
  remotePsn: number;
  /** The peer's GID: IPv6 text, IPv4 text (mapped) or 16 bytes. */
  remoteGid: string | Uint8Array;
  /** Local GID index to send from (on rxe, 1 is the IPv4-mapped RoCE v2 GID). */
  sgidIndex: number;
  mtu?: Mtu;
  port?: number;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  minRnrTimer?: number;
  maxDestRdAtomic?: number;
  dlid?: number;
  sl?: number;
}

export interface QpRtsAttr {
  /** Our initial send PSN (24 bits). */
  psn: number;
  /** Local ACK timeout exponent: 4.096 us * 2^timeout. Default 14 (~67 ms). */
  timeout?: number;
  /** Transport retries, 0-7. Default 6: rxe treats 7 as infinite, so a dead peer would never fail. */
  retryCnt?: number;
  /** RNR retries, 0-7; 7 (default) = infinite, as in the IB spec. */
  rnrRetry?: number;
  maxRdAtomic?: number;
}

export type QpStateName = 'RESET' | 'INIT' | 'RTR' | 'RTS' | 'SQD' | 'SQE' | 'ERR' | 'UNKNOWN';

export interface QpQuery {
  readonly state: QpStateName;
  readonly pathMtu: number;
  readonly destQpn: number;
  readonly rqPsn: number;
  readonly sqPsn: number;
  readonly remoteWrite: boolean;
  readonly remoteRead: boolean;
}

/** A scatter/gather element: `length` bytes at `offset` in a registered memory region. */
export interface Sge {
  mr: NativeMemoryRegion;
  /** Default 0. */
  offset?: number;
  /** Default: to the end of the region. */
  length?: number;
}

export type SendOpcode = 'SEND' | 'SEND_WITH_IMM' | 'RDMA_WRITE' | 'RDMA_WRITE_WITH_IMM' | 'RDMA_READ';

export interface SendWr {
  wrId?: number;
  opcode: SendOpcode;
  sgList?: Sge[];
  /** Generate a completion. Default true. */
  signaled?: boolean;
  solicited?: boolean;
  fence?: boolean;
  /** Copy the payload into the WQE (needs maxInlineData). */
  inline?: boolean;
  /** Required for *_WITH_IMM; a uint32 in host byte order. */
  immData?: number;
  /** Required for RDMA_*: the peer's virtual address (number or bigint). */
  remoteAddr?: number | bigint;
  rkey?: number;
}

/**
 * Binds a type 2 memory window to `length` bytes (default: to the end) at `offset` of `mr`, for
 * remote access through this QP only (mw, mr and QP in one PD; mr registered with `mwBind`, and with
 * localWrite for remoteWrite). Once posted, `mw.rkey` is the bound rkey. Its completion has opcode
 * 'BIND_MW'; if it fails, the window's rkey is stale: close the window.
 */
export interface BindMwWr {
  wrId?: number;
  opcode: 'BIND_MW';
  mw: NativeMemoryWindow;
  mr: NativeMemoryRegion;
  offset?: number;
  length?: number;
  /** Default false. */
  remoteWrite?: boolean;
  /** Refused (EACCES) unless allowRemoteRead is set. */
  remoteRead?: boolean;
  allowRemoteRead?: boolean;
  /** Generate a completion. Default true. */
  signaled?: boolean;
  fence?: boolean;
}

/** Invalidates `invalidateRkey` (a bound type 2 window's rkey): the window can then be bound again. */
export interface LocalInvWr {
  wrId?: number;
  opcode: 'LOCAL_INV';
  invalidateRkey: number;
  /** Generate a completion. Default true. */
  signaled?: boolean;
  fence?: boolean;
}

/** Any work request of the send queue. */
export type SendWorkRequest = SendWr | BindMwWr | LocalInvWr;

export interface RecvWr {
  wrId?: number;
  sgList?: Sge[];
}

export interface DebugCounters {
  readonly contexts: number;
  readonly pds: number;
  readonly mrs: number;
  readonly channels: number;
  readonly cqs: number;
  readonly qps: number;
  readonly buffers: number;
  readonly pumps: number;
  readonly links: number;
  readonly mws: number;
  readonly relays: number;
}

export interface DebugStats {
  /** CQ events taken from completion channels. */
  readonly cqEvents: number;
  /** Completion-channel polls that libuv reported as failed (EPOLLERR); the poll is restarted. */
  readonly channelPollErrors: number;
}

export interface OriginalDst {
  readonly family: 'IPv4' | 'IPv6';
  readonly address: string;
  readonly port: number;
}

/** An asynchronous device event (`enum ibv_event_type` name), e.g. a port going down. */
export interface AsyncEvent {
  readonly type: string;
  /** For port events. */
  readonly port?: number;
  /** For QP events. */
  readonly qpn?: number;
}

// ---- the native binding ---------------------------------------------------------------------------

export interface NativeContext {
  readonly name: string;
  readonly closed: boolean;
  close(): void;
  queryDevice(): DeviceAttr;
  queryPort(port?: number): PortAttr;
  queryGidTable(port?: number): GidEntry[];
  queryPkeyTable(port?: number): number[];
}

export interface NativeProtectionDomain {
  readonly closed: boolean;
  readonly handle: number;
  close(): void;
}

export interface NativeMemoryRegion {
  readonly closed: boolean;
  readonly lkey: number;
  readonly rkey: number;
  /** Virtual address of the first byte (what a peer puts in remoteAddr). */
  readonly addr: number;
  readonly length: number;
  readonly access: MrAccessFlags;
  readonly buffer: RegistrableMemory | null;
  close(): void;
}

export interface NativeMemoryWindow {
  readonly closed: boolean;
  /** The rkey of the last bind posted (before any, the allocation's, which grants nothing). */
  readonly rkey: number;
  close(): void;
}

export interface NativeCompletionChannel {
  readonly closed: boolean;
  readonly fd: number;
  ref(): this;
  unref(): this;
  close(): void;
}

export interface NativeCompletionQueue {
  readonly closed: boolean;
  readonly cqe: number;
  close(): void;
}

export interface NativeQueuePair {
  readonly closed: boolean;
  readonly qpn: number;
  readonly cap: QpCapsActual;
  query(): QpQuery;
  modifyToInit(attr?: QpInitAttr): void;
  modifyToRtr(attr: QpRtrAttr): void;
  modifyToRts(attr: QpRtsAttr): void;
  modifyToError(): void;
  modifyToReset(): void;
  postSend(wr: SendWorkRequest | SendWorkRequest[]): void;
  postRecv(wr: RecvWr | RecvWr[]): void;
  /** Positional single-WR forms (the hot path of postSend/postRecv in index.ts). */
  postSend1(
    opcode: number,
    wrId: number,
    mr: NativeMemoryRegion | undefined,
    offset: number | undefined,
    length: number | undefined,
    remoteAddr: number | bigint | undefined,
    rkey: number | undefined,
    immData: number | undefined,
    flags: number,
  ): void;
  postRecv1(
    wrId: number,
    mr: NativeMemoryRegion | undefined,
    offset: number | undefined,
    length: number | undefined,
  ): void;
  close(): void;
}

export type PumpState = 'running' | 'closed' | 'aborted' | 'failed' | 'detached';

/** eof: our socket's peer finished writing; peerDone: the RDMA peer did (we shut our socket's write side). */
export type PumpEventType = 'eof' | 'peerDone' | 'closed' | 'aborted' | 'error' | 'llc';

export interface PumpEventDetail {
  /** What happened: e.g. 'peer abort', 'socket read', or a completion status for 'error'. */
  readonly reason?: string;
  readonly code?: string;
  readonly errno?: number;
  /** The message, for 'llc'. */
  readonly data?: Buffer;
}

export interface PumpPeer {
  /** Address of the peer's RMBE. */
  addr: number | bigint;
  rkey: number;
  /** Size of the peer's RMBE. */
  size: number;
  /** The peer's alert token: put into the CDC messages we send. */
  token: number;
}

export interface PumpOptions {
  /** TCP socket fd: the pump dup()s it; stop using yours (accept with pauseOnConnect, then destroy). */
  fd: number;
  /** Local staging ring for outgoing bytes; at least peer.size bytes (it mirrors the peer's RMBE). */
  stageMr: NativeMemoryRegion;
  /** Our RMBE, registered with remoteWrite. */
  rmbMr: NativeMemoryRegion;
  rmbOffset?: number;
  rmbSize?: number;
  /** Our alert token: received CDC messages must carry it. */
  localToken: number;
  peer: PumpPeer;
  /** Application bytes read before the pump started: sent to the peer ahead of the socket's. */
  preload?: Uint8Array;
  /**
   * Receive WRs already posted on the QP (e.g. the LLC ring), wrId = slot in 0..slots-1, each
   * `slotSize` bytes of `mr` from `offset`: the first messages land there; the pump reads them and
   * does not repost them. The QP needs maxRecvWr >= 32 + slots.
   */
  postedRecvs?: { mr: NativeMemoryRegion; offset?: number; slots: number; slotSize: number };
}

export interface PumpStats {
  readonly bytesFromSocket: number;
  readonly bytesToSocket: number;
  readonly cdcSent: number;
  readonly cdcReceived: number;
  readonly llcReceived: number;
  readonly badCdc: number;
  readonly stallsPeerFull: number;
  readonly stallsSocketFull: number;
  readonly producer: number;
  readonly peerConsumer: number;
  readonly peerProducer: number;
  readonly consumer: number;
  /** The peer's done-writing (or closed) flag has been received. */
  readonly peerDoneWriting: boolean;
}

export type LinkState = 'up' | 'failed' | 'closed';

/** llc: an LLC message arrived (detail.data); error: the link failed (detail.reason, a completion status). */
export type LinkEventType = 'llc' | 'error';

export interface LinkOptions {
  /** Receive ring size (slots of 64 bytes, default 64). The QP needs maxRecvWr >= recvSlots + postedRecvs.slots. */
  recvSlots?: number;
  /** Receive WRs already posted on the QP (e.g. an LLC ring), as for PumpOptions.postedRecvs. */
  postedRecvs?: { mr: NativeMemoryRegion; offset?: number; slots: number; slotSize: number };
}

export interface LinkStats {
  /** Data pumps attached to the link now. */
  readonly connections: number;
  readonly cdcReceived: number;
  readonly llcReceived: number;
  /** CDC messages of a wrong length. */
  readonly badCdc: number;
  /** CDC messages carrying an alert token no connection on the link has (dropped, as the kernel does). */
  readonly unknownToken: number;
  /** CDC messages dropped because too many arrived for a token before its pump started. */
  readonly earlyDropped: number;
  readonly sendQueued: number;
}

export interface NativeSmcLink {
  readonly state: LinkState;
  stats(): LinkStats;
  /** A 44-byte LLC message (type != 0xFE) as a signalled inline SEND. */
  sendLlc(msg: Uint8Array): void;
  /** CDCs carrying this alert token are kept until a pump with it attaches. */
  expect(token: number): void;
  forget(token: number): void;
  /** Handles a message taken off the CQ before the link existed. */
  inject(msg: Uint8Array): void;
  close(): void;
}

export interface NativeDataPump {
  readonly state: PumpState;
  stats(): PumpStats;
  sendLlc(msg: Uint8Array): void;
  /** Handles `msg` as if received on the QP (taken off the CQ before the pump started), then runs a pump step. */
  inject(msg?: Uint8Array): void;
  /** Abortive close: CDC with the abort flag, socket reset, event 'aborted'. */
  abort(): void;
  close(): void;
}

export type TcpRelayState = 'running' | 'closed' | 'reset' | 'detached';

/** closed: both FINs forwarded and everything written; reset: one side failed (or abort()), the other was reset. */
export type TcpRelayEventType = 'closed' | 'reset';

export interface TcpRelayOptions {
  /** The application's TCP socket fd: the relay dup()s it; stop using yours (pause, stop reading, destroy). */
  appFd: number;
  /** The peer's TCP socket fd, likewise. */
  peerFd: number;
  /** Bytes already read from the application socket: sent to the peer before any spliced. */
  appPending?: Uint8Array;
  /** Bytes already read from the peer socket: sent to the application first. */
  peerPending?: Uint8Array;
  /** The application's FIN was already received: the peer gets it after appPending. */
  appEnded?: boolean;
  /** The peer's FIN was already received: the application gets it after peerPending. */
  peerEnded?: boolean;
}

export interface TcpRelayStats {
  /** Bytes written to the peer (app -> peer). */
  readonly tx: number;
  /** Bytes written to the application (peer -> app). */
  readonly rx: number;
}

export interface TcpRelayEventDetail extends TcpRelayStats {
  /** The side whose failure reset the other ('app' too for abort() and close()), for 'reset'. */
  readonly resetBy?: 'app' | 'peer';
  /** What failed, e.g. 'socket read', 'socket write', 'socket poll', 'local abort'. */
  readonly reason?: string;
  /** errno name of the failure, e.g. 'ECONNRESET'; absent for abort() and close(). */
  readonly code?: string;
}

export interface NativeTcpRelay {
  readonly state: TcpRelayState;
  stats(): TcpRelayStats;
  /** Resets both connections: event 'reset' (resetBy 'app', reason 'local abort'). No-op once ended. */
  abort(): void;
  /** Aborts a running relay (reason 'local close'), then releases it. Idempotent. */
  close(): void;
}

export type VerbsErrorCtor = new (message: string, code: string, syscall: string, errno: number) => Error;

export interface NativeBinding {
  readonly abiVersion: number;
  Context: new (name?: string) => NativeContext;
  ProtectionDomain: new (ctx: NativeContext) => NativeProtectionDomain;
  MemoryRegion: new (
    pd: NativeProtectionDomain,
    buf: RegistrableMemory,
    access?: MrAccess,
  ) => NativeMemoryRegion;
  MemoryWindow: new (pd: NativeProtectionDomain) => NativeMemoryWindow;
  CompletionChannel: new (ctx: NativeContext) => NativeCompletionChannel;
  CompletionQueue: new (
    ctx: NativeContext,
    channel: NativeCompletionChannel,
    cqe?: number,
  ) => NativeCompletionQueue;
  QueuePair: new (
    pd: NativeProtectionDomain,
    sendCq: NativeCompletionQueue,
    recvCq: NativeCompletionQueue,
    caps?: QpCaps,
  ) => NativeQueuePair;
  DataPump: new (linkOrQp: NativeSmcLink | NativeQueuePair, opts: PumpOptions) => NativeDataPump;
  SmcLink: new (qp: NativeQueuePair, opts?: LinkOptions) => NativeSmcLink;
  TcpRelay: new (opts: TcpRelayOptions) => NativeTcpRelay;
  listDevices(): DeviceInfo[];
  allocBuffer(size: number): Buffer;
  releaseBuffer(buf: Buffer): void;
  trimMemory(): boolean;
  getOriginalDst(fd: number): OriginalDst;
  setSaveSyn(fd: number): void;
  getSavedSyn(fd: number): Buffer | null;
  setLinger(fd: number, seconds: number | null): void;
  smcoFlags(fd: number, pinDir?: string): number | null;
  smcoSkipPeer(fd: number, ttlMs: number, pinDir?: string): void;
  debugCounters(): DebugCounters;
  debugStats(): DebugStats;
  setErrorClass(ctor: VerbsErrorCtor): void;
}
