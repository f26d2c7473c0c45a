import type { Socket } from 'node:net';

export interface Held {
  /** Bytes read while held, to replay to whichever path wins. */
  pending: Buffer;
  /** The socket's FIN arrived while held. */
  ended: boolean;
  /** The socket failed (e.g. reset) while held. */
  error: Error | null;
}

/**
 * Reads a socket into memory while its fate is decided (e.g. the application
 * socket during the CLC handshake), up to `maxBytes`, after which it is paused
 * so the kernel's window pushes back. `release()` stops reading and hands over
 * everything read, leaving the socket paused with no listeners of ours.
 */
export class SocketHold {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private ended = false;
  private error: Error | null = null;
  private released = false;
  private readonly waiters: (() => void)[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly maxBytes: number,
  ) {
    this.ended = socket.readableEnded;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    if (this.bytes < maxBytes) socket.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
    if (this.bytes >= this.maxBytes) this.socket.pause();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake();
  };

  private readonly onError = (err: Error): void => {
    this.error = err;
    this.wake();
  };

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when the socket fails or ends while held (never after release). */
  whenFailed(): Promise<Error> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.error !== null) resolve(this.error);
        else if (!this.released) this.waiters.push(check);
      };
      check();
    });
  }

  get failed(): Error | null {
    return this.error;
  }

  release(): Held {
    if (!this.released) {
      this.released = true;
      this.socket.pause();
      this.socket.off('data', this.onData);
      this.socket.off('end', this.onEnd);
      this.socket.off('error', this.onError);
    }
    return { pending: Buffer.concat(this.chunks), ended: this.ended, error: this.error };
  }
}
