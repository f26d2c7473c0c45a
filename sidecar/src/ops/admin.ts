import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { ConnectionRegistry } from './connections.js';

/**
 * The admin endpoint (like Envoy's admin port): `GET /connections`. Local only: it listens on the
 * loopback addresses and nowhere else, whatever address the other listeners bind, so it is never
 * reachable from the network (and loopback traffic is never redirected by the intercept rules).
 */
export const ADMIN_HOSTS = ['127.0.0.1', '::1'] as const;

/** Errors that mean the host has no IPv6 loopback: the admin endpoint is then IPv4 only. */
const NO_IPV6 = new Set(['EADDRNOTAVAIL', 'EAFNOSUPPORT']);

function isLoopback(address: string | undefined): boolean {
  return (
    address !== undefined &&
    (address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.'))
  );
}

function handle(registry: ConnectionRegistry, req: IncomingMessage, res: ServerResponse): void {
  // Belt and braces: the sockets are bound to loopback, so nothing else can be the peer.
  if (!isLoopback(req.socket.remoteAddress)) {
    res.writeHead(403).end();
    return;
  }
  const path = req.url?.split('?')[0];
  if (path !== '/connections') {
    res.writeHead(404).end();
    return;
  }
  if (req.method !== 'GET') {
    res.writeHead(405, { allow: 'GET' }).end();
    return;
  }
  res
    .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    .end(`${JSON.stringify(registry.report())}\n`);
}

function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ipv6Only: host.includes(':') }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeQuietly(server: Server): Promise<void> {
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * Listens on 127.0.0.1:`port` and [::1]:`port` (the port 127.0.0.1 got when `port` is 0). A host
 * without IPv6 loopback gets the IPv4 listener alone; any other failure rejects.
 */
export async function startAdminServer(
  registry: ConnectionRegistry,
  port: number,
  log: Logger,
): Promise<Server[]> {
  const servers: Server[] = [];
  let bound = port;
  for (const host of ADMIN_HOSTS) {
    const server = createServer((req, res) => handle(registry, req, res));
    try {
      await listenOn(server, bound, host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (host === '::1' && code !== undefined && NO_IPV6.has(code)) {
        log.debug({ err }, 'no IPv6 loopback: the admin endpoint listens on 127.0.0.1 only');
        continue;
      }
      await Promise.all(servers.map(closeQuietly));
      throw err;
    }
    const a = server.address();
    if (a !== null && typeof a !== 'string') bound = a.port;
    servers.push(server);
  }
  return servers;
}
