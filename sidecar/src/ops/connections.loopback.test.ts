import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main as smcMain } from '../../../bin/smc.js';
import type { DirectoryEndpoint } from '../../../operator/src/api/directory.js';
import { type SidecarConfig, SidecarConfigSchema } from '../config/schema.js';
import { directoryDoc, endpoint } from '../directory/testing.js';
import { interceptSpecFromConfig, inboundRules } from '../intercept/rules.js';
import type { OriginalDstResolver } from '../intercept/original-dst.js';
import { silentLogger } from '../log.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import type { Direction, PipeEnd, PipeResult } from '../relay/pipe.js';
import { type RunningSidecar, runSidecar } from '../run.js';
import type { LinkGroupManager } from '../smc/link-group-manager.js';
import type { SmcConnection } from '../smc/smc-connection.js';
import { FakeLinkGroupManager } from '../smc/testing.js';
import { UnavailableLinkGroupManager } from '../smc/unavailable-link-group-manager.js';
import { runConnectionsCommand } from './connections-cli.js';
import type { ConnectionInfo, ConnectionsReport } from './connections.js';

/*
 * Real sidecars on loopback, as in run.loopback.test.ts: "pod A" (127.0.0.1) and "pod B"
 * (127.0.0.2); the application connects to A's outbound port and A's original-destination
 * resolver says where it was going. No RDMA here: the connections fall back to TCP, except with
 * the in-memory "fabric" below, which stands in for an SMC-R link.
 */
const POD_A = '127.0.0.1';
const POD_B = '127.0.0.2';

function fixedDst(address: string, port: () => number): OriginalDstResolver {
  return { name: 'fixed', resolve: () => Promise.resolve({ address, port: port(), family: 4 }) };
}

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

