// A relaying process that dies must reset both connections it carried, never end them with a FIN
// that an application would read as a complete stream; and one that ends in order must not reset.
// The relay runs in a child process (the compiled listener, connector and pipe with the real
// addon's SO_LINGER), so that it can be killed with SIGKILL as the kernel would kill a sidecar.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, REPO } from '../testing/build.js';

const CHILD = `
const { listen, boundPort } = await import(process.argv[1] + '/dist/sidecar/src/relay/listener.js');
const { connectTcp } = await import(process.argv[1] + '/dist/sidecar/src/relay/connect.js');
const { relay } = await import(process.argv[1] + '/dist/sidecar/src/relay/pipe.js');
const { installResetOnExit } = await import(process.argv[1] + '/dist/sidecar/src/relay/reset-on-exit.js');
const native = await import(process.argv[1] + '/dist/native/index.js');
installResetOnExit((fd, s) => native.setLinger(fd, s));
const upstreamPort = Number(process.argv[2]);
const server = await listen({ port: 0, host: '127.0.0.1' }, async (app) => {
  const up = await connectTcp({ address: '127.0.0.1', port: upstreamPort }, 5000);
  await relay({ socket: app }, { socket: up });
});
console.log('PORT ' + boundPort(server));
`;

/** How a socket's reading side ended. */
function ending(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    s.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    s.once('end', () => resolve('eof'));
  });
}

describe('a relay that dies resets both connections it carried', () => {
  let child: ChildProcess | undefined;
  let upstream: Server | undefined;

  beforeAll(async () => {
    await ensureBuilt(
      ['dist/sidecar/src/relay/reset-on-exit.js', 'dist/native/index.js'],
      ['sidecar/src/relay', 'native'],
    );
  }, 300_000);

  afterEach(() => {
    child?.kill('SIGKILL');
    upstream?.close();
  });

  /** An upstream server, the relay child in front of it, and a client connected through both. */
  async function start(
    onUpstream: (s: Socket) => void,
  ): Promise<{ client: Socket; server: Promise<Socket> }> {
    let accepted: (s: Socket) => void = () => undefined;
    const server = new Promise<Socket>((r) => (accepted = r));
    upstream = createServer({ allowHalfOpen: true }, (s) => {
      onUpstream(s);
      accepted(s);
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const addr = upstream.address();
    if (addr === null || typeof addr === 'string') throw new Error('no address');
    child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, REPO, String(addr.port)], {
      cwd: join(REPO),
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, SMC_VERBS_ADDON: join(REPO, 'native/build/Release/smc_verbs.node') },
    });
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child?.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /PORT (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child?.once('exit', (code) => reject(new Error(`relay child exited ${code}: ${out}`)));
    });
    const client = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    await once(client, 'connect');
    return { client, server };
  }

  // Retried: it failed once in a CI run, with the machine loaded by the VM and API server
  // tests beside it (the cause was not kept); a relay that does not reset fails every attempt.
  it(
    'SIGKILL mid-stream: the client and the upstream both see a reset, not an end of data',
    { retry: 2 },
    async () => {
      const { client, server } = await start((s) => {
        const chunk = Buffer.alloc(16_384, 0x61);
        const more = (): void => {
          while (!s.destroyed && s.write(chunk));
          if (!s.destroyed) s.once('drain', more);
        };
        s.on('error', () => undefined);
        more();
      });
      const up = await server;
      const clientEnd = ending(client);
      const upstreamEnd = ending(up);
      let received = 0;
      await new Promise<void>((resolve) =>
        client.on('data', (d: Buffer) => {
          received += d.byteLength;
          if (received > 1_000_000) resolve();
        }),
      );
      child?.kill('SIGKILL');
      expect(await clientEnd).toBe('error ECONNRESET');
      expect(await upstreamEnd).toMatch(/^error (ECONNRESET|EPIPE)$/);
    },
  );

  it('an orderly end is still an end: FIN forwarded both ways, nothing reset', async () => {
    const { client, server } = await start((s) => {
      s.on('data', (d: Buffer) => s.write(d));
      s.on('end', () => s.end('bye'));
    });
    const up = await server;
    const upstreamEnd = ending(up);
    const clientEnd = ending(client);
    let echoed = '';
    client.on('data', (d: Buffer) => (echoed += d.toString()));
    client.end('hello');
    expect(await upstreamEnd).toBe('eof');
    expect(await clientEnd).toBe('eof');
    expect(echoed).toBe('hellobye');
  });
});
