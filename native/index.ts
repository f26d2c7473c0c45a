// smc_verbs: typed libibverbs for Node.js (RC queue pairs over RoCE / InfiniBand).
//
// Object tree and close order (close() children first; a parent's close() throws VerbsError
// EBUSY while children are open, it never closes them for you):
//
//   Context ─┬─ ProtectionDomain ─┬─ MemoryRegion
//            │                    ├─ MemoryWindow ──(bound through)── QueuePair
//            │                    └─ QueuePair ──(uses)── CompletionQueue (send / recv)
//            ├─ CompletionChannel ─── CompletionQueue
//            └─ CompletionQueue
//
// A memory window once bound through a QP counts as that QP's child until the window is closed.
// Objects that are dropped without close() are released by finalizers when collected; the native
// side keeps parents alive until their children are gone, whatever order that happens in.

import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import type {
  AsyncEvent,
  DebugCounters,
  DebugStats,
  DeviceInfo,
  Mtu,
  MrAccess,
  NativeBinding,
  OriginalDst,
  LinkEventType,
  LinkOptions,
  PumpEventDetail,
  PumpEventType,
  PumpOptions,
  QpCaps,
  RecvWr,
  RegistrableMemory,
  SendOpcode,
  SendWorkRequest,
  TcpRelayEventDetail,
  TcpRelayEventType,
  TcpRelayOptions,
  WcOpcode,
  WcStatus,
  WorkCompletion,
} from './types.js';

export type * from './types.js';

function loadBinding(): NativeBinding {
  const candidates = [
    process.env['SMC_VERBS_ADDON'],
    fileURLToPath(new URL('./build/Release/smc_verbs.node', import.meta.url)),
    // compiled layout: dist/native/index.js
    fileURLToPath(new URL('../../native/build/Release/smc_verbs.node', import.meta.url)),
  ];
  const require = createRequire(import.meta.url);
  for (const path of candidates) {
    if (path && existsSync(path)) return require(path) as NativeBinding;
  }
  throw new Error('smc_verbs addon not built: run `npm run build:native` (looked in native/build/Release)');
}

const binding = loadBinding();

/** Error thrown by the addon: `code` is the errno name (e.g. 'ENODEV', 'EBUSY', 'EACCES'). */
export class VerbsError extends Error {
  override readonly name = 'VerbsError';
  constructor(
    message: string,
    /** errno name, e.g. 'ENODEV'. */
    readonly code: string,
    /** The verb or system call that failed, e.g. 'ibv_open_device'. */
    readonly syscall: string,
    /** Negative errno, as in Node's system errors. */
    readonly errno: number,
  ) {
    super(message);
  }
}
binding.setErrorClass(VerbsError);

/** The RDMA devices of this machine; empty when there are none (or no kernel RDMA support). */
export function listDevices(): DeviceInfo[] {
  return binding.listDevices();
}

/** Opens the named device, or the first one. Throws VerbsError ENODEV when there is none. */
export function openDevice(name?: string): Context {
  return new Context(name);
}

/** A zero-filled, page-aligned Buffer with its own mapping (not Node's pool): good for MRs. */
export function allocBuffer(size: number): Buffer {
  return binding.allocBuffer(size);
}

/**
 * Gives a buffer's pages back to the kernel now rather than when the Buffer is
 * collected: the process's RSS drops at once, and the buffer reads zeros from
 * then on. Only a whole buffer from allocBuffer with no open MR on it (EBUSY).
 */
export function releaseBuffer(buf: Buffer): void {
  binding.releaseBuffer(buf);
}

/**
 * Returns memory a finished burst left behind: V8's low-memory notification (a memory-reducing full
 * GC that also releases pooled heap pages), then glibc's malloc_trim. Costs one full GC; true when
 * malloc_trim gave pages back.
 */
export function trimMemory(): boolean {
  return binding.trimMemory();
}

/** Live native objects by kind. */
export function debugCounters(): DebugCounters {
  return binding.debugCounters();
}

/** Event-path statistics. */
export function debugStats(): DebugStats {
  return binding.debugStats();
}

/** SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST of a redirected TCP socket (VerbsError ENOENT if not redirected). */
export function getOriginalDst(fd: number): OriginalDst {
  return binding.getOriginalDst(fd);
}

/** TCP_SAVE_SYN on a listening socket's fd: accepted connections keep their SYN for getSavedSyn. */
export function setSaveSyn(fd: number): void {
  binding.setSaveSyn(fd);
}

/**
 * What the sock_ops program (sidecar/bpf) recorded for a connected socket's handshake, from its
 * pinned smco_conns map: SMCO_F_* flags (2 = the peer's SYN-ACK carried the SMC option), or null.
 */
