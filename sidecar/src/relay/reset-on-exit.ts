import type { Socket } from 'node:net';
import { socketFd } from '../intercept/original-dst.js';

/** setsockopt(SO_LINGER) on a descriptor: 0 = reset on close, null = the default orderly close. */
export type SetLinger = (fd: number, seconds: number | null) => void;

/**
 * Every socket the sidecar carries an application's bytes on is held with a zero linger, so that
 * if the sidecar dies (kill -9, OOM) the kernel resets the connection instead of ending it with a
 * FIN: an application must never read a truncated stream as a complete one. The sidecar restores
 * the default just before it ends a socket in order (its FIN then means the real end of data).
 *
 * Process-wide because the event it guards against is: the addon's setsockopt, installed once at
 * start-up, or nothing when the addon is not loaded (then a dying sidecar still ends with FINs).
 */
let setLinger: SetLinger | null = null;

export function installResetOnExit(impl: SetLinger | null): void {
  setLinger = impl;
}

export function resetOnExitInstalled(): boolean {
  return setLinger !== null;
}

function apply(socket: Socket, seconds: number | null): void {
  if (setLinger === null) return;
  const fd = socketFd(socket);
  if (fd < 0) return;
  try {
    setLinger(fd, seconds);
  } catch {
    // The socket is already gone (EBADF) or closing: nothing left to guard.
  }
}

/** Arms a carried socket: from now on its close without {@link endInOrder} resets it. */
export function resetOnExit(socket: Socket): void {
  apply(socket, 0);
}

/** Ends our side of a carried socket with a FIN, the orderly way. */
export function endInOrder(socket: Socket): void {
  apply(socket, null);
  socket.end();
}
