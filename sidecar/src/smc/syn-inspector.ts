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
  /**
   * The peer's SYN-ACK on this connected socket of ours carried the SMC option, as the sock_ops
   * program recorded it (our SYN must have carried it too: the program is attached to our cgroup).
   */
  synAckAnnounced(socket: Socket): boolean;
  /**
   * The peer of this connected socket echoed the option but does not speak CLC: our SYNs to it
   * go out without the option for `ttlMs` (the program's smco_skip map). False when that failed.
   */
  skipPeer(socket: Socket, ttlMs: number): boolean;
}

/** SMCO_F_* of sidecar/bpf/smc-option.h. */
const SMCO_F_LOCAL_SENT = 0x1;
const SMCO_F_PEER_SENT = 0x2;
const SMCO_F_PEER_SEEN = 0x4;

export interface SavedSynNative {
  setSaveSyn(fd: number): void;
  getSavedSyn(fd: number): Buffer | null;
  smcoFlags(fd: number, pinDir?: string): number | null;
  smcoSkipPeer(fd: number, ttlMs: number, pinDir?: string): void;
}

function handleFd(server: Server): number | null {
  const handle = (server as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

export function nativeSynInspector(native: SavedSynNative, log: Logger): SynInspector {
  let mapMissingLogged = false;
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
    synAckAnnounced(socket) {
      const fd = socketFd(socket);
      if (fd === null) return false;
      let flags: number | null;
      try {
        flags = native.smcoFlags(fd);
      } catch (err) {
        // No sock_ops program pinned: our SYNs carry no option, so no kernel peer answers one.
        if (!mapMissingLogged)
          log.info({ err }, 'SMC option program not loaded: kernel SMC-R servers not tried');
        mapMissingLogged = true;
        return false;
      }
      if (flags === null) return false;
      const all = SMCO_F_LOCAL_SENT | SMCO_F_PEER_SENT | SMCO_F_PEER_SEEN;
      return (flags & all) === all;
    },
    skipPeer(socket, ttlMs) {
      const fd = socketFd(socket);
      if (fd === null) return false;
      try {
        native.smcoSkipPeer(fd, ttlMs);
        return true;
      } catch (err) {
        log.warn({ err }, 'could not keep the SMC option off connections to this peer');
        return false;
      }
    },
  };
}