export function smcoFlags(fd: number, pinDir?: string): number | null {
  return binding.smcoFlags(fd, pinDir);
}

/**
 * Enters a connected socket's peer (address and port) in the sock_ops program's pinned smco_skip
 * map: our SYNs to it carry no SMC option for `ttlMs`.
 */
export function smcoSkipPeer(fd: number, ttlMs: number, pinDir?: string): void {
  binding.smcoSkipPeer(fd, ttlMs, pinDir);
}

/** The IP + TCP headers of the SYN of an accepted connection (once), or null when none was saved. */
export function getSavedSyn(fd: number): Buffer | null {
  return binding.getSavedSyn(fd);
}

/**
 * SO_LINGER of a socket: 0 makes its last close, the process's death included, reset the
 * connection; null restores the default orderly close.
 */
export function setLinger(fd: number, seconds: number | null): void {
  binding.setLinger(fd, seconds);
}

/** A random 24-bit initial packet sequence number. */
export function randomPsn(): number {
  return randomInt(0, 1 << 24);
}

export class Context extends binding.Context {
  readonly #asyncListeners = new Set<(ev: AsyncEvent) => void>();

  /** Called by the addon for each async event of the device (port up/down, QP/CQ errors, ...). */
  onAsyncEvent(ev: AsyncEvent): void {
    for (const l of this.#asyncListeners) l(ev);
  }

  /** Subscribes to the device's async events. Returns the unsubscribe function. */
  addAsyncEventListener(listener: (ev: AsyncEvent) => void): () => void {
    this.#asyncListeners.add(listener);
    return () => this.#asyncListeners.delete(listener);
  }

  allocPd(): ProtectionDomain {
    return new ProtectionDomain(this);
  }

  createCompletionChannel(): CompletionChannel {
    return new CompletionChannel(this);
  }

  /** A completion queue on `channel` (one channel can serve many CQs). */
  createCq(channel: CompletionChannel, cqe = 256): CompletionQueue {
    return new CompletionQueue(this, channel, cqe);
  }
}

export class ProtectionDomain extends binding.ProtectionDomain {
  constructor(readonly context: Context) {
    super(context);
  }

  /** Registers `buf` (kept alive while registered). Default access: local write only. */
  registerMr(buf: RegistrableMemory, access?: MrAccess): MemoryRegion {
    return new MemoryRegion(this, buf, access);
  }

  /** A type 2 memory window (ibv_alloc_mw); bound with a 'BIND_MW' work request on a QP of this PD. */
  allocMw(): MemoryWindow {
    return new MemoryWindow(this);
  }

  createQp(opts: { sendCq: CompletionQueue; recvCq?: CompletionQueue } & QpCaps): QueuePair {
    const { sendCq, recvCq = sendCq, ...caps } = opts;
    return new QueuePair(this, sendCq, recvCq, caps);
  }
}

export class MemoryRegion extends binding.MemoryRegion {
  constructor(
    readonly pd: ProtectionDomain,
    buf: RegistrableMemory,
    access?: MrAccess,
  ) {
    super(pd, buf, access);
  }
}

export class MemoryWindow extends binding.MemoryWindow {
  constructor(readonly pd: ProtectionDomain) {
    super(pd);
  }
}

export class CompletionChannel extends binding.CompletionChannel {
  constructor(readonly context: Context) {
    super(context);
  }
}

type Waiter = {
  resolve: (wc: WorkCompletion) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
};

/**
 * A completion queue. Completions arrive from the event loop (never by polling on the JS thread)
 * and are routed in this order:
 *  1. to a pending `waitFor(wrId)` for that wrId;
 *  2. else to the `onCompletion` listeners, if any;
 *  3. else into a queue that `next()`, later `waitFor()` calls and the next listener take from.
 */
export class CompletionQueue extends binding.CompletionQueue {
  readonly #listeners = new Set<(wc: WorkCompletion) => void>();
  readonly #byWrId = new Map<number, Waiter[]>();
  readonly #nextWaiters: Waiter[] = [];
  readonly #queued: WorkCompletion[] = [];

  constructor(
    readonly context: Context,
    readonly channel: CompletionChannel,
    cqe?: number,
  ) {
    super(context, channel, cqe);
  }

  /** Called by the addon with each batch of completions (at most 32), as objects. */
  onCompletions(wcs: WorkCompletion[]): void {
    for (const wc of wcs) this.#route(wc);
  }

