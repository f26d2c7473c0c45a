// Kernel-to-kernel SMC-R between the two lab VMs, with the tools in test/vm/kernel-smc/:
// smc-setup sets the User EID and pnetids, smc-preload.so puts unmodified socat on SMC sockets,
// smc-stats reads the kernel's counters and smc_diag. One lab run, three transfers of the same
// 4 MiB random payload from node0 to node1, changing only node0's UEID:
//   nueid     node0 has no UEID       -> TCP fallback, client reason 0x03030000 (NOSMCDEV)
//   mismatch  node0 UEID KSMC-OTHER   -> TCP fallback, the server declines (no common EID)
//   smc       node0 UEID KSMC-LAB     -> SMC-R over rxe0, fallback counters unchanged
// Every transfer must arrive byte-exact (sha256 on both sides). A second lab run with a second
// RoCE device per node (LAB_LINKS=2) checks that the kernel adds a second link to the link group
// (SMC-Rv2 ADD LINK), the setting link redundancy needs. See docs/kernel-smc.md.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { describeResult, labReady, removeRunDir, runLab } from './lab.js';

const here = dirname(fileURLToPath(import.meta.url));
const PAYLOAD = 4 * 1024 * 1024;
const NOSMCDEV = '0x03030000';
const PEERDECL = '0x05000000';

interface Tech {
  clnt_v1_succ: number;
  clnt_v2_succ: number;
  srv_v1_succ: number;
  srv_v2_succ: number;
  rx_bytes: number;
  tx_bytes: number;
}
interface Reason {
  code: string;
  name: string;
  count: number;
}
interface Fallback {
  srv_cnt: number;
  clnt_cnt: number;
  server: Reason[];
  client: Reason[];
}
interface Sock {
  family: number;
  state: string;
  mode: 'SMCR' | 'TCP' | 'SMCD' | '?';
  local: string;
  peer: string;
  fallback_reason?: string;
  fallback_name?: string;
  peer_diagnosis?: string;
  peer_diagnosis_name?: string;
  link?: { ibdev: string; ibport: number; gid: string; peer_gid: string };
}
interface Stats {
  stats: { smcr: Tech; smcd: Tech };
  fallback: Fallback;
  sockets: Sock[];
  linkgroups: { role: string; pnetid: string; negotiated_eid?: string; smc_version?: number }[];
  links: { ibdev: string; ibport: number; netdev: string }[];
}
interface Setup {
  sys: { smcr_v2: number };
  ueids: string[];
  pnetids: { pnetid: string; netdev: string; ibdev: string; ibport: number }[];
  smcr_devices: { ibdev: string; port1?: { pnetid: string; active: number } }[];
}
interface Reply {
  seq: number;
  peer_port: number;
  bytes: number;
  sha256: string;
  diag: { sockets: Sock[] };
}

const readJson = <T>(dir: string, file: string): T => JSON.parse(readFileSync(join(dir, file), 'utf8')) as T;

const reasonCount = (fb: Fallback, side: 'server' | 'client', code: string): number =>
  fb[side].find((r) => r.code === code)?.count ?? 0;

/** The server's socket of the connection whose client port is `port`. */
const serverSocket = (reply: Reply): Sock | undefined =>
  reply.diag.sockets.find((s) => s.peer.endsWith(`:${String(reply.peer_port)}`) && s.state !== 'LISTEN');

/** Builds the tools on the host (gcc); '' if that fails, and the test is skipped. */
function buildTools(): string {
  try {
    return execFileSync(join(here, 'kernel-smc/build.sh'), { encoding: 'utf8' }).trim();
  } catch (err) {
    console.warn(`[kernel-smc] build.sh failed: ${String(err)}`);
    return '';
  }
}
const ksmcDir = buildTools();

