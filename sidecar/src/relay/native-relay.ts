import type { Socket } from 'node:net';
import type { TcpRelay, TcpRelayEnd } from '../../../native/index.js';
import { socketFd } from '../intercept/original-dst.js';
import type { VerbsModule } from '../native-loader.js';
import { detachReader } from './hand-over.js';
import { type PipeEnd, type PipeOptions, type PipeResult, relay } from './pipe.js';

/** How often the byte counters are read from the native relay for `onBytes`. */
const STATS_INTERVAL_MS = 1000;

/**
 * Like {@link relay}, with the bytes moved in native code: the addon's TcpRelay
 * (native/src/tcp_relay.cc) splices them between the two descriptors on the event loop, and
 * JavaScript only hands over the sockets and watches the counters and the end. Same contract and
 * result: pending bytes first, a FIN forwarded as a half-close, a failing side resets the other,
 * the relay ends 'closed' or 'reset'. Falls back to {@link relay} when a socket has no
 * descriptor, is no longer open both ways, or the native relay cannot start.
 *
 * The sockets are destroyed as soon as the native relay owns their descriptors: their 'close'
 * events come at the start, not at the end of the connection.
 */
export async function nativeRelay(
  verbs: Pick<VerbsModule, 'TcpRelay'>,
  app: PipeEnd,
  peer: PipeEnd,
  opts: PipeOptions = {},
  running: RunningRelays = new RunningRelays(),
): Promise<PipeResult> {
  if (!handOverable(app.socket) || !handOverable(peer.socket)) return relay(app, peer, opts);
  // Bytes the sockets still have to write would be lost with them: they go out first.
  if (
    !(await flushed(app.socket)) ||
    !(await flushed(peer.socket)) ||
    !handOverable(app.socket) ||
    !handOverable(peer.socket)
  )
    return relay(app, peer, opts);
  const appFd = socketFd(app.socket);
  const peerFd = socketFd(peer.socket);
  const appPending = Buffer.concat([app.pending ?? Buffer.alloc(0), ...detachReader(app.socket)]);
  const peerPending = Buffer.concat([peer.pending ?? Buffer.alloc(0), ...detachReader(peer.socket)]);
  let native: TcpRelay;
  try {
    native = new verbs.TcpRelay({
      appFd,
      peerFd,
      ...(appPending.byteLength > 0 ? { appPending } : {}),
      ...(peerPending.byteLength > 0 ? { peerPending } : {}),
      appEnded: app.ended === true,
      peerEnded: peer.ended === true,
    });
  } catch {
    // Nothing was moved: the JavaScript relay takes the sockets as they are, bytes read included.
    return relay(
      { socket: app.socket, pending: appPending, ...(app.ended === true ? { ended: true } : {}) },
      { socket: peer.socket, pending: peerPending, ...(peer.ended === true ? { ended: true } : {}) },
      opts,
    );
  }
  // The relay owns duplicates of both descriptors now (the zero linger is the socket's, it stays).
  release(app.socket);
  release(peer.socket);
  return watch(native, opts, running);
}

/** A connected socket whose descriptor the native relay can take. */
function handOverable(s: Socket): boolean {
  return !s.destroyed && !s.connecting && !s.writableEnded && socketFd(s) >= 0;
}

/** Resolves once everything written to `s` reached the kernel: false if the socket failed meanwhile. */
function flushed(s: Socket): Promise<boolean> {
  if (s.writableLength === 0) return Promise.resolve(true);
  // A failure meanwhile must not be an uncaught 'error' (it is emitted after the write callback,
  // so the listener stays): relay() then finds the socket destroyed and resets the other.
  s.on('error', () => undefined);
  // Writes complete in order: the empty one's callback comes after the ones before it.
  return new Promise((resolve) => s.write(Buffer.alloc(0), (err) => resolve(err == null)));
}

/** Closes the JavaScript side of a handed-over socket: its descriptor only, the connection stays. */
function release(socket: Socket): void {
  socket.on('error', () => undefined);
  socket.destroy();
}

/**
 * Native relays running now, with their byte counters read on one timer for all of them (a burst
 * of connections must not mean a timer each).
 */
export class RunningRelays {
  private readonly relays = new Set<TcpRelay>();
  /** The relays whose counters someone reads; the timer runs while there is one. */
  private readonly reporters = new Map<TcpRelay, () => void>();
  private timer: NodeJS.Timeout | null = null;

  add(relay: TcpRelay, report: (() => void) | null): void {
    this.relays.add(relay);
    if (report === null) return;
    this.reporters.set(relay, report);
    if (this.timer === null) {
      this.timer = setInterval(() => {
        for (const [r, rep] of this.reporters) if (r.state === 'running') rep();
      }, STATS_INTERVAL_MS);
      this.timer.unref();
    }
  }

  delete(relay: TcpRelay): void {
    this.relays.delete(relay);
    if (this.reporters.delete(relay) && this.reporters.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Resets every running relay's connections, as destroying the sockets does for relay(). */
  abortAll(): void {
    for (const r of this.relays) r.abort();
  }
}

/** One sidecar's native relays: it resets them when it stops (they hold the event loop open). */
export class NativeRelays {
  private readonly running = new RunningRelays();

  constructor(private readonly verbs: Pick<VerbsModule, 'TcpRelay'>) {}

  readonly relay = (app: PipeEnd, peer: PipeEnd, opts?: PipeOptions): Promise<PipeResult> =>
    nativeRelay(this.verbs, app, peer, opts, this.running);

  abortAll(): void {
    this.running.abortAll();
  }
}

function watch(native: TcpRelay, opts: PipeOptions, running: RunningRelays): Promise<PipeResult> {
  const reported = { tx: 0, rx: 0 };
  const report = (counts: { tx: number; rx: number }): void => {
    const tx = counts.tx - reported.tx;
    const rx = counts.rx - reported.rx;
    reported.tx = counts.tx;
    reported.rx = counts.rx;
    if (tx > 0) opts.onBytes?.('tx', tx);
    if (rx > 0) opts.onBytes?.('rx', rx);
  };
  running.add(native, opts.onBytes === undefined ? null : () => report(native.stats()));
  return native.done.then((end: TcpRelayEnd) => {
    running.delete(native);
    const { detail } = end;
    report(detail);
    native.close();
    if (end.type === 'closed') return { tx: detail.tx, rx: detail.rx, outcome: 'closed' };
    const by = detail.resetBy ?? 'app';
    const error: NodeJS.ErrnoException = new Error(
      `${by} ${detail.reason ?? 'reset'}${detail.code === undefined ? '' : `: ${detail.code}`}`,
    );
    if (detail.code !== undefined) error.code = detail.code;
    return { tx: detail.tx, rx: detail.rx, outcome: 'reset', resetBy: by, error };
  });
}