  /** Called by the addon with each batch of completions: `n` records of 10 slots in `f`. */
  onCompletionsRaw(n: number, f: Float64Array): void {
    for (let i = 0, o = 0; i < n; i++, o += 10) {
      const imm = f[o + 4] as number;
      const wc: WorkCompletion = {
        wrId: f[o] as number,
        status: WC_STATUS[f[o + 1] as number] ?? 'IBV_WC_UNKNOWN',
        opcode: WC_OPCODE.get(f[o + 2] as number) ?? 'UNKNOWN',
        byteLen: f[o + 3] as number,
        qpNum: f[o + 5] as number,
        srcQp: f[o + 6] as number,
        wcFlags: f[o + 7] as number,
        vendorErr: f[o + 8] as number,
      };
      if (imm >= 0) (wc as { immData?: number }).immData = imm;
      this.#route(wc);
    }
  }

  #route(wc: WorkCompletion): void {
    const waiters = this.#byWrId.get(wc.wrId);
    if (waiters) {
      const w = waiters.shift();
      if (waiters.length === 0) this.#byWrId.delete(wc.wrId);
      if (w) {
        settle(w);
        w.resolve(wc);
        return;
      }
    }
    if (this.#listeners.size > 0) {
      for (const l of this.#listeners) l(wc);
      return;
    }
    const n = this.#nextWaiters.shift();
    if (n) {
      settle(n);
      n.resolve(wc);
      return;
    }
    this.#queued.push(wc);
  }

  /**
   * Subscribes to every completion not claimed by waitFor(). Completions that arrived while nobody
   * listened (queued for next()) are handed to the new listener first, in a microtask, so that a
   * listener added late misses nothing. Returns the unsubscribe function.
   */
  onCompletion(listener: (wc: WorkCompletion) => void): () => void {
    this.#listeners.add(listener);
    if (this.#queued.length > 0) {
      queueMicrotask(() => {
        while (this.#listeners.has(listener) && this.#queued.length > 0) {
          listener(this.#queued.shift() as WorkCompletion);
        }
      });
    }
    return () => this.#listeners.delete(listener);
  }

  /** The completion of work request `wrId` (resolves for error statuses too; check `status`). */
  waitFor(wrId: number, timeoutMs?: number): Promise<WorkCompletion> {
    const i = this.#queued.findIndex((wc) => wc.wrId === wrId);
    if (i >= 0) return Promise.resolve(this.#queued.splice(i, 1)[0] as WorkCompletion);
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: undefined };
      let list = this.#byWrId.get(wrId);
      if (!list) this.#byWrId.set(wrId, (list = []));
      list.push(w);
      if (timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          const l = this.#byWrId.get(wrId);
          if (l) {
            const k = l.indexOf(w);
            if (k >= 0) l.splice(k, 1);
            if (l.length === 0) this.#byWrId.delete(wrId);
          }
          reject(
            new VerbsError(
              `no completion for wrId ${wrId} within ${timeoutMs} ms`,
              'ETIMEDOUT',
              'waitFor',
              -110,
            ),
          );
        }, timeoutMs);
      }
    });
  }

  /** The next completion not claimed by waitFor() or listeners. */
  next(timeoutMs?: number): Promise<WorkCompletion> {
    const q = this.#queued.shift();
    if (q) return Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: undefined };
      this.#nextWaiters.push(w);
      if (timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          const k = this.#nextWaiters.indexOf(w);
          if (k >= 0) this.#nextWaiters.splice(k, 1);
          reject(new VerbsError(`no completion within ${timeoutMs} ms`, 'ETIMEDOUT', 'next', -110));
        }, timeoutMs);
      }
    });
  }

  /** Completions received but not yet claimed. */
  get pendingCount(): number {
    return this.#queued.length;
  }

  /** Destroys the CQ (after its QPs); pending waitFor()/next() promises reject with EBADF. */
  override close(): void {
    super.close();
    const err = () => new VerbsError('completion queue closed', 'EBADF', 'ibv_destroy_cq', -9);
    for (const list of this.#byWrId.values())
      for (const w of list) {
        settle(w);
        w.reject(err());
      }
    this.#byWrId.clear();
    for (const w of this.#nextWaiters.splice(0)) {
      settle(w);
      w.reject(err());
    }
    this.#queued.length = 0;
    this.#listeners.clear();
  }
}

