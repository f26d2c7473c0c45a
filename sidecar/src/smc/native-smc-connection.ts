import type { Socket } from 'node:net';
import type { DataPump, MemoryRegion, PumpEnd, PumpStats, SmcLink } from '../../../native/index.js';
import type { Logger } from '../log.js';
import type { VerbsModule } from '../native-loader.js';
import { detachReader } from '../relay/hand-over.js';
import type { Direction, PipeEnd, PipeResult, SidecarResetCause } from '../relay/pipe.js';
import type { SmcConnection } from './smc-connection.js';

export interface NativeSmcConnectionOptions {
  id: string;
  linkId: string;
  verbs: VerbsModule;
  /** The link of the connection's link group (it keeps CDCs for localToken until the pump starts). */
  link: SmcLink;
  /** Staging ring for outgoing bytes, at least the peer's RMBE size. */
  stageMr: MemoryRegion;
  rmbMr: MemoryRegion;
  localToken: number;
  peer: { addr: bigint; rkey: number; size: number; token: number };
  /** The TCP connection between the sidecars: when it ends while the pump still waits for the peer, the peer is gone. */
  tcp: Socket;
  log: Logger;
  /** Called once, after the connection ended and the link may be torn down. */
  onClosed: (outcome: PipeResult['outcome']) => void;
  onRdmaError: (kind: string) => void;
  /** How often byte counters are read from the pump for the metrics. */
  statsIntervalMs?: number;
  /** How long the peer sidecar's TCP FIN may precede its done-writing CDC before the connection is reset. */
  peerGoneGraceMs?: number;
}

/** How long the pump stays on the link after the end, so the peer's last CDCs still land in it. */
const LINGER_MS = 1000;

/**
 * Whether the sidecar caused a pump's abortive end, and why: a peer abort or a failing application
 * socket is one of the applications resetting, anything else is ours.
 */
export function resetCauseOf(
  type: PumpEnd['type'],
  reason: string,
  local: SidecarResetCause | null,
): SidecarResetCause | null {
  if (type === 'closed') return null;
  if (type === 'error') return 'link-failed';
  if (reason === 'invalid CDC cursor') return 'cdc-protocol';
  if (reason === 'local abort') return local ?? 'link-failed';
  return null;
}

