import { createServer, type Server, type Socket } from 'node:net';
import { resetOnExit } from './reset-on-exit.js';

export interface ListenOptions {
  port: number;
  /** Defaults to "::" (dual stack; IPv4 peers appear as ::ffff:a.b.c.d). */
  host?: string;
}

/** Accept queue of the sidecar's listeners. */
export const LISTEN_BACKLOG = 4096;

/**
 * A TCP listener for the relay: connections start paused (no byte is read
 * before the handler decides), with half-open allowed so FINs can be forwarded.
 */
export async function listen(opts: ListenOptions, onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => {
    resetOnExit(socket);
    onConnection(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Every connection of the pod queues here: a burst must not overflow Node's default 511 (the
    // kernel caps the backlog at net.core.somaxconn, 4096 by default).
    server.listen(
      { port: opts.port, host: opts.host ?? '::', ipv6Only: false, backlog: LISTEN_BACKLOG },
      () => {
        server.off('error', reject);
        resolve();
      },
    );
  });
  return server;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export function boundPort(server: Server): number {
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('server is not listening on TCP');
  return a.port;
}
