// The sidecar and the Linux kernel's SMC-R, both ways, in the two-VM lab. First, a host running
// the kernel's SMC-R (no sidecar) reaches an application behind our sidecar over SMC-R: node1's unmodified curl under the kernel's SMC (LD_PRELOAD
// smc-preload.so, the tenant's User EID set with smc-setup) connects to node0's app; node0's
// sidecar (policy.kernelPeers) sees the SMC option on the SYN (TCP_SAVE_SYN), the BPF sock_ops
// program echoes it on the SYN-ACK, and the sidecar answers the kernel's SMC-Rv2 CLC, brings up
// the link (CONFIRM LINK v2) and runs the native data path. Then the reverse: an application behind
// our sidecar reaches kernel SMC-R servers that are not in the directory; the sock_ops program puts
// the option on the sidecar's SYNs and the sidecar speaks CLC to the kernel when its SYN-ACK echoes
// it; a kernel that declines (another tenant's EID) leaves a clean TCP connection. Node scripts:
// test/vm/kernel-interop/.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

import { ensureBuilt, REPO } from '../../sidecar/src/testing/build.js';
import { describeResult, labReady, runLab } from './lab.js';

const here = dirname(fileURLToPath(import.meta.url));
const addon = join(REPO, 'native/build/Release/smc_verbs.node');
const NFT_MODULES = ['nf_tables', 'nf_conntrack', 'nf_nat', 'nft_chain_nat', 'nft_redir', 'nft_ct'];
const MIB8 = 8 * 1024 * 1024;
/** Transfers of test/vm/kernel-interop/sidecar-client.sh ending at our window's edge (its EDGE_N). */
const EDGE_N = 40;
/** SMC_CLC_DECL_PEERNOSMC: a client whose SYN had no SMC option (the lab's readiness probes). */
const PEERNOSMC = '0x03010000';

interface Tech {
  clnt_v2_succ: number;
  rx_bytes: number;
  tx_bytes: number;
}
interface Reason {
  code: string;
  count: number;
}
interface Stats {
  stats: { smcr: Tech & { srv_v2_succ: number } };
  fallback: { srv_cnt: number; clnt_cnt: number; server: Reason[]; client: Reason[] };
  linkgroups: { role: string; negotiated_eid?: string; smc_version?: number; conns?: number }[];
}

function build(script: string): string {
  try {
    return execFileSync(join(here, script), { encoding: 'utf8' }).trim();
  } catch (err) {
    console.warn(`[kernel-interop] ${script} failed: ${String(err)}`);
    return '';
  }
}
const ksmcDir = build('kernel-smc/build.sh');
const smcoDir = ksmcDir === '' ? '' : build('smc-option/build.sh');

function lineValue(output: string, key: string): string | undefined {
  const line = output.split('\n').find((l) => l.startsWith(`${key} `));
  return line?.slice(key.length + 1);
}
/** One lab run with a script per node (both get the tool directories), and both must exit 0. */
async function runPair(name: string, node0: string, node1: string) {
  const env = `export KSMC_DIR='${ksmcDir}' SMCO_DIR='${smcoDir}'\n`;
  const r = await runLab({
    name,
    timeoutSec: 420,
    scripts: [
      `${env}exec bash "$LAB_REPO/test/vm/kernel-interop/${node0}"\n`,
      `${env}exec bash "$LAB_REPO/test/vm/kernel-interop/${node1}"\n`,
    ],
    extraModules: NFT_MODULES,
  });
  const [server, client] = r.nodes;
  if (server === undefined || client === undefined) throw new Error('the lab ran fewer than two nodes');
  const ctx = `${describeResult(r)}\n--- node0\n${server.output}\n--- node1\n${client.output}`;
  expect(server.exitCode, ctx).toBe(0);
  expect(client.exitCode, ctx).toBe(0);
  return { srv: server.output, out: client.output, ctx, serverDir: server.outDir };
}

/**
 * The PUMP_ABORTS line of a sidecar script (kp_pump_aborts): SMC-R connections that ended on the
 * peer's CDC abort flag, and those our pump aborted because the application reset its socket.
 */
function pumpAborts(output: string): { peerAbort: number; appReset: number } {
  const byReason = new Map(
    (lineValue(output, 'PUMP_ABORTS') ?? '')
      .split(';')
      .filter((x) => x !== '')
      .map((x) => {
        const [reason = '', n = '0'] = x.split('=');
        return [reason, Number(n)] as const;
      }),
  );
  const n = (reason: string): number => byReason.get(reason) ?? 0;
  return { peerAbort: n('peer abort'), appReset: n('socket read') + n('socket write') + n('socket poll') };
}

const json = <T>(output: string, key: string): T => JSON.parse(lineValue(output, key) ?? 'null') as T;
const metric = (output: string, series: string): number => Number(lineValue(output, `METRIC ${series}`) ?? 0);

