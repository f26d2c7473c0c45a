import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { SocketAddress } from '../net/ip.js';
import { findOriginalDst, parseConntrack } from './conntrack.js';
import { OriginalDstError, type OriginalDstResolver } from './original-dst.js';

export const CONNTRACK_PROC_PATH = '/proc/net/nf_conntrack';

/**
 * Reads the connection's NAT entry from the netns's conntrack table. A fallback
 * for when the native addon is absent: the file is mode 0440 root, so the
 * sidecar needs uid 0 or CAP_DAC_READ_SEARCH, and each lookup scans the table.
 */
export class ConntrackOriginalDstResolver implements OriginalDstResolver {
  readonly name = 'conntrack';

  constructor(private readonly read: () => Promise<string> = () => readFile(CONNTRACK_PROC_PATH, 'utf8')) {}

  async resolve(socket: Socket): Promise<SocketAddress> {
    const { remoteAddress, remotePort, localPort } = socket;
    if (remoteAddress === undefined || remotePort === undefined || localPort === undefined) {
      throw new OriginalDstError('socket is not connected');
    }
    let text: string;
    try {
      text = await this.read();
    } catch (err) {
      throw new OriginalDstError(`cannot read ${CONNTRACK_PROC_PATH}`, { cause: err });
    }
    const dst = findOriginalDst(
      parseConntrack(text),
      { address: remoteAddress, port: remotePort },
      localPort,
    );
    if (dst === null) {
      throw new OriginalDstError(`no conntrack entry for ${remoteAddress}:${remotePort} -> :${localPort}`);
    }
    return dst;
  }
}
