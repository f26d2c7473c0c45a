import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DirectoryEndpoint } from '../../operator/src/api/directory.js';
import type { SidecarConfig } from './config/schema.js';
import { SidecarConfigSchema } from './config/schema.js';
import { directoryDoc, endpoint } from './directory/testing.js';
import type { OriginalDstResolver } from './intercept/original-dst.js';
import { silentLogger } from './log.js';
import { type RunningSidecar, runSidecar } from './run.js';
import type { LinkGroupManager } from './smc/link-group-manager.js';
import { FakeLinkGroupManager } from './smc/testing.js';
import { UnavailableLinkGroupManager } from './smc/unavailable-link-group-manager.js';
import { FallbackReason } from './policy/reasons.js';
import { encodePreamble } from './smc/preamble.js';
import { SMC_CLC_DECL } from './protocol/clc/decline-codes.js';

const run = promisify(execFile);

/*
 * Two sidecars on loopback: "pod A" (client, 127.0.0.1) and "pod B" (server,
 * 127.0.0.2). Explicit ports stand in for nftables: the app connects to A's
 * outbound port, and A's original-destination resolver says where it was going.
 */
const POD_A = '127.0.0.1';
const POD_B = '127.0.0.2';

function fixedDst(address: string, port: () => number): OriginalDstResolver {
  return { name: 'fixed', resolve: () => Promise.resolve({ address, port: port(), family: 4 }) };
}

