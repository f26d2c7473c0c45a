import type { Socket } from 'node:net';
import { canonicalIp, ipFamily, type SocketAddress } from '../net/ip.js';
import {
  type NativeGetOriginalDst,
  OriginalDstError,
  type OriginalDstResolver,
  socketFd,
} from './original-dst.js';

/** SO_ORIGINAL_DST through the native addon. */
export class NativeOriginalDstResolver implements OriginalDstResolver {
  readonly name = 'so_original_dst';

  constructor(private readonly getOriginalDst: NativeGetOriginalDst) {}

  resolve(socket: Socket): Promise<SocketAddress> {
    const fd = socketFd(socket);
    if (fd < 0) return Promise.reject(new OriginalDstError('socket has no file descriptor'));
    try {
      const dst = this.getOriginalDst(fd);
      const address = canonicalIp(dst.address);
      return Promise.resolve({ address, port: dst.port, family: ipFamily(address) });
    } catch (err) {
      return Promise.reject(new OriginalDstError(`SO_ORIGINAL_DST on fd ${fd} failed`, { cause: err }));
    }
  }
}
