// The native TCP relay (native/src/tcp_relay.cc through nativeRelay()) against real loopback
// sockets, side by side with the JavaScript relay(): the same cases run against both, then the
// native relay's own (abort, close, descriptors, memory under backpressure). Both sockets are
// armed with a zero linger as the sidecar holds them (reset-on-exit.ts), so an orderly end that
// forgot to clear it would show up here as a reset.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as verbs from '../../../native/index.js';
import { socketFd } from '../intercept/original-dst.js';
import { connectTcp } from './connect.js';
import { NativeRelays, nativeRelay } from './native-relay.js';
import { type Direction, type PipeEnd, type PipeOptions, type PipeResult, relay } from './pipe.js';
import { installResetOnExit, resetOnExit } from './reset-on-exit.js';
import { closeAll, collect, connectLoopback, listenLoopback, loopbackPair, portOf } from './testing.js';

type RelayImpl = (app: PipeEnd, peer: PipeEnd, opts: PipeOptions) => Promise<PipeResult>;

const IMPLS: [string, RelayImpl][] = [
  ['relay (JavaScript)', relay],
  ['nativeRelay', (app, peer, opts) => nativeRelay(verbs, app, peer, opts)],
];

const MiB = 1024 * 1024;

interface Setup {
  upstream: Server;
  proxy: Server;
  client: Socket;
  /** Settles once the relay started. */
  started: Promise<void>;
  result: () => Promise<PipeResult>;
  /** What onBytes was told, per direction. */
  counted: Record<Direction, number>;
}

/**
 * app client -> proxy listener -> upstream server, `impl` relaying in the proxy. `prepare` may read
 * from the two sockets first (a handshake) and returns the ends to relay.
 */
async function setup(
  impl: RelayImpl,
  onUpstream: (s: Socket) => void,
  prepare: (app: Socket, peer: Socket) => Promise<[PipeEnd, PipeEnd]> = (app, peer) =>
    Promise.resolve([{ socket: app }, { socket: peer }]),
): Promise<Setup> {
  const upstream = await listenLoopback(onUpstream);
  let result!: Promise<PipeResult>;
  let resultReady: () => void = () => undefined;
  const started = new Promise<void>((r) => (resultReady = r));
  const counted = { tx: 0, rx: 0 };
  const proxy = await listenLoopback((app) => {
    app.pause();
    resetOnExit(app);
    void connectTcp({ address: '127.0.0.1', port: portOf(upstream) }, 2000)
      .then((peer) => prepare(app, peer))
      .then(([a, p]) => {
        result = impl(a, p, { onBytes: (d, n) => (counted[d] += n) });
        resultReady();
      });
  });
  const client = await connectLoopback(portOf(proxy));
  return { upstream, proxy, client, started, counted, result: () => started.then(() => result) };
}

/** Reads a socket until its FIN; the bytes read and the FIN's arrival (the socket is paused after). */
function readToEnd(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => {
      s.removeAllListeners('data');
      s.pause();
      resolve(Buffer.concat(chunks));
    });
    s.once('error', reject);
    s.resume();
  });
}

/** Writes `total` random bytes in chunks with backpressure, then ends; resolves with their sha256. */
function sendRandom(s: Socket, total: number): Promise<string> {
  const hash = createHash('sha256');
  let left = total;
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    const more = (): void => {
      while (left > 0) {
        const chunk = randomBytes(Math.min(left, 256 * 1024));
        left -= chunk.byteLength;
        hash.update(chunk);
        if (!s.write(chunk)) {
          s.once('drain', more);
          return;
        }
      }
      s.end(() => resolve(hash.digest('hex')));
    };
    more();
  });
}

/** The sha256 and length of everything a socket receives until its FIN. */
function receiveHash(s: Socket): Promise<{ sha: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  return new Promise((resolve, reject) => {
    s.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.byteLength;
    });
    s.once('end', () => resolve({ sha: hash.digest('hex'), bytes }));
    s.once('error', reject);
    s.resume();
  });
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