function config(
  dirPath: string,
  over: Partial<SidecarConfig['policy']> = {},
  tenant = 'team-a',
  limits: Partial<SidecarConfig['limits']> = {},
): SidecarConfig {
  const cfg = SidecarConfigSchema.parse({ tenant, directory: { path: dirPath, pollIntervalMs: 100 } });
  return {
    ...cfg,
    logLevel: 'silent',
    ports: { outbound: 0, inbound: 0, smc: 0, metrics: 0, health: 0, admin: 0 },
    policy: { ...cfg.policy, ...over },
    limits: { ...cfg.limits, ...limits },
    timeouts: { ...cfg.timeouts, clcHandshakeMs: 2000, connectMs: 2000 },
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
  const res = await fetch(`http://127.0.0.1:${s.ports.metrics}/metrics`);
  return res.text();
}

function metricValue(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

interface Pair {
  a: RunningSidecar;
  b: RunningSidecar;
}

describe('two sidecars on loopback', () => {
  let dir: string;
  let httpServer: HttpServer;
  let httpPort = 0;
  const running: RunningSidecar[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'smc-loop-'));
    httpServer = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => res.end(`hello from B: ${req.method} ${req.url} ${body.length}\n`));
    });
    await new Promise<void>((r) => httpServer.listen(0, POD_B, r));
    const a = httpServer.address();
    httpPort = a !== null && typeof a !== 'string' ? a.port : 0;
  });
  afterAll(async () => {
    await new Promise<void>((r) => httpServer.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
  });

  async function startPair(opts: {
    linksA: LinkGroupManager;
    linksB: LinkGroupManager;
    policyA?: Partial<SidecarConfig['policy']>;
    policyB?: Partial<SidecarConfig['policy']>;
    limitsA?: Partial<SidecarConfig['limits']>;
    limitsB?: Partial<SidecarConfig['limits']>;
    tenantB?: string;
    inDirectory?: boolean;
    dstPort?: () => number;
  }): Promise<Pair> {
    const path = join(dir, `dir-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(path, JSON.stringify(directoryDoc([])));
    const dstPort = opts.dstPort ?? (() => httpPort);
    const a = await runSidecar(config(path, opts.policyA, 'team-a', opts.limitsA), silentLogger(), {
      originalDst: fixedDst(POD_B, dstPort),
      links: opts.linksA,
    });
    running.push(a);
    const b = await runSidecar(config(path, opts.policyB, opts.tenantB, opts.limitsB), silentLogger(), {
      originalDst: fixedDst(POD_B, dstPort),
      links: opts.linksB,
    });
    running.push(b);
    const endpoints: DirectoryEndpoint[] = [endpoint(POD_A, { sidecarPort: a.ports.smc })];
    if (opts.inDirectory !== false) {
      endpoints.push(endpoint(POD_B, { sidecarPort: b.ports.smc, tenant: opts.tenantB ?? 'team-a' }));
    }
    await writeFile(path, JSON.stringify(directoryDoc(endpoints)));
    await until(
      () => a.ctx.directory().size === endpoints.length && b.ctx.directory().size === endpoints.length,
    );
    return { a, b };
  }

  async function curl(p: Pair, data?: string): Promise<string> {
    const args = ['-sS', '--max-time', '10', `http://${POD_A}:${p.a.ports.outbound}/x`];
    if (data !== undefined) args.push('--data-binary', data);
    const { stdout } = await run('curl', args);
    return stdout;
  }

  it('runs the CLC handshake, then falls back to TCP on the same connection when the link fails (curl)', async () => {
    const linksA = new FakeLinkGroupManager({ seed: 1 });
    const linksB = new FakeLinkGroupManager({ seed: 2 });
    const p = await startPair({ linksA, linksB });
    expect(await curl(p)).toBe('hello from B: GET /x 0\n');
    expect(await curl(p, 'x'.repeat(100_000))).toBe('hello from B: POST /x 100000\n');
    expect(linksA.prepared).toHaveLength(2);
    expect(linksB.prepared).toHaveLength(2);
    expect(linksA.released).toBe(2);
    expect(linksB.released).toBe(2);
    const m = await metricsOf(p.a);
    expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="link-setup-failed"')).toBe(2);
    expect(m).toMatch(/^smc_handshake_duration_seconds_count 2$/m);
    expect(metricValue(m, 'smc_bytes_total', 'path="tcp",direction="tx"')).toBeGreaterThan(100_000);
    expect(metricValue(m, 'smc_bytes_total', 'path="tcp",direction="rx"')).toBeGreaterThan(0);
  });

  it('falls back when the server declines the Proposal (tenant), and counts the peer decline', async () => {
    const p = await startPair({
      linksA: new FakeLinkGroupManager({ seed: 1 }),
      linksB: new FakeLinkGroupManager({ seed: 2 }),
      policyA: { allowedPeerTenants: ['team-b'] },
      policyB: { allowedPeerTenants: [] },
      tenantB: 'team-b',
    });
    // A's directory says team-b allows nobody, so A does not even try: plain relay through B's sidecar.
    expect(await curl(p)).toBe('hello from B: GET /x 0\n');
    let m = await metricsOf(p.a);
    expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="tenant-not-allowed"')).toBe(1);

    // With a directory entry that claims mutual permission, B's own check (team-b allows nobody) declines.
    const path = p.a.ctx.config.directory.path;
    await writeFile(
      path,
      JSON.stringify(
        directoryDoc([
          endpoint(POD_A, { sidecarPort: p.a.ports.smc }),
          endpoint(POD_B, { sidecarPort: p.b.ports.smc, tenant: 'team-b', allowedPeerTenants: ['team-a'] }),
        ]),
      ),
    );
    await until(() => p.a.ctx.directory().lookup(POD_B)?.allowedPeerTenants.length === 1);
    expect(await curl(p)).toBe('hello from B: GET /x 0\n');
    m = await metricsOf(p.a);
    expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="peer-declined"')).toBe(1);
  });

  it('relays directly, without any CLC bytes, to destinations outside the directory', async () => {
    const linksA = new FakeLinkGroupManager();
    const p = await startPair({ linksA, linksB: new FakeLinkGroupManager(), inDirectory: false });
    expect(await curl(p)).toBe('hello from B: GET /x 0\n');
    expect(linksA.prepared).toHaveLength(0);
    const m = await metricsOf(p.a);
    expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="peer-not-in-directory"')).toBe(
      1,
    );
  });

  it('relays through the peer sidecar without CLC when no RDMA device is available', async () => {
    const p = await startPair({
      linksA: new UnavailableLinkGroupManager('no device'),
      linksB: new UnavailableLinkGroupManager('no device'),
    });
    expect(await curl(p)).toBe('hello from B: GET /x 0\n');
    const m = await metricsOf(p.a);
    expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="no-rdma-device"')).toBe(1);
  });

  it('relays straight to the destination while the SMC-R budget is used up, and upgrades once it is free', async () => {
    const linksA = new FakeLinkGroupManager({ seed: 1 });
    const linksB = new FakeLinkGroupManager({ seed: 2 });
    const p = await startPair({ linksA, linksB, limitsA: { maxConnections: 1 } });
    // The one slot is held, as by a live SMC-R connection.
    const live = p.a.ctx.budget.reserve();
    if (!live.admitted) throw new Error('budget refused the first reservation');
    expect(await curl(p)).toBe('hello from B: GET /x 0\n');
    // No CLC and no peer sidecar: B's sidecar never saw the connection.
    expect(linksA.prepared).toHaveLength(0);
    expect(linksB.prepared).toHaveLength(0);
    expect(p.b.ctx.connections.report().connections).toEqual([]);
    let m = await metricsOf(p.a);
    expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="limit-reached"')).toBe(1);
    expect(metricValue(m, 'smc_connections_total', 'outcome="declined",reason="limit-reached"')).toBe(0);
    expect(metricValue(m, 'smc_app_resets_total', 'reason="limit-reached"')).toBe(0);
    expect(p.a.ctx.connections.closedConnections()[0]).toMatchObject({
      outcome: 'fallback',
      reason: 'limit-reached',
      mode: 'TCP',
      decline: null,
    });

    live.release();
    expect(await curl(p)).toBe('hello from B: GET /x 0\n');
    expect(linksA.prepared).toHaveLength(1);
    m = await metricsOf(p.a);
    expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="link-setup-failed"')).toBe(1);
    // The failed upgrade gave its reservation back on both sides.
    await until(() => p.a.ctx.budget.connections === 0 && p.b.ctx.budget.connections === 0);
    expect(p.a.ctx.budget.reservedBytes).toBe(0);
  });

  it('declines a Proposal with SMC_CLC_DECL_MEM when the server budget is used up; TCP carries on', async () => {
    const linksA = new FakeLinkGroupManager({ seed: 1 });
    const linksB = new FakeLinkGroupManager({ seed: 2 });
    // Below one RMB: B admits no SMC-R connection at all.
    const p = await startPair({ linksA, linksB, limitsB: { maxRegisteredMemory: 0 } });
    expect(await curl(p, 'z'.repeat(50_000))).toBe('hello from B: POST /x 50000\n');
    expect(linksA.prepared).toHaveLength(1);
    expect(linksB.prepared).toHaveLength(0);
    const m = await metricsOf(p.a);
    expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="peer-declined"')).toBe(1);
    const mem = { code: SMC_CLC_DECL.MEM, hex: '0x01010000' };
    await until(() => p.b.ctx.connections.closedConnections().length === 1);
    expect(p.b.ctx.connections.report().connections[0]).toMatchObject({
      outcome: 'fallback',
      reason: 'limit-reached',
      mode: 'TCP',
      decline: { ...mem, origin: 'local' },
    });
    await until(() => p.a.ctx.connections.closedConnections().length === 1);
    expect(p.a.ctx.connections.report().connections[0]).toMatchObject({
      reason: 'peer-declined',
      decline: { ...mem, origin: 'peer' },
    });
    expect(p.a.ctx.budget.connections).toBe(0);
  });

  it('resets the application connection in Require mode when the upgrade fails', async () => {
    const p = await startPair({
      linksA: new FakeLinkGroupManager({ seed: 1 }),
      linksB: new FakeLinkGroupManager({ seed: 2 }),
      policyA: { mode: 'Require' },
    });
    // The reset can reach curl before it has checked its non-blocking connect, which curl reports
    // as a failed connect (7); the metric below shows the sidecar accepted and then declined it.
    await expect(curl(p)).rejects.toThrow(/curl: \((7|56)\)|reset|Empty reply/i);
    const m = await metricsOf(p.a);
    expect(metricValue(m, 'smc_connections_total', 'outcome="declined",reason="link-setup-failed"')).toBe(1);
  });

  it('resets the application when the destination port on pod B is closed', async () => {
    const probe: Server = createServer();
    await new Promise<void>((r) => probe.listen(0, POD_B, r));
    const addr = probe.address();
    const closedPort = addr !== null && typeof addr !== 'string' ? addr.port : 0;
    await new Promise<void>((r) => probe.close(() => r()));
    const p = await startPair({
      linksA: new FakeLinkGroupManager({ seed: 1 }),
      linksB: new FakeLinkGroupManager({ seed: 2 }),
      dstPort: () => closedPort,
    });
    // B's sidecar resets the handshake; A tries the destination directly, which refuses: the
    // application gets the reset TCP alone would have given it.
    await expect(curl(p)).rejects.toThrow();
    const m = await metricsOf(p.a);
    expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="peer-reset"')).toBe(1);
    expect(metricValue(m, 'smc_connections_total', 'outcome="declined",reason="peer-reset"')).toBe(0);
  });

  it('continues over a new TCP connection, bytes intact, when the peer sidecar resets the handshake', async () => {
    const p = await startPair({
      linksA: new FakeLinkGroupManager({ seed: 1 }),
      linksB: new FakeLinkGroupManager({ seed: 2 }),
    });
    // B's SMC port is replaced by one that reads the preamble and Proposal, then resets: an
    // overloaded or restarting sidecar. Before the commit point that must cost the application nothing.
    const hostile: Server = createServer((s) => {
      s.once('data', () => s.resetAndDestroy());
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => hostile.listen(0, POD_B, r));
    const addr = hostile.address();
    const hostilePort = addr !== null && typeof addr !== 'string' ? addr.port : 0;
    try {
      await writeFile(
        p.a.ctx.config.directory.path,
        JSON.stringify(
          directoryDoc([
            endpoint(POD_A, { sidecarPort: p.a.ports.smc }),
            endpoint(POD_B, { sidecarPort: hostilePort }),
          ]),
        ),
      );
      await until(() => p.a.ctx.directory().lookup(POD_B)?.sidecarPort === hostilePort);
      expect(await curl(p, 'y'.repeat(100_000))).toBe('hello from B: POST /x 100000\n');
      const m = await metricsOf(p.a);
      expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="peer-reset"')).toBe(1);
      expect(metricValue(m, 'smc_connections_total', 'outcome="declined",reason="peer-reset"')).toBe(0);
    } finally {
      await new Promise<void>((r) => hostile.close(() => r()));
    }
  });

  it("refuses a peer's preamble for the sidecar's own ports and excluded ones, and carries an app port", async () => {
    const p = await startPair({
      linksA: new UnavailableLinkGroupManager('no device'),
      linksB: new UnavailableLinkGroupManager('no device'),
    });
    // What a hostile peer sends straight to B's SMC port: a plain-relay preamble, then HTTP.
    const ask = (port: number): Promise<string> =>
      new Promise((resolve) => {
        const s = connect({ host: POD_B, port: p.b.ports.smc, allowHalfOpen: true });
        let got = '';
        s.on('data', (d: Buffer) => (got += d.toString()));
        s.on('error', () => resolve(`reset after ${got.length} bytes`));
        s.on('end', () => resolve(got));
        s.write(encodePreamble({ clc: false, port }));
        s.end(`GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n`);
      });
    expect(await ask(p.b.ports.metrics)).toMatch(/^reset after 0 bytes$|^$/);
    expect(await ask(p.b.ports.health)).toMatch(/^reset after 0 bytes$|^$/);
    expect(await ask(httpPort)).toMatch(/^HTTP\/1\.1 200/);
    const m = await metricsOf(p.b);
    expect(metricValue(m, 'smc_rdma_errors_total', 'kind="preamble-port"')).toBe(2);
  });

  it('resets connections whose original destination cannot be found', async () => {
    const path = join(dir, 'dir-unknown.json');
    await writeFile(path, JSON.stringify(directoryDoc([])));
    const a = await runSidecar(config(path), silentLogger(), {
      originalDst: { name: 'none', resolve: () => Promise.reject(new Error('not redirected')) },
      links: new UnavailableLinkGroupManager('none'),
    });
    running.push(a);
    await expect(
      run('curl', ['-sS', '--max-time', '5', `http://${POD_A}:${a.ports.outbound}/`]),
    ).rejects.toThrow();
    const m = await metricsOf(a);
    expect(metricValue(m, 'smc_connections_total', 'outcome="declined",reason="original-dst-unknown"')).toBe(
      1,
    );
  });

  describe('with redis-server behind pod B', () => {
    let redis: ChildProcess;
    let redisPort = 0;
    beforeAll(async () => {
      const probe: Server = createServer();
      await new Promise<void>((r) => probe.listen(0, POD_B, r));
      const addr = probe.address();
      redisPort = addr !== null && typeof addr !== 'string' ? addr.port : 0;
      await new Promise<void>((r) => probe.close(() => r()));
      redis = spawn(
        'redis-server',
        ['--port', String(redisPort), '--bind', POD_B, '--save', '', '--appendonly', 'no'],
        { stdio: 'ignore' },
      );
      for (let i = 0; i < 100; i++) {
        try {
          await run('redis-cli', ['-h', POD_B, '-p', String(redisPort), 'PING']);
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      throw new Error('redis-server did not start');
    });
    afterAll(() => {
      redis.kill();
    });

    it('carries redis-cli through the handshake-then-fallback path', async () => {
      const p = await startPair({
        linksA: new FakeLinkGroupManager({ seed: 1 }),
        linksB: new FakeLinkGroupManager({ seed: 2 }),
        dstPort: () => redisPort,
      });
      const cli = (...args: string[]) =>
        run('redis-cli', ['-h', POD_A, '-p', String(p.a.ports.outbound), ...args]).then((r) =>
          r.stdout.trim(),
        );
      const big = 'v'.repeat(100_000);
      expect(await cli('SET', 'k', big)).toBe('OK');
      expect((await cli('GET', 'k')).length).toBe(big.length);
      expect(await cli('PING')).toBe('PONG');
      const m = await metricsOf(p.a);
      expect(metricValue(m, 'smc_connections_total', 'outcome="fallback",reason="link-setup-failed"')).toBe(
        3,
      );
    });
  });

  it('holds a server-first greeting during the handshake and delivers it after fallback', async () => {
    const greeter = createServer({ allowHalfOpen: true }, (s: Socket) => {
      s.write('220 greetings\r\n');
      s.on('data', (d: Buffer) => s.write(`echo:${d.toString()}`));
      s.on('end', () => s.end('bye\r\n'));
    });
    await new Promise<void>((r) => greeter.listen(0, POD_B, r));
    const ga = greeter.address();
    const greeterPort = ga !== null && typeof ga !== 'string' ? ga.port : 0;
    try {
      const p = await startPair({
        linksA: new FakeLinkGroupManager({ seed: 1 }),
        linksB: new FakeLinkGroupManager({ seed: 2 }),
        dstPort: () => greeterPort,
      });
      const client = connect({ host: POD_A, port: p.a.ports.outbound, allowHalfOpen: true });
      // Written before the handshake can have finished: held by A and replayed after the fallback.
      client.write('early');
      let got = '';
      client.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.includes('echo:early')) client.end();
      });
      await new Promise<void>((resolve, reject) => {
        client.on('end', resolve);
        client.on('error', reject);
      });
      expect(got).toBe('220 greetings\r\necho:earlybye\r\n');
      expect(FallbackReason.LinkSetupFailed).toBe('link-setup-failed');
    } finally {
      await new Promise<void>((r) => greeter.close(() => r()));
    }
  });
});
