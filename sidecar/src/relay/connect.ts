import { connect, type Socket } from 'node:net';
import { formatSocketAddress } from '../net/ip.js';
import { resetOnExit } from './reset-on-exit.js';

export class ConnectError extends Error {
  constructor(
    readonly target: string,
    /** errno name (ECONNREFUSED, ETIMEDOUT, ...). */
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(`connect to ${target} failed: ${code}`, options);
    this.name = 'ConnectError';
  }
}

export interface ConnectTarget {
  address: string;
  port: number;
  /** Source address to bind, e.g. the pod IP. */
  localAddress?: string;
}

/** A TCP connection ready for relaying (half-open allowed, Nagle off), or a {@link ConnectError}. */
export function connectTcp(target: ConnectTarget, timeoutMs: number): Promise<Socket> {
  const label = formatSocketAddress(target);
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: target.address,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
      ...(target.localAddress === undefined ? {} : { localAddress: target.localAddress }),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectError(label, 'ETIMEDOUT'));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resetOnExit(socket);
      socket.pause();
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new ConnectError(label, err.code ?? 'EIO', { cause: err }));
    });
  });
}
