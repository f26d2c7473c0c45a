import type { CdcMessage } from '../protocol/cdc.js';
import { type Cursor, cursorDiff, cursorFromPosition } from '../protocol/cursor.js';

export class CdcFlowError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CdcFlowError';
  }
}

/** A piece of a ring buffer: `length` bytes at `offset`. */
export interface Segment {
  offset: number;
  length: number;
}

function ringSegments(size: number, position: number, length: number): Segment[] {
  const offset = position % size;
  const first = Math.min(length, size - offset);
  const segs: Segment[] = first > 0 ? [{ offset, length: first }] : [];
  if (length > first) segs.push({ offset: 0, length: length - first });
  return segs;
}

/**
 * The cursor bookkeeping of one SMC-R connection (RFC 7609 "RMBE cursors"),
 * kept as absolute byte positions and converted to (wrap, count) cursors at
 * the wire. Pure: the data path asks it where to write and what to read.
 */
export class CdcFlow {
  /** Bytes we have written into the peer's RMBE. */
  private txWritten = 0;
  /** Bytes of those the peer has consumed (its consumer cursor). */
  private peerConsumed = 0;
  /** Bytes the peer has written into our RMBE (its producer cursor). */
  private rxProduced = 0;
  /** Bytes of those we have consumed (handed to the application). */
  private rxConsumed = 0;
  private lastPeerProducer: Cursor = { wrap: 0, count: 0 };
  private lastPeerConsumer: Cursor = { wrap: 0, count: 0 };

  constructor(
    /** Our RMBE, which the peer writes into. */
    readonly localSize: number,
    /** The peer's RMBE, which we write into. */
    readonly peerSize: number,
  ) {}

  /** Bytes we may write now without overtaking the peer's consumer. */
  txFree(): number {
    return this.peerSize - (this.txWritten - this.peerConsumed);
  }

  /** Where the next `n` bytes go in the peer's RMBE (two pieces when it wraps). */
  txSegments(n: number): Segment[] {
    if (n > this.txFree()) throw new CdcFlowError(`${n} bytes do not fit the ${this.txFree()} free`);
    return ringSegments(this.peerSize, this.txWritten, n);
  }

  commitTx(n: number): void {
    this.txWritten += n;
  }

  /** Everything we wrote has been consumed by the peer. */
  txDrained(): boolean {
    return this.peerConsumed === this.txWritten;
  }

  producerCursor(): Cursor {
    return cursorFromPosition(this.peerSize, this.txWritten);
  }

  consumerCursor(): Cursor {
    return cursorFromPosition(this.localSize, this.rxConsumed);
  }

  /** Takes the peer's cursors from a CDC message; returns how many bytes became readable and freed. */
  applyPeer(m: CdcMessage): { readable: number; freed: number } {
    const produced = cursorDiff(this.localSize, this.lastPeerProducer, m.producer);
    const consumed = cursorDiff(this.peerSize, this.lastPeerConsumer, m.consumer);
    if (this.rxProduced + produced - this.rxConsumed > this.localSize) {
      throw new CdcFlowError('peer producer cursor overruns our RMBE');
    }
    if (this.peerConsumed + consumed > this.txWritten) {
      throw new CdcFlowError('peer consumer cursor is ahead of what we wrote');
    }
    this.lastPeerProducer = m.producer;
    this.lastPeerConsumer = m.consumer;
    this.rxProduced += produced;
    this.peerConsumed += consumed;
    return { readable: this.rxProduced - this.rxConsumed, freed: consumed };
  }

  /** The unread bytes of our RMBE (two pieces when they wrap). */
  rxSegments(): Segment[] {
    return ringSegments(this.localSize, this.rxConsumed, this.rxProduced - this.rxConsumed);
  }

  commitRx(n: number): void {
    if (n > this.rxProduced - this.rxConsumed) throw new CdcFlowError('consuming more than was produced');
    this.rxConsumed += n;
  }

  rxPending(): number {
    return this.rxProduced - this.rxConsumed;
  }
}