beforeAll(() => installResetOnExit((fd, s) => verbs.setLinger(fd, s)));
afterAll(() => installResetOnExit(null));

describe.each(IMPLS)('%s', (_name, impl) => {
  const servers: Server[] = [];
  afterEach(() => closeAll(servers.splice(0)));

  it('forwards a half-close each way and counts bytes', async () => {
    let upstreamGot!: Promise<Buffer>;
    const s = await setup(impl, (u) => {
      const c = collect(u);
      upstreamGot = c.data;
      // Answer only after the client's FIN arrived: proves the half-open state works.
      void c.ending.then(() => u.end('world!'));
    });
    servers.push(s.upstream, s.proxy);
    const got = collect(s.client);
    s.client.end('hello');
    expect((await got.data).toString()).toBe('world!');
    expect(await got.ending).toBe('end');
    expect((await upstreamGot).toString()).toBe('hello');
    expect(await s.result()).toEqual({ tx: 5, rx: 6, outcome: 'closed' });
    expect(s.counted).toEqual({ tx: 5, rx: 6 });
  });

  it('keeps carrying the peer bytes after the application half-closed, its FIN last', async () => {
    const late = 4 * MiB;
    let upstreamGot!: Promise<Buffer>;
    const s = await setup(impl, (u) => {
      const c = collect(u);
      upstreamGot = c.data;
      void c.ending.then(() => sendRandom(u, late));
    });
    servers.push(s.upstream, s.proxy);
    let atEnd = -1;
    let received = 0;
    s.client.on('data', (c: Buffer) => (received += c.byteLength));
    const ended = new Promise<void>((r) =>
      s.client.once('end', () => {
        atEnd = received;
        r();
      }),
    );
    s.client.end('bye');
    await ended;
    expect(atEnd).toBe(late);
    expect((await upstreamGot).toString()).toBe('bye');
    expect(await s.result()).toEqual({ tx: 3, rx: late, outcome: 'closed' });
    expect(s.counted).toEqual({ tx: 3, rx: late });
  });

  it('idles while half-closed (no polling of a socket at EOF)', async () => {
    let upstreamSocket!: Socket;
    let finSeen: () => void = () => undefined;
    const fin = new Promise<void>((r) => (finSeen = r));
    const s = await setup(impl, (u) => {
      upstreamSocket = u;
      u.on('data', () => undefined);
      u.once('end', finSeen);
    });
    servers.push(s.upstream, s.proxy);
    const got = collect(s.client);
    s.client.end('fin');
    await fin;
    const cpu0 = process.cpuUsage();
    await sleep(300);
    const cpu = process.cpuUsage(cpu0);
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(60);
    upstreamSocket.end('late');
    expect((await got.data).toString()).toBe('late');
    expect(await s.result()).toEqual({ tx: 3, rx: 4, outcome: 'closed' });
  });

  it('carries 32 MiB each way at once, intact', async () => {
    const size = 32 * MiB;
    let upstreamSent!: Promise<string>;
    let upstreamGot!: Promise<{ sha: string; bytes: number }>;
    const s = await setup(impl, (u) => {
      upstreamGot = receiveHash(u);
      upstreamSent = sendRandom(u, size);
    });
    servers.push(s.upstream, s.proxy);
    const clientGot = receiveHash(s.client);
    const clientSent = await sendRandom(s.client, size);
    await s.started;
    expect(await upstreamGot).toEqual({ sha: clientSent, bytes: size });
    expect(await clientGot).toEqual({ sha: await upstreamSent, bytes: size });
    expect(await s.result()).toEqual({ tx: size, rx: size, outcome: 'closed' });
    expect(s.counted).toEqual({ tx: size, rx: size });
  });

  it('delivers the pending bytes of both sides before the live streams', async () => {
    let upstreamGot!: Promise<Buffer>;
    const s = await setup(
      impl,
      (u) => {
        upstreamGot = collect(u).data;
        u.end('peer-live');
      },
      (app, peer) =>
        Promise.resolve([
          { socket: app, pending: Buffer.from('app-pending/') },
          { socket: peer, pending: Buffer.from('peer-pending/') },
        ]),
    );
    servers.push(s.upstream, s.proxy);
    const got = collect(s.client);
    s.client.end('app-live');
    expect((await got.data).toString()).toBe('peer-pending/peer-live');
    expect((await upstreamGot).toString()).toBe('app-pending/app-live');
    expect(await s.result()).toEqual({ tx: 20, rx: 22, outcome: 'closed' });
  });

  it('sends what the proxy still had queued on a socket before any relayed byte', async () => {
    const queued = randomBytes(8 * MiB);
    const s = await setup(
      impl,
      (u) => u.end('live'),
      (app, peer) => {
        // Too much for the kernel to take at once: part of it waits in the socket's write queue.
        app.write(queued);
        expect(app.writableLength).toBeGreaterThan(0);
        return Promise.resolve([{ socket: app }, { socket: peer }]);
      },
    );
    servers.push(s.upstream, s.proxy);
    await sleep(50);
    const got = collect(s.client);
    s.client.end();
    const data = await got.data;
    expect(data.byteLength).toBe(queued.byteLength + 4);
    expect(data.subarray(0, queued.byteLength).equals(queued)).toBe(true);
    expect(data.subarray(queued.byteLength).toString()).toBe('live');
    expect(await s.result()).toEqual({ tx: 0, rx: 4, outcome: 'closed' });
  });

  it('forwards a FIN the peer sent before the relay started (ended), after its bytes', async () => {
    let upstreamGot!: Promise<Buffer>;
    const s = await setup(
      impl,
      (u) => {
        upstreamGot = collect(u).data;
        u.end('early');
      },
      async (app, peer) => {
        const early = await readToEnd(peer);
        return [{ socket: app }, { socket: peer, pending: early, ended: true }];
      },
    );
    servers.push(s.upstream, s.proxy);
    const got = collect(s.client);
    expect(await got.ending).toBe('end');
    expect((await got.data).toString()).toBe('early');
    // Half-open: the application still writes to the peer.
    s.client.end('late');
    expect((await upstreamGot).toString()).toBe('late');
    expect(await s.result()).toEqual({ tx: 4, rx: 5, outcome: 'closed' });
  });

  it('forwards a FIN the application sent before the relay started (ended)', async () => {
    let upstreamGot!: Promise<Buffer>;
    const s = await setup(
      impl,
      (u) => {
        const c = collect(u);
        upstreamGot = c.data;
        void c.ending.then(() => u.end('answer'));
      },
      async (app, peer) => {
        const first = await readToEnd(app);
        return [{ socket: app, pending: first, ended: true }, { socket: peer }];
      },
    );
    servers.push(s.upstream, s.proxy);
    const got = collect(s.client);
    s.client.end('question');
    expect((await got.data).toString()).toBe('answer');
    expect((await upstreamGot).toString()).toBe('question');
    expect(await s.result()).toEqual({ tx: 8, rx: 6, outcome: 'closed' });
  });

  it('turns an application reset into a reset towards the peer', async () => {
    let upstreamEnding!: Promise<string>;
    let connected: () => void = () => undefined;
    const isConnected = new Promise<void>((r) => (connected = r));
    const s = await setup(impl, (u) => {
      upstreamEnding = collect(u).ending;
      connected();
    });
    servers.push(s.upstream, s.proxy);
    s.client.write('x');
    await isConnected;
    await s.started;
    await sleep(20);
    s.client.resetAndDestroy();
    expect(await upstreamEnding).toBe('ECONNRESET');
    const r = await s.result();
    expect(r).toMatchObject({ outcome: 'reset', resetBy: 'app' });
    expect(r.error).toBeInstanceOf(Error);
  });

  it('turns a peer reset into a reset towards the application', async () => {
    const s = await setup(impl, (u) => {
      u.once('data', () => u.resetAndDestroy());
    });
    servers.push(s.upstream, s.proxy);
    const got = collect(s.client);
    s.client.write('trigger');
    expect(await got.ending).toBe('ECONNRESET');
    expect(await s.result()).toMatchObject({ outcome: 'reset', resetBy: 'peer', tx: 7 });
  });

  it('resets the application when the peer resets after the application half-closed', async () => {
    const s = await setup(impl, (u) => {
      u.on('data', () => undefined);
      u.once('end', () => u.write('partial', () => setTimeout(() => u.resetAndDestroy(), 20)));
    });
    servers.push(s.upstream, s.proxy);
    const got = collect(s.client);
    s.client.end('done');
    expect(await got.ending).toBe('ECONNRESET');
    expect(await s.result()).toMatchObject({ outcome: 'reset', resetBy: 'peer', tx: 4 });
  });

  it('does not buffer for a slow reader: nothing piles up in the process', async () => {
    const chunk = Buffer.alloc(256 * 1024, 0x5a);
    const total = 64 * MiB;
    let written = 0;
    let writerDone!: Promise<void>;
    const s = await setup(impl, (u) => {
      writerDone = new Promise((resolve) => {
        const more = (): void => {
          while (written < total) {
            written += chunk.byteLength;
            if (!u.write(chunk)) {
              u.once('drain', more);
              return;
            }
          }
          u.end(resolve);
        };
        more();
      });
    });
    servers.push(s.upstream, s.proxy);
    s.client.pause();
    await s.started;
    const rss0 = process.memoryUsage().rss;
    // Wait until the writer is stuck: nothing moves for 300 ms.
    let last = -1;
    while (written !== last) {
      last = written;
      await sleep(300);
    }
    const stuck = written;
    const growth = process.memoryUsage().rss - rss0;
    // Stuck means idle: no busy polling of a socket that cannot move (level-triggered poll).
    const cpu0 = process.cpuUsage();
    await sleep(300);
    const cpu = process.cpuUsage(cpu0);
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(60);
    // Kernel socket buffers hold the rest; none of it in this process.
    expect(stuck).toBeLessThan(total);
    expect(growth).toBeLessThan(16 * MiB);
    const got = receiveHash(s.client);
    await writerDone;
    expect((await got).bytes).toBe(total);
    s.client.end();
    expect(await s.result()).toEqual({ tx: 0, rx: total, outcome: 'closed' });
  });
});

