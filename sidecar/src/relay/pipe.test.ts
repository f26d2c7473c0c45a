import type { Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connectTcp, ConnectError } from './connect.js';
import { type PipeResult, relay } from './pipe.js';
import { closeAll, collect, connectLoopback, listenLoopback, portOf } from './testing.js';

/** app client -> relay listener -> upstream server, with `relay()` in the middle. */
async function setup(onUpstream: (s: Socket) => void, pending?: Buffer) {
  const upstream = await listenLoopback(onUpstream);
  let result!: Promise<PipeResult>;
  let resultReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (resultReady = r));
  const proxy = await listenLoopback((app) => {
    app.pause();
    void connectTcp({ address: '127.0.0.1', port: portOf(upstream) }, 2000).then((peer) => {
      result = relay({ socket: app }, { socket: peer, pending });
      resultReady();
    });
  });
  const client = await connectLoopback(portOf(proxy));
  return { upstream, proxy, client, started: ready, result: () => ready.then(() => result) };
}

describe('relay', () => {
  const servers: Server[] = [];
  afterEach(() => closeAll(servers.splice(0)));

  it('forwards a half-close each way and counts bytes', async () => {
    let upstreamGot!: Promise<Buffer>;
    const { upstream, proxy, client, result } = await setup((s) => {
      const c = collect(s);
      upstreamGot = c.data;
      // Answer only after the client's FIN arrived: proves the half-open state works.
      void c.ending.then(() => s.end('world!'));
    });
    servers.push(upstream, proxy);
    const got = collect(client);
    client.end('hello');
    expect((await got.data).toString()).toBe('world!');
    expect(await got.ending).toBe('end');
    expect((await upstreamGot).toString()).toBe('hello');
    expect(await result()).toEqual({ tx: 5, rx: 6, outcome: 'closed' });
  });

  it('turns an application reset into a reset towards the peer', async () => {
    let upstreamEnding!: Promise<string>;
    let connected: () => void = () => undefined;
    const isConnected = new Promise<void>((r) => (connected = r));
    const { upstream, proxy, client, started, result } = await setup((s) => {
      upstreamEnding = collect(s).ending;
      connected();
    });
    servers.push(upstream, proxy);
    client.write('x');
    await isConnected;
    await started;
    client.resetAndDestroy();
    expect(await upstreamEnding).toBe('ECONNRESET');
    expect(await result()).toMatchObject({ outcome: 'reset', resetBy: 'app' });
  });

  it('turns a peer reset into a reset towards the application', async () => {
    const { upstream, proxy, client, result } = await setup((s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    servers.push(upstream, proxy);
    const got = collect(client);
    client.write('trigger');
    expect(await got.ending).toBe('ECONNRESET');
    expect(await result()).toMatchObject({ outcome: 'reset', resetBy: 'peer' });
  });

  it('delivers pending bytes before the live stream', async () => {
    const { upstream, proxy, client, result } = await setup((s) => {
      s.end('live');
    }, Buffer.from('replayed-'));
    servers.push(upstream, proxy);
    const got = collect(client);
    client.end();
    expect((await got.data).toString()).toBe('replayed-live');
    expect((await result()).rx).toBe(13);
  });

  it('moves a large payload with backpressure intact', async () => {
    const payload = Buffer.alloc(8 * 1024 * 1024, 7);
    const { upstream, proxy, client, result } = await setup((s) => {
      const c = collect(s);
      void c.data.then((d) => s.end(String(d.byteLength)));
    });
    servers.push(upstream, proxy);
    const got = collect(client);
    client.end(payload);
    expect((await got.data).toString()).toBe(String(payload.byteLength));
    expect((await result()).tx).toBe(payload.byteLength);
  });

  it('reports refused connections with a typed error', async () => {
    const s = await listenLoopback(() => undefined);
    const port = portOf(s);
    await closeAll([s]);
    await expect(connectTcp({ address: '127.0.0.1', port }, 1000)).rejects.toMatchObject({
      code: 'ECONNREFUSED',
      constructor: ConnectError,
    });
  });
});