describe.skipIf(!labReady() || ksmcDir === '')('kernel SMC-R between the two lab VMs', () => {
  it('falls back to TCP without a common UEID, uses SMC-R with one, and moves data byte-exact', async () => {
    const script = (file: string): string =>
      `export KSMC_DIR='${ksmcDir}'\n. "$LAB_REPO/test/vm/kernel-smc/${file}"\n`;
    const r = await runLab({
      name: 'kernel-smc',
      timeoutSec: 300,
      scripts: [script('lab-test-client.sh'), script('lab-test-server.sh')],
    });
    const msg = describeResult(r);
    const [c, s] = r.nodes;
    expect(c.exitCode, msg).toBe(0);
    expect(s.exitCode, msg).toBe(0);

    // Set-up as the kernel reports it: SMC-Rv2 capable, UEID and pnetids in place on both nodes.
    const srvSetup = readJson<Setup>(s.outDir, 'setup.json');
    const cliSetup = readJson<Setup>(c.outDir, 'setup-smc.json');
    for (const setup of [srvSetup, cliSetup]) {
      expect(setup.sys.smcr_v2, msg).toBe(1);
      expect(setup.ueids, msg).toEqual(['KSMC-LAB']);
      expect(setup.pnetids, msg).toContainEqual({
        pnetid: 'KSMCLAB',
        netdev: 'eth0',
        ibdev: 'n/a',
        ibport: 255,
      });
      expect(setup.pnetids, msg).toContainEqual({
        pnetid: 'KSMCLAB',
        netdev: 'n/a',
        ibdev: 'rxe0',
        ibport: 1,
      });
      const dev = setup.smcr_devices.find((d) => d.ibdev === 'rxe0');
      expect(dev?.port1?.pnetid, msg).toBe('KSMCLAB');
    }
    expect(readJson<Setup>(c.outDir, 'setup-nueid.json').ueids).toEqual([]);
    expect(readJson<Setup>(c.outDir, 'setup-mismatch.json').ueids).toEqual(['KSMC-OTHER']);

    const sha = readFileSync(join(c.outDir, 'payload.sha256'), 'utf8').trim();
    expect(sha).toMatch(/^[0-9a-f]{64}$/);
    const phases = ['start', 'nueid', 'mismatch', 'smc'] as const;
    const st = Object.fromEntries(
      phases.map((p) => [p, readJson<Stats>(c.outDir, `stats-${p}.json`)]),
    ) as Record<(typeof phases)[number], Stats>;
    const reply = (p: string): Reply => readJson<Reply>(c.outDir, `reply-${p}.json`);
    const codes: string[] = [];

    // nueid: the client has no EID to offer, so it declines itself (no SMC device for v2).
    {
      const rep = reply('nueid');
      expect(rep.bytes).toBe(PAYLOAD);
      expect(rep.sha256).toBe(sha);
      const [a, b] = [st.start, st.nueid];
      expect(b.fallback.clnt_cnt - a.fallback.clnt_cnt, msg).toBe(1);
      expect(reasonCount(b.fallback, 'client', NOSMCDEV) - reasonCount(a.fallback, 'client', NOSMCDEV)).toBe(
        1,
      );
      expect(b.stats.smcr.clnt_v2_succ).toBe(a.stats.smcr.clnt_v2_succ);
      const sock = serverSocket(rep);
      expect(sock?.mode, JSON.stringify(rep.diag)).toBe('TCP');
      codes.push(
        `nueid: client ${NOSMCDEV}, server socket ${String(sock?.fallback_reason)} (${String(sock?.fallback_name)}) peer_diagnosis ${String(sock?.peer_diagnosis)}`,
      );
    }

    // mismatch: the client proposes SMC-Rv2 with KSMC-OTHER; the server has no such EID and declines.
    {
      const rep = reply('mismatch');
      expect(rep.bytes).toBe(PAYLOAD);
      expect(rep.sha256).toBe(sha);
      const [a, b] = [st.nueid, st.mismatch];
      expect(b.fallback.clnt_cnt - a.fallback.clnt_cnt, msg).toBe(1);
      expect(b.stats.smcr.clnt_v2_succ).toBe(a.stats.smcr.clnt_v2_succ);
      const moved = b.fallback.client.filter((x) => x.count > reasonCount(a.fallback, 'client', x.code));
      expect(moved.length, JSON.stringify(b.fallback)).toBe(1);
      const sock = serverSocket(rep);
      expect(sock?.mode, JSON.stringify(rep.diag)).toBe('TCP');
      codes.push(
        `mismatch: client ${String(moved[0]?.code)} (${String(moved[0]?.name)}), server socket ${String(sock?.fallback_reason)} (${String(sock?.fallback_name)})`,
      );
    }

    // smc: SMC-R on rxe0; no fallback counter moves; the SMC-R byte counters cover the payload.
    {
      const rep = reply('smc');
      expect(rep.bytes).toBe(PAYLOAD);
      expect(rep.sha256).toBe(sha);
      const [a, b] = [st.mismatch, st.smc];
      expect(b.fallback, msg).toEqual(a.fallback);
      expect(b.stats.smcr.clnt_v2_succ - a.stats.smcr.clnt_v2_succ).toBe(1);
      expect(b.stats.smcr.tx_bytes - a.stats.smcr.tx_bytes).toBeGreaterThanOrEqual(PAYLOAD);
      const sock = serverSocket(rep);
      expect(sock?.mode, JSON.stringify(rep.diag)).toBe('SMCR');
      expect(sock?.fallback_reason).toBe('0x00000000');
      expect(sock?.link?.ibdev).toBe('rxe0');
      expect(sock?.link?.ibport).toBe(1);
      expect(
        b.linkgroups.some((g) => g.role === 'CLNT' && g.negotiated_eid === 'KSMC-LAB' && g.smc_version === 2),
      ).toBe(true);
      expect(b.links.some((l) => l.ibdev === 'rxe0' && l.netdev === 'eth0')).toBe(true);
    }

    // The client's own socket, seen by smc_diag while the ping-pong connection was open.
    const cdiag = readJson<{ sockets: Sock[] }>(c.outDir, 'client-diag.json');
    const live = cdiag.sockets.find((x) => x.peer === '10.77.0.2:7001');
    expect(live?.mode, JSON.stringify(cdiag)).toBe('SMCR');
    expect(live?.link?.ibdev).toBe('rxe0');
    expect(live?.link?.peer_gid).toMatch(/ffff:0a4d:0002$/);
    const rtt = readJson<{ p50_us: number; p99_us: number }>(c.outDir, 'rtt.json');
    expect(rtt.p50_us).toBeGreaterThan(0);
    const end = readJson<Stats>(c.outDir, 'stats-end.json');
    expect(end.fallback).toEqual(st.smc.fallback);

    // Server totals: exactly the two fallback transfers declined; the SMC-R ones received.
    const before = readJson<Stats>(s.outDir, 'stats-before.json');
    const after = readJson<Stats>(s.outDir, 'stats-after.json');
    expect(after.fallback.srv_cnt - before.fallback.srv_cnt, JSON.stringify(after.fallback)).toBe(2);
    expect(
      reasonCount(after.fallback, 'server', PEERDECL) - reasonCount(before.fallback, 'server', PEERDECL),
    ).toBe(1);
    expect(after.stats.smcr.srv_v2_succ - before.stats.smcr.srv_v2_succ).toBe(3); // smc transfer, rtt, quit
    expect(after.stats.smcr.rx_bytes - before.stats.smcr.rx_bytes).toBeGreaterThanOrEqual(PAYLOAD);

    console.log(
      `[kernel-smc] wall ${r.wallSec.toFixed(1)} s; decline codes: ${codes.join('; ')}; ` +
        `server fallback reasons ${JSON.stringify(after.fallback.server)}; ` +
        `SMC-R ping-pong p50 ${String(rtt.p50_us)} us p99 ${String(rtt.p99_us)} us`,
    );
    removeRunDir(r);
  });

  it('with a second RoCE device on each node (LAB_LINKS=2), builds a link group of two links', async () => {
    const script = `export KSMC_DIR='${ksmcDir}'\n. "$LAB_REPO/test/vm/kernel-smc/two-links.sh"\n`;
    const r = await runLab({
      name: 'kernel-smc-two-links',
      timeoutSec: 240,
      links: 2,
      scripts: [script, script],
    });
    const msg = describeResult(r);
    for (const [node, role, gid, peerGid] of [
      [r.nodes[0], 'SERV', '0a4d:000b', '0a4d:000c'],
      [r.nodes[1], 'CLNT', '0a4d:000c', '0a4d:000b'],
    ] as const) {
      expect(node.exitCode, `${msg}\n${node.output}`).toBe(0);
      const line = node.output.split('\n').find((l) => l.startsWith('LINKS '));
      const seen = JSON.parse(line?.slice('LINKS '.length) ?? '{}') as {
        linkgroups?: { role: string; type: number; smc_version: number }[];
        links?: { ibdev: string; netdev: string; gid: string; peer_gid: string; state: number }[];
      };
      // One SMC-Rv2 link group, symmetric (SMC_LGR_SYMMETRIC = 2): a link on each device.
      expect(seen.linkgroups, node.output).toMatchObject([{ role, type: 2, smc_version: 2 }]);
      expect(seen.links?.map((l) => `${l.ibdev}/${l.netdev}`).sort()).toEqual(['rxe0/eth0', 'rxe1/eth1']);
      const second = seen.links?.find((l) => l.ibdev === 'rxe1');
      expect(second?.gid.endsWith(gid)).toBe(true);
      expect(second?.peer_gid.endsWith(peerGid)).toBe(true);
    }
    console.log(
      `[kernel-smc] two links in ${r.wallSec.toFixed(1)} s: ${
        r.nodes[1].output
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .pop() ?? ''
      }`,
    );
    removeRunDir(r);
  });
});
