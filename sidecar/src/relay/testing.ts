import { connect, createServer, type Server, type Socket } from 'node:net';

/** Loopback helpers for relay tests with real sockets. */
export async function listenLoopback(onConnection: (s: Socket) => void, host = '127.0.0.1'): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, onConnection);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return server;
}

export function portOf(server: Server): number {
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('not listening');
  return a.port;
}

export function connectLoopback(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * A loopback connection as [client, accepted], the accepted end paused as a listener hands it
 * over (nothing read yet). The listener is added to `servers` for the caller to close.
 */
export async function loopbackPair(servers: Server[]): Promise<[Socket, Socket]> {
  let accept: (s: Socket) => void = () => undefined;
  const accepted = new Promise<Socket>((r) => (accept = r));
  const server = await listenLoopback((s) => {
    s.pause();
    accept(s);
  });
  servers.push(server);
  const client = await connectLoopback(portOf(server));
  return [client, await accepted];
}

export interface Collected {
  data: Promise<Buffer>;
  /** 'end' for a FIN, the error code for a failure. */
  ending: Promise<string>;
}

/** Reads everything a socket receives until FIN or error. */
export function collect(s: Socket): Collected {
  const chunks: Buffer[] = [];
  let endResolve: (v: string) => void = () => undefined;
  const ending = new Promise<string>((r) => (endResolve = r));
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('end', () => endResolve('end'));
  s.on('error', (e: NodeJS.ErrnoException) => endResolve(e.code ?? e.message));
  s.on('close', () => endResolve('close'));
  return { data: ending.then(() => Buffer.concat(chunks)), ending };
}

export function closeAll(servers: Server[]): Promise<void> {
  return Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined);
}