// enum ibv_wc_status, by value
const WC_STATUS: readonly WcStatus[] = [
  'IBV_WC_SUCCESS',
  'IBV_WC_LOC_LEN_ERR',
  'IBV_WC_LOC_QP_OP_ERR',
  'IBV_WC_LOC_EEC_OP_ERR',
  'IBV_WC_LOC_PROT_ERR',
  'IBV_WC_WR_FLUSH_ERR',
  'IBV_WC_MW_BIND_ERR',
  'IBV_WC_BAD_RESP_ERR',
  'IBV_WC_LOC_ACCESS_ERR',
  'IBV_WC_REM_INV_REQ_ERR',
  'IBV_WC_REM_ACCESS_ERR',
  'IBV_WC_REM_OP_ERR',
  'IBV_WC_RETRY_EXC_ERR',
  'IBV_WC_RNR_RETRY_EXC_ERR',
  'IBV_WC_LOC_RDD_VIOL_ERR',
  'IBV_WC_REM_INV_RD_REQ_ERR',
  'IBV_WC_REM_ABORT_ERR',
  'IBV_WC_INV_EECN_ERR',
  'IBV_WC_INV_EEC_STATE_ERR',
  'IBV_WC_FATAL_ERR',
  'IBV_WC_RESP_TIMEOUT_ERR',
  'IBV_WC_GENERAL_ERR',
  'IBV_WC_TM_ERR',
  'IBV_WC_TM_RNDV_INCOMPLETE',
];

// enum ibv_wc_opcode, by value
const WC_OPCODE = new Map<number, WcOpcode>([
  [0, 'SEND'],
  [1, 'RDMA_WRITE'],
  [2, 'RDMA_READ'],
  [3, 'COMP_SWAP'],
  [4, 'FETCH_ADD'],
  [5, 'BIND_MW'],
  [6, 'LOCAL_INV'],
  [7, 'TSO'],
  [128, 'RECV'],
  [129, 'RECV_RDMA_WITH_IMM'],
]);

// Send opcodes as the addon's positional postSend1 numbers them.
const SEND_OPCODE: Readonly<Record<SendOpcode, number>> = {
  SEND: 0,
  SEND_WITH_IMM: 1,
  RDMA_WRITE: 2,
  RDMA_WRITE_WITH_IMM: 3,
  RDMA_READ: 4,
};

function settle(w: Waiter): void {
  if (w.timer) clearTimeout(w.timer);
}

/** What a peer needs to connect an RC QP to ours. */
export interface QpEndpoint {
  gid: string;
  qpn: number;
  psn: number;
}

export interface ConnectOptions {
  remote: QpEndpoint;
  /** Our initial send PSN (the one we advertised in our QpEndpoint). */
  localPsn: number;
  sgidIndex: number;
  port?: number;
  mtu?: Mtu;
  remoteWrite?: boolean;
  timeout?: number;
  retryCnt?: number;
  rnrRetry?: number;
}

export class QueuePair extends binding.QueuePair {
  constructor(
    readonly pd: ProtectionDomain,
    readonly sendCq: CompletionQueue,
    readonly recvCq: CompletionQueue,
    caps?: QpCaps,
  ) {
    super(pd, sendCq, recvCq, caps);
  }

  /** Posts send work requests; a single WR with at most one SGE takes the positional fast path. */
  override postSend(wr: SendWorkRequest | SendWorkRequest[]): void {
    if (Array.isArray(wr) || wr.opcode === 'BIND_MW' || wr.opcode === 'LOCAL_INV') return super.postSend(wr);
    const sg = wr.sgList;
    const s = sg?.[0];
    const op = Object.hasOwn(SEND_OPCODE, wr.opcode) ? SEND_OPCODE[wr.opcode] : undefined;
    if (
      (sg !== undefined && (!Array.isArray(sg) || sg.length > 1)) ||
      (s !== undefined && (typeof s !== 'object' || s === null)) ||
      op === undefined ||
      (wr.wrId !== undefined && typeof wr.wrId !== 'number')
    ) {
      return super.postSend(wr); // the general path (and its argument errors)
    }
    const flags =
      (wr.signaled === false ? 0 : 1) | (wr.solicited ? 2 : 0) | (wr.fence ? 4 : 0) | (wr.inline ? 8 : 0);
    this.postSend1(op, wr.wrId ?? 0, s?.mr, s?.offset, s?.length, wr.remoteAddr, wr.rkey, wr.immData, flags);
  }

  /** Posts receive work requests; a single WR with at most one SGE takes the positional fast path. */
  override postRecv(wr: RecvWr | RecvWr[]): void {
    if (Array.isArray(wr)) return super.postRecv(wr);
    const sg = wr.sgList;
    const s = sg?.[0];
    if (
      (sg !== undefined && (!Array.isArray(sg) || sg.length > 1)) ||
      (s !== undefined && (typeof s !== 'object' || s === null)) ||
      (wr.wrId !== undefined && typeof wr.wrId !== 'number')
    ) {
      return super.postRecv(wr);
    }
    this.postRecv1(wr.wrId ?? 0, s?.mr, s?.offset, s?.length);
  }

