import type { Socket } from 'node:net';

export class ReadTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`no ${what} within ${ms} ms`);
    this.name = 'ReadTimeoutError';
  }
}

export class StreamEndedError extends Error {
  constructor(what: string) {
    super(`connection closed before the ${what}`);
    this.name = 'StreamEndedError';
  }
}

/**
 * Reads exactly `n` bytes from a paused socket, then pauses it again. Returns
 * those bytes and any surplus that arrived in the same chunks.
 */
export function readExactly(
  socket: Socket,
  n: number,
  timeoutMs: number,
  what: string,
): Promise<{ bytes: Buffer; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
    const onData = (c: Buffer): void => {
      chunks.push(c);
      have += c.byteLength;
      if (have >= n) {
        cleanup();
        const all = Buffer.concat(chunks);
        resolve({ bytes: all.subarray(0, n), rest: all.subarray(n) });
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new StreamEndedError(what));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new ReadTimeoutError(what, timeoutMs));
    }, timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    if (socket.readableEnded) onEnd();
    else socket.resume();
  });
}