/** The fd of a connected net.Socket (Node's TCPWrap exposes it on POSIX). */
export function socketFd(socket: Socket): number | null {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/**
 * An SMC-R connection whose bytes move in native code: the addon's DataPump
 * (native/src/data_pump.cc) reads the application socket, RDMA WRITEs into the
 * peer's RMBE, posts the CDCs, and writes what the peer put into our RMB back
 * to the socket. JavaScript only hands it the descriptor, the link and the
 * bytes held during the handshake, then observes counters and the end.
 */
export class NativeSmcConnection implements SmcConnection {
  readonly id: string;
  readonly linkId: string;
  private pump: DataPump | null = null;
  private finished = false;
  private disposed = false;
  private abortRequested: string | null = null;
  /** Why we aborted the pump ourselves, when we did. */
  private localCause: SidecarResetCause | null = null;
  private reported = { tx: 0, rx: 0, badCdc: 0 };
  private onBytes: (d: Direction, n: number) => void = () => undefined;
  private statsTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private resolveRun: (r: PipeResult) => void = () => undefined;

  constructor(private readonly o: NativeSmcConnectionOptions) {
    this.id = o.id;
    this.linkId = o.linkId;
  }

  run(app: PipeEnd, onBytes: (direction: Direction, n: number) => void): Promise<PipeResult> {
    this.onBytes = onBytes;
    const done = new Promise<PipeResult>((resolve) => (this.resolveRun = resolve));
    try {
      this.start(app);
    } catch (err) {
      this.o.onRdmaError('pump-start');
      this.o.log.warn({ err }, 'native data pump did not start; resetting the connection');
      const s = app.socket;
      if (!s.destroyed) s.resetAndDestroy();
      this.finish({ tx: 0, rx: 0, outcome: 'reset', resetBy: 'peer', resetCause: 'pump-start' }, null);
    }
    return done;
  }

  private start(app: PipeEnd): void {
    const { o } = this;
    const s = app.socket;
    const fd = socketFd(s);
    if (fd === null) throw new Error('application socket has no file descriptor');
    const buffered = detachReader(s);
    const preload = Buffer.concat([app.pending ?? Buffer.alloc(0), ...buffered]);
    const pump = new o.verbs.DataPump(o.link, {
      fd,
      stageMr: o.stageMr,
      rmbMr: o.rmbMr,
      localToken: o.localToken,
      peer: { addr: o.peer.addr, rkey: o.peer.rkey, size: o.peer.size, token: o.peer.token },
      ...(preload.byteLength > 0 ? { preload } : {}),
    });
    this.pump = pump;
    // The pump owns a duplicate of the descriptor now.
    s.removeAllListeners('data');
    s.on('error', () => undefined);
    s.destroy();
    void pump.done.then((end) => this.ended(end));
    // Runs the first pump step: the CDCs the link kept for us and the preloaded bytes.
    pump.inject();
    this.watchPeerSidecar();
    const interval = o.statsIntervalMs ?? 1000;
    this.statsTimer = setInterval(() => this.report(), interval);
    this.statsTimer.unref();
    if (this.abortRequested !== null) pump.abort();
  }

  /** Feeds the byte counters' growth since the last report to the metrics. */
  private report(): PumpStats | null {
    const pump = this.pump;
    if (pump === null || pump.state === 'detached') return null;
    const st = pump.stats();
    const tx = st.bytesFromSocket - this.reported.tx;
    const rx = st.bytesToSocket - this.reported.rx;
    if (tx > 0) this.onBytes('tx', tx);
    if (rx > 0) this.onBytes('rx', rx);
    if (st.badCdc > this.reported.badCdc) {
      for (let i = this.reported.badCdc; i < st.badCdc; i++) this.o.onRdmaError('cdc-bad-token');
    }
    this.reported = { tx: st.bytesFromSocket, rx: st.bytesToSocket, badCdc: st.badCdc };
    return st;
  }

  /**
   * The TCP connection between the sidecars carries nothing after CLC. The peer ends it after its
   * pump finished; if it ends (or fails) while ours still waits for the peer's done-writing, the
   * peer sidecar is gone and our application must see a reset rather than wait forever.
   */
  private watchPeerSidecar(): void {
    const tcp = this.o.tcp;
    const gone = (why: string, graceMs: number): void => {
      if (this.finished || this.graceTimer !== null) return;
      this.graceTimer = setTimeout(() => {
        const pump = this.pump;
        if (this.finished || pump === null) return;
        const st = pump.stats();
        if (st.peerDoneWriting) return; // the peer finished its side; ours completes on its own
        this.o.log.info({ why }, 'peer sidecar connection ended before the SMC-R connection; resetting');
        this.o.onRdmaError('peer-gone');
        this.localCause = 'peer-gone';
        pump.abort();
      }, graceMs);
      this.graceTimer.unref();
    };
    const grace = this.o.peerGoneGraceMs ?? 3000;
    tcp.on('data', () => undefined);
    tcp.on('end', () => gone('peer sidecar closed its TCP connection', grace));
    tcp.on('error', (err) => gone(`peer sidecar TCP connection failed: ${err.message}`, 0));
    tcp.on('close', () => gone('peer sidecar TCP connection closed', grace));
    tcp.resume();
  }

  private ended(end: PumpEnd): void {
    const st = this.report();
    const reason = end.detail.reason ?? '';
    if (end.type === 'error') this.o.onRdmaError(reason === '' ? 'pump-error' : reason);
    else if (end.type === 'aborted' && reason === 'invalid CDC cursor') this.o.onRdmaError('cdc-protocol');
    const counts = { tx: st?.bytesFromSocket ?? this.reported.tx, rx: st?.bytesToSocket ?? this.reported.rx };
    const byApp = reason === 'socket read' || reason === 'socket write' || reason === 'socket poll';
    const cause = resetCauseOf(end.type, reason, this.localCause);
    const result: PipeResult =
      end.type === 'closed'
        ? { ...counts, outcome: 'closed' }
        : {
            ...counts,
            outcome: 'reset',
            resetBy: byApp ? 'app' : 'peer',
            ...(cause === null ? {} : { resetCause: cause }),
          };
    this.o.log.debug({ end: end.type, detail: end.detail, stats: st }, 'SMC-R connection ended');
    this.finish(result, end);
  }

  private finish(result: PipeResult, _end: PumpEnd | null): void {
    if (this.finished) return;
    this.finished = true;
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.statsTimer = null;
    this.graceTimer = null;
    this.resolveRun(result);
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = null;
      this.o.onClosed(result.outcome);
    }, LINGER_MS);
    this.lingerTimer.unref();
  }

  abort(reason: string): void {
    if (this.finished) return;
    this.localCause ??= 'link-failed';
    this.o.log.debug({ reason }, 'aborting SMC-R connection');
    if (this.pump === null) this.abortRequested = reason;
    else this.pump.abort();
  }

  /** Stops the pump (aborting it first if it is still running) and takes it off the link. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (!this.finished) this.abort('link torn down');
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.pump?.close();
  }
}