  /** RESET -> INIT -> RTR -> RTS in one go. */
  connect(o: ConnectOptions): void {
    const port = o.port ?? 1;
    this.modifyToInit({ port, remoteWrite: o.remoteWrite ?? false });
    this.modifyToRtr({
      remoteQpn: o.remote.qpn,
      remotePsn: o.remote.psn,
      remoteGid: o.remote.gid,
      sgidIndex: o.sgidIndex,
      port,
      mtu: o.mtu ?? 1024,
    });
    const rts: { psn: number; timeout?: number; retryCnt?: number; rnrRetry?: number } = { psn: o.localPsn };
    if (o.timeout !== undefined) rts.timeout = o.timeout;
    if (o.retryCnt !== undefined) rts.retryCnt = o.retryCnt;
    if (o.rnrRetry !== undefined) rts.rnrRetry = o.rnrRetry;
    this.modifyToRts(rts);
  }
}

export type PumpEnd = { type: 'closed' | 'aborted' | 'error'; detail: PumpEventDetail };

/**
 * Moves one TCP connection's bytes in native code (SMC-R CDC + RDMA WRITE into the peer's RMBE),
 * over an SmcLink shared with the other connections of the link group, or over a bare RC QP that it
 * then owns alone (RTS, CQs of its own, maxInlineData >= 44, maxRecvWr >= 32; JS cannot post on it
 * while the pump runs; `close()` moves it to ERR and hands the CQs back, their receive flushes then
 * reach the CQ with wrIds >= 2^48).
 */
export class DataPump extends binding.DataPump {
  readonly #listeners = new Map<PumpEventType, Set<(detail: PumpEventDetail) => void>>();
  #resolveDone: ((end: PumpEnd) => void) | undefined;
  /** Settles when the pump ends: closed (both directions finished), aborted or error. */
  readonly done: Promise<PumpEnd>;

  constructor(linkOrQp: SmcLink | QueuePair, opts: PumpOptions) {
    super(linkOrQp, opts);
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  /** Called by the addon. */
  onPumpEvent(type: PumpEventType, detail: PumpEventDetail): void {
    for (const l of this.#listeners.get(type) ?? []) l(detail);
    if ((type === 'closed' || type === 'aborted' || type === 'error') && this.#resolveDone) {
      this.#resolveDone({ type, detail });
      this.#resolveDone = undefined;
    }
  }

  on(type: PumpEventType, listener: (detail: PumpEventDetail) => void): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }
}

/**
 * An SMC-R link in native code: one RC QP (in RTS, CQs of its own, maxInlineData >= 44) shared by
 * the data pumps of a link group. It routes received CDCs to the pump whose alert token they carry,
 * reports LLC messages as 'llc' events and a failed work completion as 'error' (every pump on it
 * then ends with 'error'). `close()` ends the pumps, moves the QP to ERR and hands the CQs back.
 */
export class SmcLink extends binding.SmcLink {
  readonly #listeners = new Map<LinkEventType, Set<(detail: PumpEventDetail) => void>>();

  constructor(
    readonly qp: QueuePair,
    opts: LinkOptions = {},
  ) {
    super(qp, opts);
  }

  /** Called by the addon. */
  onLinkEvent(type: LinkEventType, detail: PumpEventDetail): void {
    for (const l of this.#listeners.get(type) ?? []) l(detail);
  }

  on(type: LinkEventType, listener: (detail: PumpEventDetail) => void): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }
}

export type TcpRelayEnd = { type: TcpRelayEventType; detail: TcpRelayEventDetail };

/**
 * Relays a plain TCP connection in native code: splice(2) between the application socket and the
 * peer socket through a pipe per direction, on the event loop. A FIN is forwarded as a half-close
 * (zero linger cleared first), a failing side resets the other. It owns duplicates of both
 * descriptors: the caller stops reading its sockets and destroys them once it is constructed.
 */
export class TcpRelay extends binding.TcpRelay {
  #resolveDone: ((end: TcpRelayEnd) => void) | undefined;
  /** Settles once, when the relay ends: 'closed' or 'reset'. */
  readonly done: Promise<TcpRelayEnd>;

  constructor(opts: TcpRelayOptions) {
    super(opts);
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  /** Called by the addon, once. */
  onRelayEvent(type: TcpRelayEventType, detail: TcpRelayEventDetail): void {
    this.#resolveDone?.({ type, detail });
    this.#resolveDone = undefined;
  }
}
