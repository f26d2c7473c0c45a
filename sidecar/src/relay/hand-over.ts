import type { Socket } from 'node:net';

/**
 * Stops Node from reading `socket` and returns the bytes it already buffered, so that native code
 * (the data pump, the TCP relay) can take over the descriptor without losing any.
 */
export function detachReader(socket: Socket): Buffer[] {
  socket.pause();
  socket.removeAllListeners('data');
  const handle = (socket as unknown as { _handle?: { readStop?: () => number; reading?: boolean } | null })
    ._handle;
  if (handle?.readStop !== undefined) {
    handle.readStop();
    handle.reading = false;
  }
  const chunks: Buffer[] = [];
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null)
    chunks.push(chunk);
  return chunks;
}
