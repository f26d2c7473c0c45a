import type {
  CompletionQueue,
  MemoryRegion,
  QueuePair,
  SendWr,
  WorkCompletion,
} from '../../../native/index.js';
import type { ProtectionDomain } from '../../../native/index.js';
import type { Logger } from '../log.js';
import type { VerbsModule } from '../native-loader.js';
import { CDC_MESSAGE_LENGTH, type CdcMessage, decodeCdcMessage, encodeCdcMessage } from '../protocol/cdc.js';
import type { Direction, PipeEnd, PipeResult, SidecarResetCause } from '../relay/pipe.js';
import { CdcFlow } from './cdc-flow.js';
import type { LlcChannel } from './llc-channel.js';
import type { SmcConnection } from './smc-connection.js';
import { endInOrder } from '../relay/reset-on-exit.js';

export interface JsSmcConnectionOptions {
  id: string;
  linkId: string;
  verbs: VerbsModule;
  pd: ProtectionDomain;
  qp: QueuePair;
  cq: CompletionQueue;
  /** The link's receive ring (posted during LLC); CDC messages arrive in it too. */
  llc: LlcChannel;
  rmb: Buffer;
  sendRing: Buffer;
  sendMr: MemoryRegion;
  localToken: number;
  peer: { addr: bigint; rkey: number; size: number; token: number };
  log: Logger;
  /** Called once, after the connection ended and the link may be torn down. */
  onClosed: (outcome: PipeResult['outcome']) => void;
  /** Counts RDMA errors by kind. */
  onRdmaError: (kind: string) => void;
}

const CDC_SLOTS = 4;
const WR_BASE = 10_000_000;
/** How long the QP outlives the connection, so the peer's last CDC still lands. */
const LINGER_MS = 1000;
/**
 * A peer that ends its data while write-blocked (the Linux kernel, when its close gave up waiting
 * for RMBE space) still writes what it had queued and clears write-blocked with its last write;
 * if that write filled the window exactly, nothing more comes, and the end is taken this long
 * after the RMBE drained. Same rule as the native pump (native/src/data_pump.cc).
 */
const BLOCKED_END_GRACE_MS = 1000;

/** The JS data path's abort reasons that are the sidecar's own doing (not an application's reset). */
function jsResetCause(reason: string): SidecarResetCause | null {
  if (reason.startsWith('application socket') || reason === 'peer aborted the connection') return null;
  if (reason.startsWith('bad CDC message')) return 'cdc-protocol';
  return 'link-failed';
}

/**
 * The SMC-R data path in JavaScript, standing in for the native DataPump
 * (native/README.md) with the same wire behaviour: application bytes are RDMA
 * WRITten into the peer's RMBE, each batch followed by a CDC message carrying
 * our producer cursor; received CDCs advance the peer's producer cursor, the
 * bytes are handed to the application and acknowledged by a CDC with our
 * consumer cursor. One data batch and one acknowledgement are in flight at most.
 */
export class JsSmcConnection implements SmcConnection {
  readonly id: string;
  readonly linkId: string;
  private readonly flow: CdcFlow;
  private readonly cdcBuf: Buffer;
  private readonly cdcMr: MemoryRegion;
  private cdcSlot = 0;
  private seq = 0;
  private nextWr = WR_BASE;
  private readonly inflight = new Map<number, 'data' | 'ack' | 'ctl'>();
  private txQueue: Buffer[] = [];
  private txQueued = 0;
  private dataInflight = 0;
  private ackInflight = false;
  private ackWanted = false;
  private appEnded = false;
  private sentDone = false;
  private peerDone = false;
  private peerDoneBlocked = false;
  private graceTimer: NodeJS.Timeout | null = null;
  private delivering = false;
  private appWriteEnded = false;
  private finished = false;
  private app: PipeEnd | null = null;
  private onBytes: (d: Direction, n: number) => void = () => undefined;
  private counts = { tx: 0, rx: 0 };
  private resolveRun: (r: PipeResult) => void = () => undefined;
  private unsubscribe: () => void = () => undefined;
  private lingerTimer: NodeJS.Timeout | null = null;
  private disposed = false;

  constructor(private readonly o: JsSmcConnectionOptions) {
    this.id = o.id;
    this.linkId = o.linkId;
    this.flow = new CdcFlow(o.rmb.byteLength, o.peer.size);
    this.cdcBuf = o.verbs.allocBuffer(CDC_MESSAGE_LENGTH * CDC_SLOTS);
    this.cdcMr = o.pd.registerMr(this.cdcBuf, { localWrite: true });
  }

  run(app: PipeEnd, onBytes: (direction: Direction, n: number) => void): Promise<PipeResult> {
    this.app = app;
    this.onBytes = onBytes;
    const done = new Promise<PipeResult>((resolve) => (this.resolveRun = resolve));
    void this.start(app);
    return done;
  }

