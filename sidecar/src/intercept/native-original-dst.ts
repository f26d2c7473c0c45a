import type { Socket } from 'node:net';
import { canonicalIp, type SocketAddress } from '../net/ip.js';
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
      return Promise.resolve({ address: canonicalIp(dst.address), port: dst.port, family: dst.family });
    } catch (err) {
      return Promise.reject(new OriginalDstError(`SO_ORIGINAL_DST on fd ${fd} failed`, { cause: err }));
    }
  }
}