describe('nativeRelay only', () => {
  const servers: Server[] = [];
  afterEach(() => closeAll(servers.splice(0)));

  it('abort() resets both connections', async () => {
    let upstreamEnding!: Promise<string>;
    const made: verbs.TcpRelay[] = [];
    const capture = {
      TcpRelay: class extends verbs.TcpRelay {
        constructor(o: verbs.TcpRelayOptions) {
          super(o);
          made.push(this);
        }
      },
    };
    const s = await setup(
      (app, peer, opts) => nativeRelay(capture, app, peer, opts),
      (u) => {
        upstreamEnding = collect(u).ending;
      },
    );
    servers.push(s.upstream, s.proxy);
    const got = collect(s.client);
    s.client.write('abc');
    await s.started;
    await sleep(20);
    const relayObj = made[0];
    expect(relayObj?.state).toBe('running');
    expect(relayObj?.stats()).toEqual({ tx: 3, rx: 0 });
    relayObj?.abort();
    relayObj?.abort(); // no-op
    expect(await got.ending).toBe('ECONNRESET');
    expect(await upstreamEnding).toBe('ECONNRESET');
    expect(await s.result()).toMatchObject({ outcome: 'reset', resetBy: 'app', tx: 3, rx: 0 });
    expect(relayObj?.state).toBe('detached'); // nativeRelay closes it at the end
  });

  it("a sidecar's NativeRelays reports live relays' bytes on its timer and resets them all on abortAll()", async () => {
    const relays = new NativeRelays(verbs);
    const ups: Promise<string>[] = [];
    const clients: { s: Setup; got: ReturnType<typeof collect> }[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await setup(relays.relay, (u) => {
        ups.push(collect(u).ending);
      });
      servers.push(s.upstream, s.proxy);
      clients.push({ s, got: collect(s.client) });
      s.client.write('abc'.repeat(i + 1));
      await s.started;
    }
    // Still running: only the shared timer can have told onBytes.
    await vi.waitFor(() => expect(clients.map((c) => c.s.counted.tx)).toEqual([3, 6, 9]), {
      timeout: 10_000,
    });
    relays.abortAll();
    for (const c of clients) {
      expect(await c.got.ending).toBe('ECONNRESET');
      expect(await c.s.result()).toMatchObject({ outcome: 'reset' });
    }
    expect(await Promise.all(ups)).toEqual(['ECONNRESET', 'ECONNRESET', 'ECONNRESET']);
  });

  it('close() while running resets, ends once, and is idempotent', async () => {
    const [a1, a2] = await pair(servers);
    const [p1, p2] = await pair(servers);
    const r = new verbs.TcpRelay({ appFd: fdOf(a2), peerFd: fdOf(p1) });
    a2.destroy();
    p1.destroy();
    const endA = collect(a1).ending;
    const endP = collect(p2).ending;
    let events = 0;
    void r.done.then(() => events++);
    r.close();
    r.close();
    expect(r.state).toBe('detached');
    expect(await r.done).toMatchObject({ type: 'reset', detail: { resetBy: 'app', reason: 'local close' } });
    expect(await endA).toBe('ECONNRESET');
    expect(await endP).toBe('ECONNRESET');
    await sleep(10);
    expect(events).toBe(1);
  });

  it('refuses bad descriptors', () => {
    expect(() => new verbs.TcpRelay({ appFd: 0, peerFd: 0 })).toThrow(/same descriptor/);
    let err: unknown;
    try {
      new verbs.TcpRelay({ appFd: 987654, peerFd: 987655 });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'EBADF', syscall: 'getsockopt' });
    expect(() => new verbs.TcpRelay({ appFd: -1, peerFd: 3 })).toThrow(RangeError);
    // A file is no TCP socket.
    const fd = openSync('/dev/null', 'r');
    try {
      expect(() => new verbs.TcpRelay({ appFd: fd, peerFd: fd + 1000 })).toThrow(
        expect.objectContaining({ code: 'ENOTSOCK' }),
      );
    } finally {
      closeSync(fd);
    }
  });

  it('leaves no descriptor and no native relay behind', async () => {
    const before = openFds();
    for (let i = 0; i < 10; i++) {
      const s = await setup(
        (app, peer, opts) => nativeRelay(verbs, app, peer, opts),
        (u) => {
          const c = collect(u);
          void c.data.then((d) => u.end(d));
        },
      );
      const got = collect(s.client);
      s.client.end(`ping ${i}`);
      expect((await got.data).toString()).toBe(`ping ${i}`);
      expect(await s.result()).toMatchObject({ outcome: 'closed' });
      s.client.destroy();
      await closeAll([s.upstream, s.proxy]);
    }
    // A reset one too.
    const s = await setup(
      (app, peer, opts) => nativeRelay(verbs, app, peer, opts),
      (u) => u.once('data', () => u.resetAndDestroy()),
    );
    const got = collect(s.client);
    s.client.write('x');
    expect(await got.ending).toBe('ECONNRESET');
    await s.result();
    await closeAll([s.upstream, s.proxy]);
    for (let i = 0; i < 100 && openFds() > before; i++) await sleep(10);
    expect(openFds()).toBe(before);
    expect(verbs.debugCounters().relays).toBe(0);
  });
});

/** A loopback connection as [client, accepted], both with a zero linger like carried sockets. */
async function pair(servers: Server[]): Promise<[Socket, Socket]> {
  const [client, accepted] = await loopbackPair(servers);
  resetOnExit(accepted);
  resetOnExit(client);
  return [client, accepted];
}

function fdOf(s: Socket): number {
  const fd = socketFd(s);
  if (fd < 0) throw new Error('no fd');
  return fd;
}