  private async start(app: PipeEnd): Promise<void> {
    // CDCs that arrived before we subscribed sit in the CQ's queue.
    while (this.o.cq.pendingCount > 0) this.onCompletion(await this.o.cq.next());
    this.unsubscribe = this.o.cq.onCompletion((wc) => this.onCompletion(wc));
    const s = app.socket;
    if (app.pending !== undefined && app.pending.byteLength > 0) this.enqueue(app.pending);
    s.on('data', (chunk: Buffer) => this.enqueue(chunk));
    if (app.ended === true || s.readableEnded) this.appEnded = true;
    else
      s.on('end', () => {
        this.appEnded = true;
        this.pumpTx();
      });
    s.on('error', (err) => this.abort(`application socket failed: ${err.message}`));
    s.on('close', () => {
      if (!this.finished && !(s.readableEnded && s.writableFinished))
        this.abort('application socket closed abruptly');
    });
    s.resume();
    this.pumpTx();
  }

  private enqueue(chunk: Buffer): void {
    this.txQueue.push(chunk);
    this.txQueued += chunk.byteLength;
    if (this.txQueued > 2 * this.o.sendRing.byteLength) this.app?.socket.pause();
    this.pumpTx();
  }

  private cdc(done: boolean, abort: boolean): CdcMessage {
    this.seq = (this.seq + 1) & 0xffff;
    return {
      kind: 'cdc',
      seqno: this.seq,
      token: this.o.peer.token,
      producer: this.flow.producerCursor(),
      consumer: this.flow.consumerCursor(),
      producerFlags: {
        writeBlocked: false,
        urgentPending: false,
        urgentPresent: false,
        cursorUpdateRequested: false,
        failoverValidation: false,
      },
      connectionState: { peerDoneWriting: done, peerConnectionClosed: false, peerConnectionAbort: abort },
    };
  }

  private cdcWr(kind: 'data' | 'ack' | 'ctl', done = false, abort = false): SendWr {
    const slot = this.cdcSlot;
    this.cdcSlot = (slot + 1) % CDC_SLOTS;
    encodeCdcMessage(this.cdc(done, abort)).copy(this.cdcBuf, slot * CDC_MESSAGE_LENGTH);
    const wrId = this.nextWr++;
    this.inflight.set(wrId, kind);
    return {
      wrId,
      opcode: 'SEND',
      signaled: true,
      sgList: [{ mr: this.cdcMr, offset: slot * CDC_MESSAGE_LENGTH, length: CDC_MESSAGE_LENGTH }],
    };
  }

