// A host running the Linux kernel's SMC-R (no sidecar) reaches an application behind our sidecar
// over SMC-R, in the two-VM lab: node1's unmodified curl under the kernel's SMC (LD_PRELOAD
// smc-preload.so, the tenant's User EID set with smc-setup) connects to node0's app; node0's
// sidecar (policy.kernelPeers) sees the SMC option on the SYN (TCP_SAVE_SYN), the BPF sock_ops
// program echoes it on the SYN-ACK, and the sidecar answers the kernel's SMC-Rv2 CLC, brings up
// the link (CONFIRM LINK v2) and runs the native data path. Node scripts: test/vm/kernel-interop/.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

import { ensureBuilt, REPO } from '../../sidecar/src/testing/build.js';
import { describeResult, labReady, runLab } from './lab.js';

const here = dirname(fileURLToPath(import.meta.url));
const addon = join(REPO, 'native/build/Release/smc_verbs.node');
const NFT_MODULES = ['nf_tables', 'nf_conntrack', 'nf_nat', 'nft_chain_nat', 'nft_redir', 'nft_ct'];
const MIB8 = 8 * 1024 * 1024;

interface Tech {
  clnt_v2_succ: number;
  rx_bytes: number;
  tx_bytes: number;
}
interface Stats {
  stats: { smcr: Tech };
  fallback: { srv_cnt: number; clnt_cnt: number };
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
const json = <T>(output: string, key: string): T => JSON.parse(lineValue(output, key) ?? 'null') as T;
const metric = (output: string, series: string): number => Number(lineValue(output, `METRIC ${series}`) ?? 0);

describe.skipIf(!labReady() || !existsSync(addon) || smcoDir === '')(
  'kernel SMC-R client to an application behind the sidecar (VM lab)',
  () => {
    beforeAll(async () => {
      await ensureBuilt(['dist/sidecar/src/main.js'], ['sidecar/src', 'native', 'operator/src/api']);
    }, 300_000);

    it('upgrades the kernel client: SMCR in smc_diag, no kernel fallback, byte-exact both ways', async () => {
      const env = `export KSMC_DIR='${ksmcDir}' SMCO_DIR='${smcoDir}'\n`;
      const r = await runLab({
        name: 'kernel-interop',
        timeoutSec: 420,
        scripts: [
          `${env}exec bash "$LAB_REPO/test/vm/kernel-interop/node0.sh"\n`,
          `${env}exec bash "$LAB_REPO/test/vm/kernel-interop/node1.sh"\n`,
        ],
        extraModules: NFT_MODULES,
      });
      const msg = describeResult(r);
      const [server, client] = r.nodes;
      const ctx = `${msg}\n--- node0\n${server.output}\n--- node1\n${client.output}`;
      expect(server.exitCode, ctx).toBe(0);
      expect(client.exitCode, ctx).toBe(0);
      const out = client.output;
      const srv = server.output;

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

      // Our side: every connection upgraded (counted by the sidecar for kernel peers), RDMA bytes.
      expect(metric(srv, 'smc_connections_total{outcome="upgraded",reason="none"}'), ctx).toBe(12);
      expect(metric(srv, 'smc_bytes_total{path="rdma",direction="rx"}'), ctx).toBeGreaterThanOrEqual(MIB8);
      expect(metric(srv, 'smc_bytes_total{path="rdma",direction="tx"}'), ctx).toBeGreaterThanOrEqual(MIB8);
      expect(metric(srv, 'smc_bytes_total{path="tcp",direction="rx"}'), ctx).toBe(0);
    });
  },
);
