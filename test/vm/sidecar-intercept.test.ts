// The whole sidecar in the two-VM lab: each VM is a "pod" with the compiled sidecar, its nftables
// interception (`intercept install`) and real RDMA on rxe0 (JavaScript data path). Unmodified curl
// and redis-cli in pod A reach pod B's servers; the kernel redirects them to the sidecar, which
// upgrades the connections to SMC-R. VM-side script: test/vm/sidecar/intercept-node.sh.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { ensureBuilt, REPO } from '../../sidecar/src/testing/build.js';
import { describeResult, labReady, runLab } from './lab.js';

const addon = join(REPO, 'native/build/Release/smc_verbs.node');
const script = (role: string) => `bash test/vm/sidecar/intercept-node.sh ${role}`;
const NFT_MODULES = ['nf_tables', 'nf_conntrack', 'nf_nat', 'nft_chain_nat', 'nft_redir', 'nft_ct'];

function lineValue(output: string, key: string): string | undefined {
  const line = output.split('\n').find((l) => l.startsWith(`${key} `));
  return line?.slice(key.length + 1);
}

function metric(output: string, series: string): number {
  const v = lineValue(output, `METRIC ${series}`);
  return v === undefined ? 0 : Number(v);
}

describe.skipIf(!labReady() || !existsSync(addon))(
  'sidecar with nftables interception and SMC-R (VM lab)',
  () => {
    beforeAll(async () => {
      await ensureBuilt(['dist/sidecar/src/main.js'], ['sidecar/src', 'native', 'operator/src/api']);
    }, 300_000);

    it('upgrades curl and redis-cli connections between two pods to SMC-R', async () => {
      const r = await runLab({
        name: 'sidecar-intercept',
        timeoutSec: 300,
        scripts: [script('server'), script('client')],
        extraModules: NFT_MODULES,
      });
      const msg = describeResult(r);
      const [server, client] = r.nodes;
      expect(server.exitCode, `${msg}\n${server.output}`).toBe(0);
      expect(client.exitCode, `${msg}\n${client.output}`).toBe(0);
      const out = client.output;
      expect(lineValue(out, 'CURL')).toBe('pod-b /hello 0');
      expect(lineValue(out, 'CURLPOST')).toBe('pod-b /upload 2000000');
      expect(lineValue(out, 'REDIS_SET')).toBe('OK');
      expect(lineValue(out, 'REDIS_GET_LEN')).toBe('60000');
      expect(lineValue(out, 'REDIS_PING')).toBe('PONG');
      // Every connection the applications opened went over SMC-R (curl twice, redis-cli three times).
      expect(metric(out, 'smc_connections_total{outcome="upgraded",reason="none"}'), out).toBe(5);
      expect(metric(out, 'smc_bytes_total{path="rdma",direction="tx"}')).toBeGreaterThan(2_000_000);
      expect(metric(out, 'smc_bytes_total{path="tcp",direction="tx"}')).toBe(0);
      expect(metric(server.output, 'smc_bytes_total{path="rdma",direction="rx"}')).toBeGreaterThan(2_000_000);
      for (const node of [server, client]) expect(lineValue(node.output, 'TABLES_AFTER_REMOVE')).toBe('[]');
    });
  },
);