  private post(wrs: SendWr[]): boolean {
    try {
      this.o.qp.postSend(wrs);
      return true;
    } catch (err) {
      this.o.onRdmaError('post-send');
      this.abort(`postSend failed: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  }

  private pumpTx(): void {
    if (this.finished || this.dataInflight > 0) return;
    if (this.txQueued === 0) {
      if (this.appEnded && !this.sentDone) {
        this.sentDone = true;
        this.post([this.cdcWr('ctl', true)]);
      }
      return;
    }
    const n = Math.min(this.flow.txFree(), this.txQueued, this.o.sendRing.byteLength);
    if (n === 0) return; // peer's RMBE full: a CDC freeing space calls us again
    let copied = 0;
    while (copied < n) {
      const head = this.txQueue[0];
      if (head === undefined) break;
      const take = Math.min(head.byteLength, n - copied);
      head.copy(this.o.sendRing, copied, 0, take);
      copied += take;
      if (take === head.byteLength) this.txQueue.shift();
      else this.txQueue[0] = head.subarray(take);
    }
    this.txQueued -= n;
    if (this.txQueued <= this.o.sendRing.byteLength) this.app?.socket.resume();
    const wrs: SendWr[] = [];
    let src = 0;
    for (const seg of this.flow.txSegments(n)) {
      wrs.push({
        wrId: this.nextWr++,
        opcode: 'RDMA_WRITE',
        signaled: false,
        sgList: [{ mr: this.o.sendMr, offset: src, length: seg.length }],
        remoteAddr: this.o.peer.addr + BigInt(seg.offset),
        rkey: this.o.peer.rkey,
      });
      src += seg.length;
    }
    this.flow.commitTx(n);
    const cdc = this.cdcWr('data');
    wrs.push(cdc);
    this.dataInflight = n;
    this.post(wrs);
  }

  private sendAck(): void {
    if (this.finished) return;
    if (this.ackInflight) {
      this.ackWanted = true;
      return;
    }
    this.ackInflight = true;
    this.ackWanted = false;
    this.post([this.cdcWr('ack')]);
  }

  private onCompletion(wc: WorkCompletion): void {
    if (wc.status !== 'IBV_WC_SUCCESS') {
      if (this.finished) return;
      this.o.onRdmaError(wc.status);
      this.abort(`work completion ${wc.status}`);
      return;
    }
    if (wc.wrId < this.o.llc.slotCount) {
      this.onCdcBytes(this.o.llc.takeSlot(wc.wrId));
      return;
    }
    const kind = this.inflight.get(wc.wrId);
    this.inflight.delete(wc.wrId);
    if (kind === 'data') {
      this.counts.tx += this.dataInflight;
      this.onBytes('tx', this.dataInflight);
      this.dataInflight = 0;
      this.pumpTx();
    } else if (kind === 'ack') {
      this.ackInflight = false;
      if (this.ackWanted) this.sendAck();
    }
    this.maybeFinish();
  }

  private onCdcBytes(bytes: Buffer): void {
    if (this.finished) return;
    let m: CdcMessage;
    try {
      m = decodeCdcMessage(bytes, { localRmbeSize: this.flow.localSize, peerRmbeSize: this.flow.peerSize });
      if (m.token !== this.o.localToken)
        throw new Error(`CDC for token ${m.token}, ours is ${this.o.localToken}`);
      const { freed } = this.flow.applyPeer(m);
      if (freed > 0) this.pumpTx();
    } catch (err) {
      this.o.onRdmaError('cdc-protocol');
      this.abort(`bad CDC message: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (m.connectionState.peerConnectionAbort) {
      this.finish('reset', 'peer aborted the connection');
      return;
    }
    if (m.connectionState.peerDoneWriting || m.connectionState.peerConnectionClosed) {
      if (m.producerFlags.writeBlocked) this.peerDoneBlocked = true;
      else this.peerDone = true;
    }
    this.deliver();
  }

  private deliver(): void {
    const app = this.app;
    if (app === null || this.delivering || this.finished) return;
    const segs = this.flow.rxSegments();
    const n = segs.reduce((a, s) => a + s.length, 0);
    if (n > 0) {
      const data = Buffer.concat(segs.map((s) => this.o.rmb.subarray(s.offset, s.offset + s.length)));
      this.flow.commitRx(n);
      this.counts.rx += n;
      this.onBytes('rx', n);
      const flushed = app.socket.write(data);
      if (!flushed) {
        this.delivering = true;
        app.socket.once('drain', () => {
          this.delivering = false;
          this.sendAck();
          this.deliver();
        });
        return;
      }
      this.sendAck();
    }
    if (this.peerDoneBlocked && !this.peerDone) this.armGrace(n > 0);
    if (this.peerDone && this.flow.rxPending() === 0 && !this.appWriteEnded) {
      this.appWriteEnded = true;
      endInOrder(app.socket);
    }
    this.maybeFinish();
  }

  /** (Re)starts the end-of-data grace once the RMBE is drained; new data restarts it. */
  private armGrace(moved: boolean): void {
    if (this.graceTimer !== null && !moved) return;
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    if (this.flow.rxPending() !== 0) return;
    this.graceTimer = setTimeout(() => {
      this.graceTimer = null;
      this.peerDone = true;
      this.deliver();
    }, BLOCKED_END_GRACE_MS);
    this.graceTimer.unref();
  }

  private maybeFinish(): void {
    if (this.finished) return;
    const txDone = this.sentDone && this.dataInflight === 0 && this.inflight.size === 0;
    if (txDone && this.appWriteEnded && !this.ackInflight) this.finish('closed', 'both directions closed');
  }

  abort(reason: string): void {
    if (this.finished) return;
    // Best effort: tell the peer, whose application then sees a reset.
    try {
      this.o.qp.postSend([this.cdcWr('ctl', false, true)]);
    } catch {
      // the QP may already be in error
    }
    this.finish('reset', reason);
  }

  private finish(outcome: PipeResult['outcome'], reason: string): void {
    if (this.finished) return;
    this.finished = true;
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.o.log.debug({ outcome, reason, ...this.counts }, 'SMC-R connection ended');
    const s = this.app?.socket;
    if (outcome === 'reset' && s !== undefined && !s.destroyed) s.resetAndDestroy();
    const cause = outcome === 'reset' ? jsResetCause(reason) : null;
    this.resolveRun({
      ...this.counts,
      outcome,
      ...(outcome === 'reset' ? { resetBy: 'peer' as const } : {}),
      ...(cause === null ? {} : { resetCause: cause }),
    });
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = null;
      this.o.onClosed(outcome);
    }, LINGER_MS);
    this.lingerTimer.unref();
  }

  /** Releases what this connection registered; aborts it first if it is still running. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    if (!this.finished) this.abort('link torn down');
    this.disposed = true;
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.unsubscribe();
    this.cdcMr.close();
  }
}
