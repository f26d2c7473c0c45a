// One node of the sidecar link-layer lab (test/vm/sidecar-link.test.ts), run in a VM as
//   node dist/test/vm/sidecar/link-node.js server|client link-only|js|native [linkGroupIdleMs]
// server (node0): an HTTP app on $LAB_IP:8080 and a sidecar whose link layer uses $LAB_RXE.
// client (node1): a sidecar whose outbound listener believes every connection was headed to the
// server's app (explicit ports instead of nftables, which the lab kernel lacks), and an HTTP client.
// Both sidecars run the CLC handshake, bring a real RC QP to RTS and confirm the link over LLC;
// then (link-only) fall back to TCP on the same connection, or (js, native) carry the bytes over
// RDMA. With native, later connections join the first link group; the client then waits past the
// server's idle timeout and checks that the server ended the group (DELETE LINK) and that the next
// connection starts a new one.
// Result lines: "RESULT {json}".
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request, createServer as createHttpServer } from 'node:http';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

import { SidecarConfigSchema } from '../../../sidecar/src/config/schema.js';
import { createLogger } from '../../../sidecar/src/log.js';
import { runSidecar } from '../../../sidecar/src/run.js';

const APP_PORT = 8080;
const DONE_PORT = 15999;

function env(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set`);
  return v;
}

function result(r: Record<string, unknown>): void {
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
}

function get(port: number, path: string, body?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const method = body === undefined ? 'GET' : 'POST';
    const req = request({ host: '127.0.0.1', port, path, method, timeout: 60_000, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

async function waitTcp(host: string, port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`${host}:${port} not reachable`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function main(): Promise<void> {
  const role = process.argv[2];
  const me = env('LAB_IP');
  const peer = env('LAB_PEER_IP');
  const out = env('LAB_OUT');
  const directory = join(out, 'directory.json');
  const endpoint = (podIP: string) => ({
    podIP,
    node: podIP,
    namespace: 'lab',
    pod: `pod-${podIP}`,
    tenant: 'team-a',
    sidecarPort: 15100,
    allowedPeerTenants: [],
  });
  writeFileSync(
    directory,
    JSON.stringify({ version: 1, shard: 0, shards: 1, endpoints: [endpoint(me), endpoint(peer)] }),
  );
  const cfg = SidecarConfigSchema.parse({
    tenant: 'team-a',
    logLevel: 'debug',
    rdma: { device: env('LAB_RXE'), gidIndex: 1, dataPath: process.argv[3] ?? 'link-only' },
    directory: { path: directory },
    timeouts: {
      clcHandshakeMs: 20_000,
      ...(process.argv[4] === undefined ? {} : { linkGroupIdleMs: Number(process.argv[4]) }),
    },
  });
  const log = createLogger('debug', `sidecar-${role ?? ''}`);
  const appDst = { address: role === 'server' ? me : peer, port: APP_PORT, family: 4 as const };
  const sidecar = await runSidecar(cfg, log, {
    originalDst: { name: 'fixed', resolve: () => Promise.resolve(appDst) },
    host: '0.0.0.0',
  });
  result({ check: 'started', role, smcR: sidecar.ctx.links.available(), ports: sidecar.ports });

  if (role === 'server') {
    const app = createHttpServer((req, res) => {
      const hash = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        n += c.byteLength;
      });
      req.on('end', () =>
        res.end(n === 0 ? `app on ${me}: ${req.url ?? ''}` : `${n} ${hash.digest('hex')} ${'r'.repeat(n)}`),
      );
    });
    await new Promise<void>((r) => app.listen(APP_PORT, me, r));
    // Stay up until the client says it is done.
    await new Promise<void>((resolve) => {
      const done = createServer((s) => {
        s.destroy();
        done.close();
        resolve();
      });
      done.listen(DONE_PORT, me);
      setTimeout(resolve, 240_000).unref();
    });
    app.close();
  } else {
    await waitTcp(peer, 15100, 120_000);
    await waitTcp(peer, APP_PORT, 120_000);
    const bodies: string[] = [];
    for (let i = 0; i < 3; i++) bodies.push(await get(sidecar.ports.outbound, `/req-${i}`));
    result({ check: 'http', bodies });
    // 3 MiB up, the same amount back: several laps of the 64 KiB RMBEs in both directions.
    const payload = randomBytes(3 * 1024 * 1024);
    const answer = await get(sidecar.ports.outbound, '/upload', payload);
    const [n, digest, echo] = answer.split(' ');
    result({
      check: 'upload',
      ok:
        Number(n) === payload.byteLength &&
        digest === createHash('sha256').update(payload).digest('hex') &&
        echo?.length === payload.byteLength,
    });
    const metrics = await get(sidecar.ports.metrics, '/metrics');
    result({
      check: 'metrics',
      // Series that never counted (every reason starts at 0) say nothing about this run.
      connections: metrics
        .split('\n')
        .filter((l) => l.startsWith('smc_connections_total{') && !l.endsWith(' 0')),
      bytes: metrics.split('\n').filter((l) => l.startsWith('smc_bytes_total{')),
    });
    if (process.argv[3] === 'native') {
      const idleMs = cfg.timeouts.linkGroupIdleMs;
      const groups = async (): Promise<number> => {
        const line = (await get(sidecar.ports.metrics, '/metrics'))
          .split('\n')
          .find((l) => l.startsWith('smc_link_groups '));
        return Number(line?.split(' ')[1] ?? NaN);
      };
      const before = await groups();
      // The server ends its idle group first and tells us (our own timer runs 10 s longer).
      await new Promise((r) => setTimeout(r, idleMs + 3000));
      const afterIdle = await groups();
      const again = await get(sidecar.ports.outbound, '/after-idle');
      const afterAgain = await groups();
      result({ check: 'link-groups', before, afterIdle, again, afterAgain, idleMs });
    }
    await waitTcp(peer, DONE_PORT, 10_000).catch(() => undefined);
  }
  await sidecar.stop();
  result({ check: 'stopped', role });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
