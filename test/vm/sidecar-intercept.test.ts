// The whole sidecar in the two-VM lab: each VM is a "pod" with the compiled sidecar, its nftables
// interception (`intercept install`) and real RDMA on rxe0 (dataPath auto: the native DataPump).
// Unmodified curl, redis-cli and redis-benchmark in pod A reach pod B's servers; the kernel
// redirects them to the sidecar, which upgrades the connections to SMC-R. One lab run covers bulk
// transfers (sha256), 100 concurrent and many short connections, a fallback, and each pod's sidecar
// killed mid-transfer (both applications must see a reset, never an end of data). VM-side scripts: test/vm/sidecar/intercept-node.sh, app-server.mjs.
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

    it('carries unmodified programs over the native data pump: bulk sha256, 100 connections, short connections, a fallback; a killed sidecar resets both applications', async () => {
      const r = await runLab({
        name: 'sidecar-intercept',
        timeoutSec: 900,
        scripts: [script('server'), script('client')],
        extraModules: NFT_MODULES,
      });
      const msg = describeResult(r);
      const [server, client] = r.nodes;
      expect(server.exitCode, `${msg}\n${server.output}`).toBe(0);
      expect(client.exitCode, `${msg}\n${client.output}`).toBe(0);
      const out = client.output;
      const srv = server.output;
      // The pump is the data path on both sides (dataPath auto, the addon has DataPump).
      for (const o of [out, srv])
        expect(o).toContain('METRIC smc_data_path_info{path="native",requested="auto"} 1');
      expect(lineValue(out, 'CURL')).toBe('pod-b /hello 0');
      expect(lineValue(out, 'CURLPOST')).toMatch(/^2000000 [0-9a-f]{64}$/);
      expect(lineValue(out, 'REDIS_SET')).toBe('OK');
      expect(lineValue(out, 'REDIS_GET_LEN')).toBe('60000');
      expect(lineValue(out, 'REDIS_PING')).toBe('PONG');
      // Bulk, byte-exact both ways.
      const mib = Number(lineValue(out, 'BULK_MIB'));
      expect(mib).toBeGreaterThanOrEqual(8);
      const expected = lineValue(out, 'UPLOAD_EXPECT');
      expect(lineValue(out, 'UPLOAD_GOT'), out).toBe(expected);
      const sent = lineValue(srv, 'APP DOWNLOAD');
      expect(sent, srv).toBe(`${mib * 2 ** 20} ${lineValue(out, 'DOWNLOAD_GOT')}`);
      console.log(
        `bulk ${mib} MiB: probe(8 MiB) ${lineValue(out, 'PROBE')}, upload ${lineValue(out, 'UPLOAD_SECS')} s, download ${lineValue(out, 'DOWNLOAD_SECS')} s; short ${lineValue(out, 'SHORT_OK')}; bench ${lineValue(out, 'BENCH')}; kill ${lineValue(out, 'KILL_CURL')}`,
      );
      expect(lineValue(out, 'SHORT_OK')?.split(' ')[0]).toBe('60');
      // Sequential and 4-way parallel connections joined the first link group (CONFIRM RKEY for
      // each added RMB) instead of making their own; 100 concurrent ones fit in at most two.
      expect(lineValue(out, 'LINK_GROUPS_AFTER_SHORT'), out).toBe('1');
      expect(metric(out, 'smc_link_groups'), out).toBeGreaterThanOrEqual(1);
      expect(metric(out, 'smc_link_groups'), out).toBeLessThanOrEqual(2);
      expect(lineValue(out, 'BENCH'), out).toMatch(/requests per second/);
      expect(lineValue(out, 'FALLBACK_CURL')).toBe('pod-b /fallback 0');
      // curl 2 + redis-cli 3 + probe, upload, download + 60 short + >= 100 benchmark clients.
      const upgraded = metric(out, 'smc_connections_total{outcome="upgraded",reason="none"}');
      expect(upgraded, out).toBeGreaterThanOrEqual(168);
      expect(
        metric(out, 'smc_connections_total{outcome="fallback",reason="peer-not-in-directory"}'),
        out,
      ).toBe(1);
      // Bytes: everything but the fallback request went over RDMA; the pump's counters reach the metrics.
      const payloadUp = 2_000_000 + 8 * 2 ** 20 + mib * 2 ** 20;
      expect(metric(out, 'smc_bytes_total{path="rdma",direction="tx"}')).toBeGreaterThan(payloadUp);
      expect(metric(out, 'smc_bytes_total{path="rdma",direction="rx"}')).toBeGreaterThan(mib * 2 ** 20);
      // Pod b's metrics are read later, during the last (killed) download: its counters include that
      // request (< 1 KB more received) and whatever it sent of the endless response by then.
      const srvRx = metric(srv, 'smc_bytes_total{path="rdma",direction="rx"}');
      const cliTx = metric(out, 'smc_bytes_total{path="rdma",direction="tx"}');
      expect(srvRx - cliTx).toBeGreaterThanOrEqual(0);
      expect(srvRx - cliTx).toBeLessThan(1000);
      expect(metric(srv, 'smc_bytes_total{path="rdma",direction="tx"}')).toBeGreaterThanOrEqual(
        metric(out, 'smc_bytes_total{path="rdma",direction="rx"}'),
      );
      expect(metric(out, 'smc_bytes_total{path="tcp",direction="tx"}')).toBeLessThan(1000);
      // A sidecar that dies is never a clean end of stream, in its own pod or in the peer's: both
      // applications see a reset. curl exits 56 (recv failure: reset) where an EOF mid-stream
      // would be 18, and well before its 60 s limit (28 would be a hang); the server application
      // logs how its stream ended.
      const [ownRc, ownSecs] = (lineValue(out, 'OWN_KILL_CURL') ?? '').split(' ');
      expect(Number(ownRc), out).toBe(56);
      expect(Number(ownSecs)).toBeLessThan(30);
      expect(lineValue(srv, 'APP ENDLESS_END'), srv).toMatch(/^error (ECONNRESET|EPIPE)$/);
      expect(lineValue(out, 'AFTER_RESTART_CURL'), out).toBe('pod-b /hello 0');
      const [rc, secs] = (lineValue(out, 'KILL_CURL') ?? '').split(' ');
      expect(Number(rc), out).toBe(56);
      expect(Number(secs)).toBeLessThan(30);
      const appEnds = srv.split('\n').filter((l) => l.startsWith('AFTER_KILL_APP ENDLESS_END '));
      expect(appEnds, srv).toHaveLength(2);
      for (const l of appEnds) expect(l, srv).toMatch(/ error (ECONNRESET|EPIPE)$/);
      // Nothing was in flight towards the dead peer, so the pump saw no completion error: the peer
      // sidecar's TCP connection ending without its done-writing CDC reset the connection.
      expect(lineValue(out, 'AFTER_KILL smc_rdma_errors_total{kind="peer-gone"}')).toBe('1');
      for (const node of [server, client]) expect(lineValue(node.output, 'TABLES_AFTER_REMOVE')).toBe('[]');
    });
  },
);
