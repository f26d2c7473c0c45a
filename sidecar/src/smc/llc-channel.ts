import type { CompletionQueue, MemoryRegion, QueuePair, WorkCompletion } from '../../../native/index.js';
import type { VerbsModule } from '../native-loader.js';
import type { ProtectionDomain } from '../../../native/index.js';
import { LLC_MESSAGE_LENGTH } from '../protocol/llc/constants.js';
import { type AnyLlcMessage, decodeLlc, encodeLlc } from './llc-codec.js';

export class LlcError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LlcError';
  }
}

const SEND_WR_BASE = 1_000_000;

/**
 * LLC messages (44-byte SENDs) on one link's QP, before a data pump takes the
 * QP over: a ring of receive slots stays posted; sends are one at a time.
 */
export class LlcChannel {
  private readonly recvBuf: Buffer;
  private readonly recvMr: MemoryRegion;
  private readonly sendBuf: Buffer;
  private readonly sendMr: MemoryRegion;
  private nextRecv = 0;
  private sendSeq = 0;

  constructor(
    verbs: VerbsModule,
    pd: ProtectionDomain,
    private readonly qp: QueuePair,
    private readonly cq: CompletionQueue,
    private readonly slots = 8,
  ) {
    this.recvBuf = verbs.allocBuffer(LLC_MESSAGE_LENGTH * slots);
    this.recvMr = pd.registerMr(this.recvBuf, { localWrite: true });
    this.sendBuf = verbs.allocBuffer(LLC_MESSAGE_LENGTH);
    this.sendMr = pd.registerMr(this.sendBuf, { localWrite: true });
  }

  /** Bytes this channel registered (its receive ring and send buffer). */
  get registeredBytes(): number {
    return this.recvBuf.byteLength + this.sendBuf.byteLength;
  }

  /** Posts every receive slot; call before the QP leaves INIT so no early message is dropped. */
  postReceives(): void {
    for (let i = 0; i < this.slots; i++) this.postRecv(i);
  }

  private postRecv(slot: number): void {
    this.qp.postRecv({
      wrId: slot,
      sgList: [{ mr: this.recvMr, offset: slot * LLC_MESSAGE_LENGTH, length: LLC_MESSAGE_LENGTH }],
    });
  }

  private static check(wc: WorkCompletion, what: string): void {
    if (wc.status !== 'IBV_WC_SUCCESS') throw new LlcError(`${what} failed: ${wc.status}`);
  }

  async send(message: AnyLlcMessage, timeoutMs: number): Promise<void> {
    encodeLlc(message).copy(this.sendBuf, 0);
    const wrId = SEND_WR_BASE + this.sendSeq++;
    this.qp.postSend({ wrId, opcode: 'SEND', sgList: [{ mr: this.sendMr, length: LLC_MESSAGE_LENGTH }] });
    try {
      LlcChannel.check(await this.cq.waitFor(wrId, timeoutMs), `LLC ${message.kind} send`);
    } catch (err) {
      throw err instanceof LlcError ? err : new LlcError(`LLC ${message.kind} send`, { cause: err });
    }
  }

  /** The next LLC message, in arrival order. */
  async receive(timeoutMs: number): Promise<AnyLlcMessage> {
    const slot = this.nextRecv;
    let wc: WorkCompletion;
    try {
      wc = await this.cq.waitFor(slot, timeoutMs);
    } catch (err) {
      throw new LlcError(`no LLC message within ${timeoutMs} ms`, { cause: err });
    }
    LlcChannel.check(wc, 'LLC receive');
    this.nextRecv = (slot + 1) % this.slots;
    const bytes = Buffer.from(
      this.recvBuf.subarray(slot * LLC_MESSAGE_LENGTH, (slot + 1) * LLC_MESSAGE_LENGTH),
    );
    this.postRecv(slot);
    try {
      return decodeLlc(bytes);
    } catch (err) {
      throw new LlcError('malformed LLC message', { cause: err });
    }
  }

  /** Number of receive slots; receive completions carry the slot as wrId. */
  get slotCount(): number {
    return this.slots;
  }

  /** The receive ring's memory region and slot size (slot i at i * slotSize, wrId i), for a data path taking over. */
  get receiveRing(): { mr: MemoryRegion; slotSize: number } {
    return { mr: this.recvMr, slotSize: LLC_MESSAGE_LENGTH };
  }

  /** A copy of what receive slot `slot` holds, then the slot is posted again (for a data path taking over). */
  takeSlot(slot: number): Buffer {
    const bytes = Buffer.from(
      this.recvBuf.subarray(slot * LLC_MESSAGE_LENGTH, (slot + 1) * LLC_MESSAGE_LENGTH),
    );
    this.postRecv(slot);
    return bytes;
  }

  close(): void {
    this.recvMr.close();
    this.sendMr.close();
  }
}
