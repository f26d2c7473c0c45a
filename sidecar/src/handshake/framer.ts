import { CLC_HEADER_LENGTH } from '../protocol/clc/constants.js';
import { clcMessageLength } from '../protocol/clc/header.js';

/**
 * Cuts CLC messages out of the TCP byte stream. Like smc_clc_wait_msg, it
 * reads the header first and then exactly `length` bytes, so data that follows
 * a message (e.g. application bytes after a Decline) stays unconsumed.
 */
export class ClcFramer {
  private buffer: Buffer = Buffer.alloc(0);

  push(bytes: Uint8Array): void {
    this.buffer = this.buffer.byteLength === 0 ? Buffer.from(bytes) : Buffer.concat([this.buffer, bytes]);
  }

  /** The next complete message, or null while more bytes are needed. Throws ProtocolDecodeError on a bad header. */
  next(): Buffer | null {
    if (this.buffer.byteLength < CLC_HEADER_LENGTH) return null;
    const length = clcMessageLength(this.buffer);
    if (this.buffer.byteLength < length) return null;
    const message = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return message;
  }

  /** Everything received but not consumed as a message. */
  takeRest(): Buffer {
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }

  get pending(): number {
    return this.buffer.byteLength;
  }
}
