// Dual-stack pods in the two-VM lab: each VM is a "pod" with an IPv4 (10.77.0.N) and an IPv6
// (fd00:77::N) address, the compiled sidecar, its nftables interception and real RDMA on rxe0
// (dataPath auto: the native DataPump); the directory lists both addresses of each pod. Unmodified
// curl in pod a reaches pod b's HTTP server once at its IPv4 and once at its IPv6 address: both
// connections are upgraded to SMC-R, and each sidecar holds ONE link group for the other pod,
// whichever family the application used. VM-side script: test/vm/sidecar/dual-stack-node.sh.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { ensureBuilt, REPO } from '../../sidecar/src/testing/build.js';
import { describeResult, labReady, runLab } from './lab.js';

const addon = join(REPO, 'native/build/Release/smc_verbs.node');
const script = (role: string) => `bash test/vm/sidecar/dual-stack-node.sh ${role}`;
const NFT_MODULES = ['nf_tables', 'nf_conntrack', 'nf_nat', 'nft_chain_nat', 'nft_redir', 'nft_ct'];

function lineValue(output: string, key: string): string | undefined {
  const line = output.split('\n').find((l) => l.startsWith(`${key} `));
  return line?.slice(key.length + 1);
}

function metric(output: string, series: string): number {
  const v = lineValue(output, `METRIC ${series}`);
  return v === undefined ? 0 : Number(v);
}

interface ConnectionRow {
  dir: string;
  peer: string;
  mode: string;
  link: string;
}

/**
 * The rows of `smc connections` (CONNS lines): ID DIR LOCAL PEER MODE OUTCOME/REASON ... LINK AGE
 * STATE. OUTCOME/REASON may hold spaces, so LINK is counted from the end.
 */
function connectionRows(output: string): ConnectionRow[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('CONNS ') && !l.startsWith('CONNS ID ') && /^CONNS [0-9a-f]{6,}\s/.test(l))
    .map((l) => l.slice('CONNS '.length).trim().split(/\s+/))
    .map((f) => ({ dir: f[1] ?? '', peer: f[3] ?? '', mode: f[4] ?? '', link: f.at(-3) ?? '' }));
}

describe.skipIf(!labReady() || !existsSync(addon))(
  'dual-stack pods: IPv4 and IPv6 connections share a link group (VM lab)',
  () => {
    beforeAll(async () => {
      await ensureBuilt(['dist/sidecar/src/main.js'], ['sidecar/src', 'native', 'operator/src/api']);
    }, 300_000);

    it('upgrades curl to the IPv4 and to the IPv6 address of the same pod over one link group', async () => {
      const r = await runLab({
        name: 'sidecar-dual-stack',
        timeoutSec: 600,
        scripts: [script('server'), script('client')],
        extraModules: NFT_MODULES,
      });
      const msg = describeResult(r);
      const [server, client] = r.nodes;
      expect(server.exitCode, `${msg}\n${server.output}`).toBe(0);
      expect(client.exitCode, `${msg}\n${client.output}`).toBe(0);
      const out = client.output;
      const srv = server.output;
      for (const o of [out, srv])
        expect(o).toContain('METRIC smc_data_path_info{path="native",requested="auto"} 1');

      // The server application was reached at the address curl dialled, in each family.
      expect(lineValue(out, 'CURL_V4'), out).toBe('pod-b /v4 ::ffff:10.77.0.1');
      expect(lineValue(out, 'CURL_V6'), out).toBe('pod-b /v6 fd00:77::1');

      // Both upgraded (the IPv6 one no longer falls back as peer-not-in-directory), on one link group.
      expect(metric(out, 'smc_connections_total{outcome="upgraded",reason="none"}'), out).toBe(2);
      expect(
        metric(out, 'smc_connections_total{outcome="fallback",reason="peer-not-in-directory"}'),
        out,
      ).toBe(0);
      expect(metric(out, 'smc_link_groups'), out).toBe(1);
      // The server sidecar keyed the client's IPv4 and IPv6 source addresses to the same pod too.
      expect(metric(srv, 'smc_link_groups'), srv).toBe(1);

      // `smc connections`: each connection under the address the application used, one link.
      const clientRows = connectionRows(out).filter((c) => c.dir === 'out' && c.mode === 'SMCR');
      expect(clientRows.map((c) => c.peer).sort(), out).toEqual(['10.77.0.1:8080', '[fd00:77::1]:8080']);
      const links = new Set(clientRows.map((c) => c.link));
      expect(links.size, out).toBe(1);
      expect([...links][0], out).toMatch(/^lg[0-9a-f]+$/);
      const serverRows = connectionRows(srv).filter((c) => c.dir === 'in/smc' && c.mode === 'SMCR');
      expect(serverRows.map((c) => c.peer.replace(/:\d+$/, '')).sort(), srv).toEqual([
        '10.77.0.2',
        '[fd00:77::2]',
      ]);
      expect(new Set(serverRows.map((c) => c.link)).size, srv).toBe(1);
    });
  },
);
