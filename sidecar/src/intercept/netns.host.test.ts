import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryDoc, endpoint } from '../directory/testing.js';
import { ensureBuilt, REPO } from '../testing/build.js';

/*
 * The real interception path, on this host: two network namespaces ("pods")
 * joined by a veth pair, each with the compiled sidecar running as uid 7609
 * and its nftables rules installed by `intercept install`. Unmodified curl in
 * pod A reaches an HTTP server in pod B over IPv4 and IPv6. Addresses are from
 * the documentation ranges and exist only inside these namespaces.
 * Skipped unless running as root with ip, nft, setpriv and curl.
 */

const run = promisify(execFile);
const MAIN = join(REPO, 'dist/sidecar/src/main.js');
const TAG = `${process.pid % 10000}`;
const NS_A = `smc-a-${TAG}`;
const NS_B = `smc-b-${TAG}`;
const A4 = '192.0.2.1';
const B4 = '192.0.2.2';
/** A second address of pod B that is not in the directory (no sidecar known there). */
const B4_OTHER = '192.0.2.3';
const A6 = '2001:db8:99::1';
const B6 = '2001:db8:99::2';

function hostAllows(): boolean {
  if (process.getuid?.() !== 0) return false;
  for (const tool of ['ip', 'nft', 'setpriv', 'curl']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return false;
    }
  }
  try {
    execFileSync('unshare', ['-n', 'nft', 'list', 'ruleset'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function sh(cmd: string): Promise<string> {
  return (await run('sh', ['-c', cmd])).stdout;
}

const inNs = (ns: string, cmd: string) => sh(`ip netns exec ${ns} ${cmd}`);

async function waitFor(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(!hostAllows())('interception in network namespaces (host)', () => {
  const work = mkdtempSync(join(tmpdir(), 'smc-netns-'));
  chmodSync(work, 0o755);
  const children: ChildProcess[] = [];
  const logs: Record<string, string> = {};

  const spawnIn = (
    name: string,
    ns: string,
    argv: string[],
    env: Record<string, string> = {},
  ): ChildProcess => {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    logs[name] = '';
    child.stdout?.on('data', (d: Buffer) => (logs[name] += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (logs[name] += d.toString()));
    children.push(child);
    return child;
  };

  const asSidecar = ['setpriv', '--reuid', '7609', '--regid', '7609', '--clear-groups'];
  // CAP_DAC_READ_SEARCH lets uid 7609 read /proc/net/nf_conntrack when the native addon is absent.
  const caps = ['--inh-caps', '+dac_read_search', '--ambient-caps', '+dac_read_search'];

  function writeConfig(name: string, redirect: 'all' | 'peers' = 'all'): string {
    const path = join(work, `${name}.json`);
    writeFileSync(
      path,
      JSON.stringify({
        tenant: 'team-a',
        logLevel: 'debug',
        directory: { path: join(work, 'directory.json'), pollIntervalMs: 200 },
        intercept: { excludeOutboundPorts: [8081], redirect },
      }),
    );
    chmodSync(path, 0o644);
    return path;
  }

  /** The directory both sidecars read; pod B listed with tenant `tenantB`. */
  function writeDirectory(tenantB: string): void {
    const path = join(work, 'directory.json');
    writeFileSync(
      `${path}.tmp`,
      JSON.stringify(
        directoryDoc([
          endpoint(A4, { pod: 'a' }),
          endpoint(B4, { pod: 'b', tenant: tenantB }),
          endpoint(A6, { pod: 'a' }),
          endpoint(B6, { pod: 'b', tenant: tenantB }),
        ]),
      ),
    );
    chmodSync(`${path}.tmp`, 0o644);
    renameSync(`${path}.tmp`, path);
  }

  beforeAll(async () => {
    await ensureBuilt(['dist/sidecar/src/main.js'], ['sidecar/src', 'operator/src/api']);
    await sh(`ip netns add ${NS_A} && ip netns add ${NS_B}`);
    await sh(`ip link add smcva${TAG} netns ${NS_A} type veth peer name smcvb${TAG} netns ${NS_B}`);
    for (const [ns, dev, v4, v6] of [
      [NS_A, `smcva${TAG}`, A4, A6],
      [NS_B, `smcvb${TAG}`, B4, B6],
    ] as const) {
      await inNs(ns, `ip link set lo up`);
      await inNs(ns, `ip addr add ${v4}/24 dev ${dev}`);
      await inNs(ns, `ip addr add ${v6}/64 dev ${dev} nodad`);
      await inNs(ns, `ip link set ${dev} up`);
    }
    await inNs(NS_B, `ip addr add ${B4_OTHER}/24 dev smcvb${TAG}`);
    writeDirectory('team-a');

    // The "application" of pod B: an HTTP server on every address, ports 8080, 8081 and 9090.
    const server = `const http=require('http');for(const p of [8080,8081,9090])http.createServer((q,s)=>s.end('pod-b:'+p+':'+q.socket.remoteAddress+'\\n')).listen(p,'::')`;
    spawnIn('app-b', NS_B, [
      'setpriv',
      '--reuid',
      '65534',
      '--regid',
      '65534',
      '--clear-groups',
      process.execPath,
      '-e',
      server,
    ]);

    for (const [name, ns] of [
      ['a', NS_A],
      ['b', NS_B],
    ] as const) {
      const cfg = writeConfig(name);
      // Twice: installing is idempotent.
      await inNs(ns, `${process.execPath} ${MAIN} intercept install --config ${cfg}`);
      await inNs(ns, `${process.execPath} ${MAIN} intercept install --config ${cfg}`);
      spawnIn(`sidecar-${name}`, ns, [...asSidecar, ...caps, process.execPath, MAIN, 'run', '--config', cfg]);
    }
    for (const ns of [NS_A, NS_B]) {
      await waitFor(`sidecar in ${ns}`, async () =>
        (await inNs(ns, 'curl -sf http://127.0.0.1:15121/healthz/ready')).includes('"ready":true'),
      );
    }
    await waitFor('app in pod B', async () =>
      (await inNs(NS_B, `curl -sf http://${B4}:8080/`)).startsWith('pod-b'),
    );
  }, 180_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await sh(`ip netns del ${NS_A}; ip netns del ${NS_B}`).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
    if (process.env['SMC_TEST_VERBOSE'] === '1')
      for (const [k, v] of Object.entries(logs)) console.log(`--- ${k}\n${v}`);
  });

  const metricsA = () => inNs(NS_A, 'curl -sf http://127.0.0.1:15190/metrics');
  const count = (text: string, labels: string) =>
    Number(
      text
        .split('\n')
        .find((l) => l.startsWith(`smc_connections_total{${labels}}`))
        ?.split(' ')
        .pop() ?? 0,
    );

  it('installs exactly one table, idempotently', async () => {
    const tables = await inNs(NS_A, 'nft list tables');
    expect(tables.trim().split('\n')).toEqual(['table inet smc_sidecar']);
    const rules = await inNs(NS_A, 'nft list table inet smc_sidecar');
    expect(rules).toContain('meta skuid 7609 return');
    expect(rules).toContain('redirect to :15101');
    expect(rules).toContain('redirect to :15106');
  });

  it('carries curl from pod A to pod B through both sidecars, IPv4 and IPv6', async () => {
    const before = await metricsA();
    // The app sees pod B's sidecar as its client (it connects locally, from the pod's own address).
    expect(await inNs(NS_A, `curl -sS --max-time 10 http://${B4}:8080/`)).toBe(`pod-b:8080:::ffff:${B4}\n`);
    expect(await inNs(NS_A, `curl -sS --max-time 10 http://[${B6}]:8080/`)).toBe(`pod-b:8080:${B6}\n`);
    const after = await metricsA();
    // No RDMA device here: both went through B's sidecar port over TCP.
    const labels = 'outcome="fallback",reason="no-rdma-device"';
    expect(count(after, labels) - count(before, labels)).toBe(2);
  }, 60_000);

  it('relays destinations outside the directory directly; the peer pod intercepts them inbound', async () => {
    const before = await metricsA();
    expect(await inNs(NS_A, `curl -sS --max-time 10 http://${B4_OTHER}:9090/`)).toMatch(
      /^pod-b:9090:::ffff:192\.0\.2\.[23]\n$/,
    );
    const after = await metricsA();
    const labels = 'outcome="fallback",reason="peer-not-in-directory"';
    expect(count(after, labels) - count(before, labels)).toBe(1);
    // B's sidecar sees plain TCP from A, a directory peer: A's sidecar chose TCP, and says why.
    const metricsB = await inNs(NS_B, 'curl -sf http://127.0.0.1:15190/metrics');
    expect(count(metricsB, 'outcome="fallback",reason="peer-chose-tcp"')).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('leaves excluded ports alone', async () => {
    const before = await metricsA();
    expect(await inNs(NS_A, `curl -sS --max-time 10 http://${B4}:8081/`)).toMatch(/^pod-b:8081:/);
    const after = await metricsA();
    const total = (t: string) =>
      t
        .split('\n')
        .filter((l) => l.startsWith('smc_connections_total{'))
        .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    expect(total(after)).toBe(total(before));
  }, 60_000);

  it('with intercept.redirect peers, redirects only the peers the directory allows, as `intercept sync` keeps them', async () => {
    const total = async (): Promise<number> =>
      (await metricsA())
        .split('\n')
        .filter((l) => l.startsWith('smc_connections_total{'))
        .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    const set = async (name: string): Promise<string> => inNs(NS_A, `nft list set inet smc_sidecar ${name}`);
    const peersCfg = writeConfig('a-peers', 'peers');
    await inNs(NS_A, `${process.execPath} ${MAIN} intercept install --config ${peersCfg}`);
    try {
      // The sets start empty: nothing is redirected outbound, and B still answers (its sidecar relays inbound).
      let before = await total();
      expect(await inNs(NS_A, `curl -sS --max-time 10 http://${B4}:8080/`)).toMatch(/^pod-b:8080:/);
      expect(await total()).toBe(before);

      const sync = spawnIn('sync-a', NS_A, [
        process.execPath,
        MAIN,
        'intercept',
        'sync',
        '--config',
        peersCfg,
      ]);
      await waitFor('peers4 to list pod B', async () => (await set('peers4')).includes(B4));
      expect(await set('peers6')).toContain(B6);
      expect(await set('peers4')).not.toContain(B4_OTHER);
      // A directory peer goes through A's sidecar (and B's), another address of pod B does not.
      before = await total();
      expect(await inNs(NS_A, `curl -sS --max-time 10 http://${B4}:8080/`)).toBe(`pod-b:8080:::ffff:${B4}\n`);
      expect(await inNs(NS_A, `curl -sS --max-time 10 http://[${B6}]:8080/`)).toBe(`pod-b:8080:${B6}\n`);
      expect(await inNs(NS_A, `curl -sS --max-time 10 http://${B4_OTHER}:9090/`)).toMatch(/^pod-b:9090:/);
      expect(await total()).toBe(before + 2);

      // Pod B moves to another tenant: it leaves the outbound set and joins the inbound plain set.
      writeDirectory('team-b');
      await waitFor('peers4 without pod B', async () => !(await set('peers4')).includes(B4));
      expect(await set('plain4')).toContain(B4);
      expect(await set('plain6')).toContain(B6);
      before = await total();
      expect(await inNs(NS_A, `curl -sS --max-time 10 http://${B4}:8080/`)).toMatch(/^pod-b:8080:/);
      expect(await total()).toBe(before);

      sync.kill('SIGTERM');
      await waitFor('intercept sync to stop', () => Promise.resolve(sync.exitCode !== null));
      expect(sync.exitCode).toBe(0);
      expect(logs['sync-a']).toContain('redirect sets applied');
    } finally {
      writeDirectory('team-a');
      await inNs(NS_A, `${process.execPath} ${MAIN} intercept install --config ${join(work, 'a.json')}`);
    }
  }, 90_000);

  it('removes the table, and removing twice is fine', async () => {
    const cfg = join(work, 'a.json');
    await inNs(NS_A, `${process.execPath} ${MAIN} intercept remove --config ${cfg}`);
    await inNs(NS_A, `${process.execPath} ${MAIN} intercept remove --config ${cfg}`);
    expect((await inNs(NS_A, 'nft list tables')).trim()).toBe('');
    // Without interception pod A still reaches pod B (B intercepts inbound).
    expect(await inNs(NS_A, `curl -sS --max-time 10 http://${B4}:8080/`)).toMatch(/^pod-b:8080:/);
  }, 60_000);
});
