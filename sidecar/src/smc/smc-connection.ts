import type { Direction, PipeEnd, PipeResult } from '../relay/pipe.js';

/**
 * One application connection carried over SMC-R: its RMBs on a link of a link
 * group, CDC cursors, and the data pump between the application socket and
 * the RDMA link. The TCP connection between the sidecars stays open beside it
 * (as in SMC-R) and carries nothing after the handshake.
 */
export interface SmcConnection {
  /** Connection id for logs (also the RMBE alert token in hex). */
  readonly id: string;
  /** Link id (link group id + link number) for logs. */
  readonly linkId: string;
  /** Moves bytes between `app` and the peer until both directions are closed or one side fails. */
  run(app: PipeEnd, onBytes: (direction: Direction, n: number) => void): Promise<PipeResult>;
  /** Abortive close: the peer's application sees a reset. */
  abort(reason: string): void;
}