async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function connectionsOf(s: RunningSidecar, host = '127.0.0.1'): Promise<ConnectionsReport> {
  const res = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${s.ports.admin}/connections`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/json');
  return (await res.json()) as ConnectionsReport;
}

function tcpStatus(host: string, port: number): Promise<'open' | string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve('open');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** A client that sends `tx` bytes, reads `rx` bytes back, and stays connected until `close()`. */
async function openClient(
  port: number,
  tx: number,
  rx: number,
): Promise<{ socket: Socket; close: () => Promise<void> }> {
  const socket = connect({ host: POD_A, port, allowHalfOpen: true });
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      got += d.byteLength;
      if (got >= rx) resolve();
    });
    socket.write(Buffer.alloc(tx, 0x61));
  });
  const close = async (): Promise<void> => {
    socket.end();
    await new Promise<void>((r) => (socket.closed ? r() : socket.once('close', () => r())));
  };
  return { socket, close };
}

async function capture(run: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += chunk.toString();
    return true;
  });
  try {
    return { code: await run(), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

/**
 * Stands in for SMC-R links between the two sidecars: the n-th client connection that "comes up"
 * is joined in memory to the n-th server one, and bytes flow between their applications as they
 * would over RDMA (counted on the rdma path), not over the sidecars' TCP connection.
 */
class MemoryFabric {
  private readonly halves: { client: MemoryHalf[]; server: MemoryHalf[] } = { client: [], server: [] };

  half(role: 'client' | 'server'): MemoryHalf {
    const mine = this.halves[role];
    const theirs = this.halves[role === 'client' ? 'server' : 'client'];
    const index = mine.length;
    const h = new MemoryHalf(`${role === 'client' ? 'c' : 's'}${index}`);
    mine.push(h);
    const peer = theirs[index];
    if (peer !== undefined) {
      h.pair(peer);
      peer.pair(h);
    }
    return h;
  }
}

class MemoryHalf implements SmcConnection {
  readonly linkId = 'lg-mem';
  private other: MemoryHalf | null = null;
  /** Bytes (null: the FIN) that arrived before run(), and those sent before the other half existed. */
  private inbox: (Buffer | null)[] = [];
  private outbox: (Buffer | null)[] = [];
  private local: ((chunk: Buffer | null) => void) | null = null;

  constructor(readonly id: string) {}

  pair(other: MemoryHalf): void {
    this.other = other;
    for (const c of this.outbox.splice(0)) other.deliver(c);
  }

  private send(chunk: Buffer | null): void {
    if (this.other === null) this.outbox.push(chunk);
    else this.other.deliver(chunk);
  }

  deliver(chunk: Buffer | null): void {
    if (this.local === null) this.inbox.push(chunk);
    else this.local(chunk);
  }

  run(app: PipeEnd, onBytes: (direction: Direction, n: number) => void): Promise<PipeResult> {
    return new Promise((resolve) => {
      const counts = { tx: 0, rx: 0 };
      let sent = false;
      let received = false;
      const done = (): void => {
        if (sent && received) resolve({ ...counts, outcome: 'closed' });
      };
      this.local = (chunk) => {
        if (chunk === null) {
          received = true;
          app.socket.end();
          done();
          return;
        }
        counts.rx += chunk.byteLength;
        onBytes('rx', chunk.byteLength);
        app.socket.write(chunk);
      };
      for (const c of this.inbox.splice(0)) this.local(c);
      const send = (chunk: Buffer): void => {
        counts.tx += chunk.byteLength;
        onBytes('tx', chunk.byteLength);
        this.send(chunk);
      };
      const fin = (): void => {
        sent = true;
        this.send(null);
        done();
      };
      if (app.pending !== undefined && app.pending.byteLength > 0) send(app.pending);
      app.socket.on('data', send);
      if (app.ended === true || app.socket.readableEnded) fin();
      else app.socket.on('end', fin);
      app.socket.on('error', (error) => resolve({ ...counts, outcome: 'reset', resetBy: 'app', error }));
      app.socket.resume();
    });
  }

  abort(): void {
    this.send(null);
  }
}

describe('GET /connections and smc connections, on real sidecars', () => {
  let dir: string;
  let echo: Server;
  let echoPort = 0;
  const running: RunningSidecar[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'smc-conns-'));
    // Pod B's application: echoes every byte, then closes after the client's FIN.
    echo = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined); // reset when a test stops its sidecars
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, POD_B, r));
    const a = echo.address();
    echoPort = a !== null && typeof a !== 'string' ? a.port : 0;
  });
  afterAll(async () => {
    await new Promise<void>((r) => echo.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
  });

  async function start(links: LinkGroupManager, path: string): Promise<RunningSidecar> {
    const s = await runSidecar(config(path), silentLogger(), {
      originalDst: fixedDst(POD_B, () => echoPort),
      links,
    });
    running.push(s);
    return s;
  }

  /** An empty endpoint directory: every destination is a peer without a sidecar until {@link publish}. */
  async function directory(): Promise<string> {
    const path = join(dir, `dir-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(path, JSON.stringify(directoryDoc([])));
    return path;
  }

  async function publish(path: string, endpoints: DirectoryEndpoint[], sidecars: RunningSidecar[]) {
    await writeFile(path, JSON.stringify(directoryDoc(endpoints)));
    await until(() => sidecars.every((s) => s.ctx.directory().size === endpoints.length));
  }

  function only(report: ConnectionsReport, pred: (c: ConnectionInfo) => boolean): ConnectionInfo {
    const found = report.connections.filter(pred);
    expect(found).toHaveLength(1);
    return found[0] as ConnectionInfo;
  }

  it('shows a direct TCP relay (peer without a sidecar) live, then closed, in JSON and in the CLI table', async () => {
    const path = await directory();
    const a = await start(new UnavailableLinkGroupManager('no device'), path);
    const client = await openClient(a.ports.outbound, 5000, 5000);

    const live = await connectionsOf(a);
    expect(live).toMatchObject({ live: 1, closed: 0, closedCapacity: 64 });
    const c = only(live, () => true);
    expect(c).toMatchObject({
      direction: 'outbound',
      listener: 'outbound',
      local: `${POD_A}:${client.socket.localPort}`,
      peer: `${POD_B}:${echoPort}`,
      mode: 'TCP',
      outcome: 'fallback',
      reason: 'peer-not-in-directory',
      decline: null,
      link: null,
      bytes: { rdma: { tx: 0, rx: 0 }, tcp: { tx: 5000, rx: 5000 } },
      closed: false,
    });
    expect(c.id).toMatch(/^[0-9a-f]{12}$/);

    // The CLI, in-process through bin/smc.ts's dispatch, against the same endpoint.
    const table = await capture(() => smcMain(['connections', '--admin-port', String(a.ports.admin)]));
    expect(table.code).toBe(0);
    const lines = table.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+DIR\s+LOCAL\s+PEER\s+MODE\s+OUTCOME\/REASON\s+RDMA TX\/RX\s+TCP TX\/RX/);
    expect(lines[1]?.split(/\s{2,}/)).toEqual([
      c.id,
      'out',
      `${POD_A}:${client.socket.localPort}`,
      `${POD_B}:${echoPort}`,
      'TCP',
      'fallback/peer-not-in-directory',
      '0/0',
      '4.8K/4.8K',
      '-',
      expect.stringMatching(/^\d+(ms|\.\ds|s)$/),
      'open',
    ]);
    expect(lines[2]).toBe('1 open, 0 recently closed (the last 64 are kept)');

    await client.close();
    await until(async () => (await connectionsOf(a)).closed === 1);
    const json = await capture(() => smcMain(['connections', '-o', 'json', `--admin-port=${a.ports.admin}`]));
    expect(json.code).toBe(0);
    const after = JSON.parse(json.out) as ConnectionsReport;
    expect(after).toMatchObject({ live: 0, closed: 1 });
    expect(after.connections[0]).toMatchObject({
      id: c.id,
      mode: 'TCP',
      reason: 'peer-not-in-directory',
      bytes: { tcp: { tx: 5000, rx: 5000 } },
      closed: true,
    });
    expect(after.connections[0]?.closedAt).not.toBeNull();
  });

  it('shows the handshake-then-fallback path on both sidecars, with the CLC Decline code', async () => {
    const path = await directory();
    const a = await start(new FakeLinkGroupManager({ seed: 1 }), path);
    const b = await start(new FakeLinkGroupManager({ seed: 2 }), path);
    await publish(
      path,
      [endpoint(POD_A, { sidecarPort: a.ports.smc }), endpoint(POD_B, { sidecarPort: b.ports.smc })],
      [a, b],
    );
    const client = await openClient(a.ports.outbound, 3000, 3000);
    const out = only(await connectionsOf(a), (c) => c.direction === 'outbound');
    expect(out).toMatchObject({
      mode: 'TCP',
      outcome: 'fallback',
      reason: 'link-setup-failed',
      decline: { code: SMC_CLC_DECL.ERR_RDYLNK, hex: '0x09990002', name: 'ERR_RDYLNK', origin: 'local' },
      bytes: { rdma: { tx: 0, rx: 0 }, tcp: { tx: 3000, rx: 3000 } },
    });
    // Pod B's sidecar sees the same connection arrive on its SMC port, toward its application:
    // A's link failed after the Accept, so A declined instead of confirming, and B heard it.
    const inb = only(await connectionsOf(b), (c) => c.listener === 'smc');
    expect(inb).toMatchObject({
      direction: 'inbound',
      local: `${POD_B}:${echoPort}`,
      mode: 'TCP',
      outcome: 'fallback',
      reason: 'peer-declined',
      decline: { code: SMC_CLC_DECL.ERR_RDYLNK, origin: 'peer' },
      bytes: { tcp: { tx: 3000, rx: 3000 } },
    });
    expect(inb.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    const table = await capture(() => smcMain(['connections', '--admin-port', String(a.ports.admin)]));
    expect(table.out).toContain('fallback/link-setup-failed 0x09990002');
    await client.close();
  });

  it('shows an upgraded connection as SMCR with its link and the bytes on the RDMA path', async () => {
    const fabric = new MemoryFabric();
    const path = await directory();
    const a = await start(
      new FakeLinkGroupManager({ seed: 1, establish: () => Promise.resolve(fabric.half('client')) }),
      path,
    );
    const b = await start(
      new FakeLinkGroupManager({ seed: 2, establish: () => Promise.resolve(fabric.half('server')) }),
      path,
    );
    await publish(
      path,
      [endpoint(POD_A, { sidecarPort: a.ports.smc }), endpoint(POD_B, { sidecarPort: b.ports.smc })],
      [a, b],
    );
    const client = await openClient(a.ports.outbound, 70_000, 70_000);
    const out = only(await connectionsOf(a), (c) => c.direction === 'outbound');
    expect(out).toMatchObject({
      mode: 'SMCR',
      outcome: 'upgraded',
      reason: 'none',
      decline: null,
      link: { id: 'lg-mem', smcConn: 'c0' },
      bytes: { rdma: { tx: 70_000, rx: 70_000 }, tcp: { tx: 0, rx: 0 } },
    });
    const inb = only(await connectionsOf(b), (c) => c.listener === 'smc');
    expect(inb).toMatchObject({
      mode: 'SMCR',
      outcome: 'upgraded',
      link: { id: 'lg-mem', smcConn: 's0' },
      bytes: { rdma: { tx: 70_000, rx: 70_000 }, tcp: { tx: 0, rx: 0 } },
    });
    const table = await capture(() => smcMain(['connections', '--admin-port', String(a.ports.admin)]));
    expect(table.out).toMatch(/\bSMCR\s+upgraded\s+68K\/68K\s+0\/0\s+lg-mem\s/);
    await client.close();
    await until(async () => (await connectionsOf(a)).closed === 1);
  });

  it('listens on loopback only: 127.0.0.1 and ::1, not another address of the host', async () => {
    const path = await directory();
    const a = await start(new UnavailableLinkGroupManager('no device'), path);
    expect(await tcpStatus('127.0.0.1', a.ports.admin)).toBe('open');
    expect((await connectionsOf(a, '::1')).live).toBe(0);
    // The other listeners bind every address ("::"); the admin endpoint does not.
    expect(await tcpStatus('127.0.0.2', a.ports.metrics)).toBe('open');
    expect(await tcpStatus('127.0.0.2', a.ports.admin)).toBe('ECONNREFUSED');
    const external = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i !== undefined && !i.internal && i.family === 'IPv4')
      .map((i) => i?.address ?? '');
    for (const address of external) {
      expect(await tcpStatus(address, a.ports.metrics)).toBe('open');
      expect(await tcpStatus(address, a.ports.admin)).toBe('ECONNREFUSED');
    }
    const other = await fetch(`http://127.0.0.1:${a.ports.admin}/metrics`);
    expect(other.status).toBe(404);
    const post = await fetch(`http://127.0.0.1:${a.ports.admin}/connections`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('exits 1 with a clear message when the sidecar does not answer', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const addr = probe.address();
    const closedPort = addr !== null && typeof addr !== 'string' ? addr.port : 0;
    await new Promise<void>((r) => probe.close(() => r()));

    const r = await capture(() => smcMain(['connections', '--admin-port', String(closedPort)]));
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain(
      `the sidecar did not answer on http://127.0.0.1:${closedPort}/connections (ECONNREFUSED)`,
    );
    expect(r.err).toMatch(/--admin-port/);

    // $SMC_PORT_ADMIN is the default port (the sidecar's container has it), and is checked.
    let err = '';
    const io = (env: Record<string, string>) => ({
      stdout: () => undefined,
      stderr: (t: string) => (err += t),
      env,
    });
    expect(
      await runConnectionsCommand(
        { output: 'table', adminPort: undefined },
        io({ SMC_PORT_ADMIN: String(closedPort) }),
      ),
    ).toBe(1);
    expect(err).toContain(`:${closedPort}/connections`);
    expect(
      await runConnectionsCommand({ output: 'table', adminPort: undefined }, io({ SMC_PORT_ADMIN: 'x' })),
    ).toBe(2);
    expect(err).toContain('SMC_PORT_ADMIN="x" is not a port number');

    const usage = await capture(() => smcMain(['connections', '-o', 'yaml']));
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(
      /^smc connections: --output must be "table" or "json", not "yaml"\nRun "smc connections --help" for usage\.\n$/,
    );
    const help = await capture(() => smcMain(['connections', '--help']));
    expect(help).toMatchObject({ code: 0, err: '' });
    expect(help.out).toMatch(/--admin-port N/);
    expect((await capture(() => smcMain(['--help']))).out).toMatch(/connections \[-o table\|json\]/);
  });

  it('never redirects the admin port inbound (nftables), like the metrics and health ports', () => {
    const spec = interceptSpecFromConfig(SidecarConfigSchema.parse({ tenant: 't' }));
    expect(spec.sidecarPorts).toContain(15104);
    expect(inboundRules(spec)).toContain('tcp dport { 15100, 15101, 15104, 15106, 15121, 15190 } return');
  });
});