describe.skipIf(!labReady() || !existsSync(addon) || smcoDir === '')(
  'kernel SMC-R client to an application behind the sidecar (VM lab)',
  () => {
    beforeAll(async () => {
      await ensureBuilt(['dist/sidecar/src/main.js'], ['sidecar/src', 'native', 'operator/src/api']);
    }, 300_000);

    it('upgrades the kernel client: SMCR in smc_diag, no kernel fallback, byte-exact both ways', async () => {
      const { srv, out, ctx, serverDir } = await runPair(
        'kernel-interop',
        'sidecar-server.sh',
        'kernel-client.sh',
      );

      // Byte-exact both ways through the sidecar.
      const expectUp = lineValue(out, 'UPLOAD_EXPECT');
      expect(expectUp, ctx).toMatch(/^8388608 [0-9a-f]{64}$/);
      expect(lineValue(out, 'UPLOAD_GOT'), ctx).toBe(expectUp);
      const down = lineValue(out, 'DOWNLOAD_GOT');
      expect(down, ctx).toMatch(/^8388608 [0-9a-f]{64}$/);
      expect(lineValue(srv, 'APP DOWNLOAD'), ctx).toBe(down);
      expect(lineValue(out, 'SHORT_OK'), ctx).toBe('10');

      // The kernel's side: SMC-R v2 with our tenant's EID, its fallback counters unchanged, its
      // SMC-R byte counters covering the payloads, the live socket in mode SMCR.
      const before = json<Stats>(out, 'STATS_BEFORE');
      const after = json<Stats>(out, 'STATS_AFTER');
      const end = json<Stats>(out, 'STATS_END');
      expect(end.fallback, ctx).toEqual(before.fallback);
      expect(end.stats.smcr.clnt_v2_succ - before.stats.smcr.clnt_v2_succ, ctx).toBe(12);
      expect(after.stats.smcr.tx_bytes - before.stats.smcr.tx_bytes, ctx).toBeGreaterThanOrEqual(MIB8);
      expect(after.stats.smcr.rx_bytes - before.stats.smcr.rx_bytes, ctx).toBeGreaterThanOrEqual(MIB8);
      expect(lineValue(out, 'DIAG_LIVE'), ctx).toContain('"SMCR"');
      const ueid = lineValue(out, 'UEID') ?? '';
      expect(ueid, ctx).toMatch(/^SMCK8S-[A-Z2-7]{25}$/);
      const lg = end.linkgroups.filter((g) => g.role === 'CLNT');
      expect(lg.length, ctx).toBe(1);
      expect(lg[0]?.smc_version, ctx).toBe(2);
      expect(lg[0]?.negotiated_eid?.trim(), ctx).toBe(ueid);

      // Abort both ways. The kernel's curl closed an endless download after 1000 bytes with data
      // unread: the kernel sent the CDC abort flag, our pump reset the application's socket. The
      // application reset its socket at the first bytes of a 32 MiB upload: our pump sent the abort
      // flag, and the kernel's curl failed at once instead of hanging.
      expect(lineValue(out, 'KERNEL_ABORT_GOT'), ctx).toBe('1000');
      expect(lineValue(out, 'OUR_ABORT_RC'), ctx).toMatch(/^[1-9][0-9]*$/);
      expect(lineValue(out, 'OUR_ABORT_RC'), ctx).not.toBe('124');
      expect(lineValue(out, 'OUR_ABORT_ERR'), ctx).toMatch(/reset|Broken pipe|Send failure|Recv failure/i);
      expect(pumpAborts(srv), ctx).toEqual({ peerAbort: 1, appReset: 1 });
      // The RMBs of the two aborted connections were retired as the kernel retires its own: our
      // DELETE RKEY, the kernel's answer (which names no rkey), then deregistration. The kernel may
      // also delete the link right after the last abort (its link group then has no connection):
      // the group's end frees an RMB still waiting for its turn.
      expect(lineValue(srv, 'RMBS_BUSY_AT_END'), ctx).toBe('0');
      const serverLog = readFileSync(join(serverDir, 'sidecar.log'), 'utf8');
      const retired = serverLog.match(/RMB retired: the peer deleted its rkey/g)?.length ?? 0;
      const groupEndedByPeer = serverLog.includes('"msg":"peer deleted the link"') ? 1 : 0;
      expect(retired, ctx).toBeGreaterThanOrEqual(1);
      expect(retired + groupEndedByPeer, ctx).toBeGreaterThanOrEqual(2);
      expect(serverLog, ctx).not.toContain('DELETE RKEY unanswered');
      expect(serverLog, ctx).not.toMatch(/"llc":"delete-rkey".*unsolicited LLC response/);

      // Our side: every kernel connection upgraded (counted by the sidecar for kernel peers), the
      // 12 above and the 2 aborted ones; RDMA bytes.
      expect(metric(srv, 'smc_connections_total{outcome="upgraded",reason="none"}'), ctx).toBe(14);
      expect(metric(srv, 'smc_bytes_total{path="rdma",direction="rx"}'), ctx).toBeGreaterThanOrEqual(MIB8);
      expect(metric(srv, 'smc_bytes_total{path="rdma",direction="tx"}'), ctx).toBeGreaterThanOrEqual(MIB8);
      // Over TCP only the plain client's request below.
      expect(metric(srv, 'smc_bytes_total{path="tcp",direction="rx"}'), ctx).toBeLessThan(4096);

      // A plain client whose SYN carried the option (sock_ops on its cgroup) but which sent an HTTP
      // request where a Proposal belongs: relayed as it came, no Decline in its stream, counted as
      // peer-not-smc. Its request is the only TCP traffic of the sidecar.
      expect(json<{ syn_written: number }>(out, 'PLAIN_OPT_STATS').syn_written, ctx).toBeGreaterThanOrEqual(
        1,
      );
      expect(lineValue(out, 'PLAIN_OPT_GOT'), ctx).toMatch(/^pod-b \/plain-with-option/);
      expect(metric(srv, 'smc_connections_total{outcome="fallback",reason="peer-not-smc"}'), ctx).toBe(1);
      expect(metric(srv, 'smc_bytes_total{path="tcp",direction="rx"}'), ctx).toBeGreaterThan(0);
      expect(metric(srv, 'smc_bytes_total{path="tcp",direction="tx"}'), ctx).toBeLessThan(4096);
    });

    it('upgrades to kernel SMC-R servers: SMCR in their smc_diag, byte-exact; a kernel Decline leaves clean TCP', async () => {
      // A CPU hog beside the VMs for the whole run: CDCs and LLC answers come late, as under load.
      const hog = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
      let result: Awaited<ReturnType<typeof runPair>>;
      try {
        result = await runPair('kernel-interop-rev', 'kernel-server.sh', 'sidecar-client.sh');
      } finally {
        hog.kill('SIGKILL');
      }
      const { srv, out, ctx } = result;

      // Byte-exact both ways; the kernel server's own smc_diag, taken while our upload's connection
      // was open, shows it in mode SMCR.
      const [n, sha] = (lineValue(out, 'UPLOAD_EXPECT') ?? '').split(' ');
      expect(Number(n), ctx).toBe(MIB8);
      const up = json<{
        bytes: number;
        sha256: string;
        diag: { sockets: { mode: string; family: number }[] };
      }>(out, 'UPLOAD_REPLY');
      expect(up.bytes, ctx).toBe(MIB8);
      expect(up.sha256, ctx).toBe(sha);
      expect(
        up.diag.sockets.some((x) => x.family === 43 && x.mode === 'SMCR'),
        ctx,
      ).toBe(true);
      expect(lineValue(out, 'DOWNLOAD_GOT'), ctx).toBe(lineValue(srv, 'PAYLOAD'));
      expect(lineValue(out, 'SHORT_OK'), ctx).toBe('5');

      // Our application did not read for 6 s: the kernel's shutdown gave up waiting for our RMBE
      // and announced its end while write-blocked, then wrote the rest; all 4 MiB arrived.
      // (Before, that announcement was our end of file and the tail was lost.)
      expect(lineValue(out, 'SLOW_GOT'), ctx).toBe(lineValue(srv, 'PAYLOAD4'));

      // The kernel closing at our window's edge, 40 times with the host loaded: every answer whole,
      // then its end of file.
      expect(lineValue(out, 'EDGE_OK'), ctx).toBe(String(EDGE_N));
      expect(lineValue(out, 'EDGE_BAD'), ctx).toBe('none');

      // Abort both ways. The kernel's application closed with our data unread: the kernel sent
      // the CDC abort flag, our pump ended on it and reset our application's connection at once.
      // Our application closed with the kernel's data unread: our pump aborted on the reset and
      // the kernel's application got ECONNRESET.
      expect(lineValue(out, 'KERNEL_ABORT_RC'), ctx).not.toBe('0');
      expect(lineValue(out, 'KERNEL_ABORT_RC'), ctx).not.toBe('124');
      expect(lineValue(out, 'KERNEL_ABORT_ERR'), ctx).toMatch(/Connection reset by peer|Broken pipe/);
      expect(lineValue(out, 'OUR_ABORT_GOT'), ctx).toBe('1000');
      expect(lineValue(srv, 'ABORTED_SERVER_RC'), ctx).toMatch(/^[1-9][0-9]*$/);
      expect(lineValue(srv, 'ABORTED_SERVER_ERR'), ctx).toMatch(/Connection reset by peer|Broken pipe/);
      const aborts = pumpAborts(out);
      expect(aborts, ctx).toEqual({ peerAbort: 1, appReset: 1 });

      // The kernel's counters: 10 SMC-Rv2 server successes (and the 40 at the window's edge), bytes both ways; the only server
      // fallbacks of that phase are the lab's plain readiness probes (PEERNOSMC), none of ours.
      const before = json<Stats>(srv, 'STATS_BEFORE');
      const smc = json<Stats>(srv, 'STATS_SMC');
      const end = json<Stats>(srv, 'STATS_END');
      expect(smc.stats.smcr.srv_v2_succ - before.stats.smcr.srv_v2_succ, ctx).toBe(10 + EDGE_N);
      expect(smc.stats.smcr.rx_bytes - before.stats.smcr.rx_bytes, ctx).toBeGreaterThanOrEqual(MIB8);
      expect(smc.stats.smcr.tx_bytes - before.stats.smcr.tx_bytes, ctx).toBeGreaterThanOrEqual(MIB8);
      const moved = smc.fallback.server.filter(
        (x) => x.count > (before.fallback.server.find((b) => b.code === x.code)?.count ?? 0),
      );
      expect(
        moved.filter((x) => x.code !== PEERNOSMC),
        ctx,
      ).toEqual([]);
      const ueid = json<{ ueids: string[] }>(srv, 'SWITCHED').ueids;
      const lg = smc.linkgroups.filter((g) => g.role === 'SERV');
      expect(lg.length, ctx).toBe(1);
      expect(lg[0]?.smc_version, ctx).toBe(2);
      expect(
        ueid.map((u) => u.trim()),
        ctx,
      ).not.toContain(lg[0]?.negotiated_eid?.trim());
      expect(lg[0]?.negotiated_eid, ctx).toMatch(/^SMCK8S-/);

      // Our side: 10 upgraded connections and the 40 at the window's edge, on one link group, RDMA
      // bytes both ways.
      const m1 = (series: string): number => Number(lineValue(out, `METRIC1 ${series}`) ?? 0);
      expect(m1('smc_connections_total{outcome="upgraded",reason="none"}'), ctx).toBe(10 + EDGE_N);
      expect(m1('smc_bytes_total{path="rdma",direction="tx"}'), ctx).toBeGreaterThanOrEqual(MIB8);
      expect(m1('smc_bytes_total{path="rdma",direction="rx"}'), ctx).toBeGreaterThanOrEqual(MIB8);
      expect(m1('smc_link_groups'), ctx).toBe(1);

      // The kernel with another tenant's EID declines; the same 8 MiB arrive intact over TCP.
      const declined = json<{ bytes: number; sha256: string }>(out, 'DECLINED_REPLY');
      expect(declined.bytes, ctx).toBe(MIB8);
      expect(declined.sha256, ctx).toBe(sha);
      const m2 = (series: string): number => Number(lineValue(out, `METRIC2 ${series}`) ?? 0);
      expect(m2('smc_connections_total{outcome="fallback",reason="peer-declined"}'), ctx).toBe(1);
      expect(end.fallback.srv_cnt - smc.fallback.srv_cnt, ctx).toBeGreaterThanOrEqual(1);
      expect(end.stats.smcr.srv_v2_succ, ctx).toBe(smc.stats.smcr.srv_v2_succ);

      // A server that echoes the option without speaking SMC (a plain echo server under the
      // sock_ops program) echoed our Proposal: the application's 1 MiB came back intact over a new
      // plain connection, no Decline of ours in between; that connection and the next one left
      // with no option on their SYNs (the sidecar entered the echo server in the program's
      // smco_skip map).
      const echoSha = lineValue(out, 'ECHO_EXPECT');
      expect(echoSha, ctx).toMatch(/^[0-9a-f]{64}$/);
      expect(lineValue(out, 'ECHO_GOT1'), ctx).toBe(echoSha);
      expect(lineValue(out, 'ECHO_GOT2'), ctx).toBe(echoSha);
      const me = (series: string): number => Number(lineValue(out, `METRIC_ECHO ${series}`) ?? 0);
      expect(me('smc_connections_total{outcome="fallback",reason="peer-not-smc"}'), ctx).toBe(1);
      expect(me('smc_connections_total{outcome="fallback",reason="peer-not-in-directory"}'), ctx).toBe(1);
      expect(json<{ skipped: number }>(out, 'BPF_STATS_ECHO').skipped, ctx).toBe(2);
      // node0's program saw one SYN with the option on the echo server (the first connection).
      expect(json<{ peer_syn_opt: number }>(srv, 'ECHO_PEER_STATS').peer_syn_opt, ctx).toBe(1);
    });
  },
);
