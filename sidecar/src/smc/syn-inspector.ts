import type { Server, Socket } from 'node:net';
import type { Logger } from '../log.js';
import { ProtocolDecodeError } from '../protocol/errors.js';
import { hasSmcTcpOption, savedSynOptions } from '../protocol/tcp-option.js';
import { socketFd } from './native-smc-connection.js';

/**
 * Tells a kernel SMC-R peer from a plain TCP client on the inbound listener:
 * the kernel announces SMC with the experimental TCP option on its SYN
 * (RFC 7609), which the listener keeps with TCP_SAVE_SYN.
 */
export interface SynInspector {
  /** Makes the listener save each connection's SYN. */
  watch(server: Server): void;
  /** The accepted connection's SYN carried the SMC option (reads and frees the saved SYN). */
  smcAnnounced(socket: Socket): boolean;
}

export interface SavedSynNative {
  setSaveSyn(fd: number): void;
  getSavedSyn(fd: number): Buffer | null;
}

function handleFd(server: Server): number | null {
  const handle = (server as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

export function nativeSynInspector(native: SavedSynNative, log: Logger): SynInspector {
  return {
    watch(server) {
      const fd = handleFd(server);
      if (fd === null) throw new Error('listener has no file descriptor');
      native.setSaveSyn(fd);
    },
    smcAnnounced(socket) {
      const fd = socketFd(socket);
      if (fd === null) return false;
      const syn = native.getSavedSyn(fd);
      if (syn === null) return false;
      try {
        return hasSmcTcpOption(savedSynOptions(syn));
      } catch (err) {
        if (!(err instanceof ProtocolDecodeError)) throw err;
        log.debug({ err }, 'saved SYN not understood; treating the peer as plain TCP');
        return false;
      }
    },
  };
}
