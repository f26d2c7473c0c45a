import type { Socket } from 'node:net';
import type { FirstMessageVerdict } from '../protocol/clc/first-message.js';

export interface FirstBytes {
  /** 'undecided': the peer ended or went quiet for `timeoutMs` before its bytes told. */
  verdict: FirstMessageVerdict;
  /** Everything read, to be handed on (to the CLC driver, or to the application as data). */
  bytes: Buffer;
  /** The peer ended its side. */
  ended: boolean;
}

/**
 * Reads a paused socket until `judge` decides whether its first bytes are CLC, the peer ends, or
 * `timeoutMs` pass; pauses it again. Never throws: a socket error ends the read like an end.
 */
export function readFirstMessage(
  socket: Socket,
  judge: (first: Uint8Array) => FirstMessageVerdict,
  timeoutMs: number,
): Promise<FirstBytes> {
  return new Promise((resolve) => {
    let bytes = Buffer.alloc(0);
    const done = (verdict: FirstMessageVerdict, ended: boolean): void => {
      clearTimeout(timer);
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
      resolve({ verdict, bytes, ended });
    };
    const onData = (chunk: Buffer): void => {
      bytes = Buffer.concat([bytes, chunk]);
      const verdict = judge(bytes);
      if (verdict !== 'undecided') done(verdict, false);
    };
    const onEnd = (): void => done(judge(bytes), true);
    const timer = setTimeout(() => done('undecided', false), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
    if (socket.readableEnded) onEnd();
    else socket.resume();
  });
}
