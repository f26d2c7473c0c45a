import type { Socket } from 'node:net';
import { endInOrder } from './reset-on-exit.js';

/** Which way bytes flow, seen from the application whose connection we carry. */
export type Direction = 'tx' | 'rx';

export interface PipeEnd {
  socket: Socket;
  /** Bytes already read from this socket that must reach the other side first. */
  pending?: Buffer | undefined;
  /** This socket already delivered its FIN (e.g. during the handshake): end the other side once `pending` is written. */
  ended?: boolean;
}

/** Why the sidecar reset an application connection after the commit point (smc_app_resets_total). */
export const SIDECAR_RESET_CAUSES = ['peer-gone', 'link-failed', 'cdc-protocol', 'pump-start'] as const;
export type SidecarResetCause = (typeof SIDECAR_RESET_CAUSES)[number];

export interface PipeResult {
  /** Bytes carried app → peer and peer → app. */
  tx: number;
  rx: number;
  /** How the relay ended: both FINs exchanged, or one side reset / failed. */
  outcome: 'closed' | 'reset';
  /** The side whose failure reset the other, when outcome is 'reset'. */
  resetBy?: 'app' | 'peer';
  /**
   * Set when the sidecar itself reset the application's connection (neither application did):
   * the peer sidecar vanished, the link failed, the peer broke the protocol, the pump did not start.
   */
  resetCause?: SidecarResetCause;
  error?: Error;
}

export interface PipeOptions {
  /** Called for every chunk carried, e.g. to feed byte counters. */
  onBytes?: (direction: Direction, n: number) => void;
}

/**
 * Relays bytes both ways between the application socket and the peer socket
 * until both directions are done. A FIN is forwarded as a half-close (both
 * sockets must have allowHalfOpen), a reset or error on one side resets the
 * other (RST via resetAndDestroy), and backpressure pauses the reading side.
 */
export function relay(app: PipeEnd, peer: PipeEnd, opts: PipeOptions = {}): Promise<PipeResult> {
  return new Promise((resolve) => {
    const counts = { tx: 0, rx: 0 };
    let finished = false;
    let closedCount = 0;
    let failure: { by: 'app' | 'peer'; error: Error } | null = null;

    const finish = (): void => {
      if (finished) return;
      finished = true;
      if (failure === null) resolve({ ...counts, outcome: 'closed' });
      else resolve({ ...counts, outcome: 'reset', resetBy: failure.by, error: failure.error });
    };

    const fail = (by: 'app' | 'peer', error: Error): void => {
      if (failure !== null) return;
      failure = { by, error };
      const other = by === 'app' ? peer.socket : app.socket;
      if (!other.destroyed) other.resetAndDestroy();
    };

    const wire = (from: PipeEnd, to: PipeEnd, direction: Direction, side: 'app' | 'peer'): void => {
      const src = from.socket;
      const dst = to.socket;
      const forward = (chunk: Buffer): void => {
        counts[direction] += chunk.byteLength;
        opts.onBytes?.(direction, chunk.byteLength);
        if (!dst.write(chunk)) {
          src.pause();
          dst.once('drain', () => src.resume());
        }
      };
      if (from.pending !== undefined && from.pending.byteLength > 0) forward(from.pending);
      src.on('data', forward);
      const endOther = (): void => {
        if (!dst.destroyed && !dst.writableEnded) endInOrder(dst);
      };
      // A paused socket still emits 'end' when its buffer is empty, so the FIN may already be in.
      if (from.ended === true || src.readableEnded) endOther();
      else src.on('end', endOther);
      src.on('error', (err) => fail(side, err));
      src.on('close', (hadError) => {
        // Closed without a clean FIN in both directions (destroyed locally, or reset): propagate as reset.
        if (hadError || !src.readableEnded || !src.writableFinished) {
          fail(side, new Error(`${side} socket closed abruptly`));
        }
        closedCount++;
        if (closedCount === 2) finish();
      });
      if (src.destroyed) {
        closedCount++;
        if (!src.readableEnded || !src.writableFinished)
          fail(side, new Error(`${side} socket already closed`));
      }
    };

    wire(app, peer, 'tx', 'app');
    wire(peer, app, 'rx', 'peer');
    if (closedCount === 2) finish();
    app.socket.resume();
    peer.socket.resume();
  });
}
