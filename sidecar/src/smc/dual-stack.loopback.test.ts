import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DirectoryEndpoint } from '../../../operator/src/api/directory.js';
import { type SidecarConfig, SidecarConfigSchema } from '../config/schema.js';
import { directoryDoc, endpoint } from '../directory/testing.js';
import type { OriginalDstResolver } from '../intercept/original-dst.js';
import { silentLogger } from '../log.js';
import { ipFamily, type SocketAddress } from '../net/ip.js';
import { type RunningSidecar, runSidecar } from '../run.js';
import { encodePreamble } from './preamble.js';
import { FakeLinkGroupManager } from './testing.js';

const run = promisify(execFile);

/*
 * Dual-stack pods on loopback, with the link groups a sidecar asks for (FakeLinkGroupManager
 * records each prepare). Loopback has one IPv6 address, ::1, so each test gives it to the pod whose
 * IPv6 side it exercises: the server pod (the client dials it) or the client pod (the server sees
 * it as the source).
 */
const POD_A = '127.0.0.1';
const POD_B = '127.0.0.2';
const V6 = '::1';

function config(dirPath: string): SidecarConfig {
  const cfg = SidecarConfigSchema.parse({
    tenant: 'team-a',
    directory: { path: dirPath, pollIntervalMs: 100 },
  });
  return {
    ...cfg,
    logLevel: 'silent',
    ports: { outbound: 0, inbound: 0, smc: 0, metrics: 0, health: 0, admin: 0 },
    timeouts: { ...cfg.timeouts, clcHandshakeMs: 2000, connectMs: 2000 },
  };
}

/** Original destinations in the order the connections arrive. */
function queuedDst(dsts: readonly string[], port: () => number): OriginalDstResolver {
  let next = 0;
  return {
    name: 'queued',
    resolve: (): Promise<SocketAddress> => {
      const address = dsts[next++ % dsts.length] ?? POD_B;
      return Promise.resolve({ address, port: port(), family: ipFamily(address) });
    },
  };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function metricsOf(s: RunningSidecar): Promise<string> {
  return (await fetch(`http://127.0.0.1:${s.ports.metrics}/metrics`)).text();
}

function metricValue(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('dual-stack pods on loopback: one peer, one link-group key', () => {
  let dir: string;
  let app: HttpServer;
  let appPort = 0;
  const running: RunningSidecar[] = [];
  const sockets: Socket[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'smc-dual-'));
    // Pod B's application, on both families (the server sidecar dials it at the address it was reached at).
    app = createHttpServer((req, res) =>
      res.end(`hello ${req.url ?? ''} at ${req.socket.localAddress ?? ''}\n`),
    );
    await new Promise<void>((r) => app.listen(0, '::', r));
    const a = app.address();
    appPort = a !== null && typeof a !== 'string' ? a.port : 0;
  });
  afterAll(async () => {
    await new Promise<void>((r) => app.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.destroy());
    await Promise.all(running.splice(0).map((s) => s.stop()));
  });

  async function sidecar(
    path: string,
    links: FakeLinkGroupManager,
    dsts: string[] = [],
  ): Promise<RunningSidecar> {
    const s = await runSidecar(config(path), silentLogger(), {
      originalDst: queuedDst(dsts, () => appPort),
      links,
    });
    running.push(s);
    return s;
  }

  async function publish(
    path: string,
    endpoints: DirectoryEndpoint[],
    sidecars: RunningSidecar[],
  ): Promise<void> {
    await writeFile(path, JSON.stringify(directoryDoc(endpoints)));
    await until(() => sidecars.every((s) => s.ctx.directory().size === endpoints.length));
  }

  it("client side: the server pod's IPv4 and IPv6 addresses are one peer; the v6 connection is attempted, not left out of the directory", async () => {
    const path = join(dir, 'client.json');
    await writeFile(path, JSON.stringify(directoryDoc([])));
    const linksA = new FakeLinkGroupManager({ seed: 1 });
    const a = await sidecar(path, linksA, [POD_B, V6]);
    const b = await sidecar(path, new FakeLinkGroupManager({ seed: 2 }));
    await publish(
      path,
      [
        endpoint(POD_A, { pod: 'a', podIPs: [POD_A], sidecarPort: a.ports.smc }),
        endpoint(POD_B, { pod: 'b', podIPs: [POD_B, V6], sidecarPort: b.ports.smc }),
      ],
      [a, b],
    );
    const curl = async (): Promise<string> =>
      (await run('curl', ['-sS', '--max-time', '10', `http://${POD_A}:${a.ports.outbound}/x`])).stdout;
    // The fake link never comes up: both fall back to TCP on the same connection, through B's sidecar.
    expect(await curl()).toBe(`hello /x at ::ffff:${POD_B}\n`);
    expect(await curl()).toBe(`hello /x at ${V6}\n`);
    expect(linksA.prepared.map((p) => [p.address, p.key, p.role])).toEqual([
      [POD_B, 'default/b', 'client'],
      [V6, 'default/b', 'client'],
    ]);
    const m = await metricsOf(a);
    expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="link-setup-failed"')).toBe(2);
    expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="peer-not-in-directory"')).toBe(
      0,
    );
    // The connection view keeps the address the application dialled.
    const peers = a.ctx.connections.report().connections.map((c) => c.peer);
    expect(peers.sort()).toEqual([`${POD_B}:${appPort}`, `[${V6}]:${appPort}`].sort());
  });

  it('server side: a client pod connecting from its IPv4 and from its IPv6 address is one peer', async () => {
    const path = join(dir, 'server.json');
    await writeFile(path, JSON.stringify(directoryDoc([])));
    const linksB = new FakeLinkGroupManager({ seed: 2 });
    const b = await sidecar(path, linksB);
    await publish(
      path,
      [
        endpoint(POD_A, { pod: 'a', podIPs: [POD_A, V6] }),
        endpoint(POD_B, { pod: 'b', podIPs: [POD_B], sidecarPort: b.ports.smc }),
      ],
      [b],
    );
    // As A's sidecar would: the preamble announcing a CLC Proposal, from each of A's addresses.
    for (const [host, localAddress] of [
      [POD_B, POD_A],
      [V6, V6],
    ] as const) {
      const s = connect({ host, port: b.ports.smc, localAddress });
      s.on('error', () => undefined);
      sockets.push(s);
      s.write(encodePreamble({ clc: true, port: appPort }));
      await until(() => linksB.prepared.length === sockets.length);
    }
    expect(linksB.prepared.map((p) => [p.address, p.key, p.role])).toEqual([
      [POD_A, 'default/a', 'server'],
      [V6, 'default/a', 'server'],
    ]);
  });
});
