import type { Socket } from 'node:net';
import type { SocketAddress } from '../net/ip.js';

export class OriginalDstError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OriginalDstError';
  }
}

/**
 * Finds where a redirected connection was originally headed. Implementations:
 * the native addon's SO_ORIGINAL_DST getsockopt (the production path) and a
 * conntrack-table lookup (needs read access to /proc/net/nf_conntrack, i.e. root).
 */
export interface OriginalDstResolver {
  readonly name: string;
  resolve(socket: Socket): Promise<SocketAddress>;
}

/**
 * The native addon's call: getsockopt(fd, SOL_IP, SO_ORIGINAL_DST) for IPv4
 * sockets, getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST) for IPv6. Throws on
 * failure (ENOENT when the connection was not NATed).
 */
export type NativeGetOriginalDst = (fd: number) => { family: 'IPv4' | 'IPv6'; address: string; port: number };

interface HandleWithFd {
  fd?: unknown;
}

/** The kernel fd behind a connected net.Socket (libuv handle), or -1. */
export function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: HandleWithFd | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}
