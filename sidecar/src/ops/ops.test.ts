import type { Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../log.js';
import { HealthState } from './health.js';
import { startHealthServer, startMetricsServer } from './http.js';
import { METRIC_NAMES, SidecarMetrics } from './metrics.js';
import { NO_LINK_GROUPS } from '../smc/link-group-manager.js';

function portOf(s: Server): number {
  const a = s.address();
  return a !== null && typeof a !== 'string' ? a.port : 0;
}

describe('ops endpoints', () => {
  const servers: Server[] = [];
  afterEach(() => Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r)))));

  it('exposes the fixed metric names', async () => {
    const m = new SidecarMetrics(() => ({
      ...NO_LINK_GROUPS,
      linkGroups: 2,
      links: 3,
      registeredBytes: 5 * 65536,
      rmbsInUse: 1,
      rmbsPooled: 1,
      rmbsRetiring: 1,
    }));
    m.connection('upgraded', 'none');
    m.connection('fallback', 'peer-not-in-directory');
    m.byteCounter('rdma')('tx', 10);
    m.rdmaError('wc-error');
    m.handshakeSeconds(0.002);
    const s = await startMetricsServer(m, 0, silentLogger(), '127.0.0.1');
    servers.push(s);
    const res = await fetch(`http://127.0.0.1:${portOf(s)}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const name of Object.values(METRIC_NAMES)) expect(text).toContain(`# TYPE ${name} `);
    expect(text).toContain('smc_connections_total{outcome="upgraded",reason="none"} 1');
    expect(text).toContain('smc_bytes_total{path="rdma",direction="tx"} 10');
    expect(text).toContain('smc_bytes_total{path="tcp",direction="rx"} 0');
    expect(text).toContain('smc_link_groups 2');
    expect(text).toContain('smc_links 3');
    expect(text).toContain(`smc_registered_memory_bytes ${5 * 65536}`);
    expect(text).toContain('smc_rmbs{state="in-use"} 1');
    expect(text).toContain('smc_rmbs{state="pooled"} 1');
    expect(text).toContain('smc_rmbs{state="retiring"} 1');
    expect(text).toContain('smc_rdma_errors_total{kind="wc-error"} 1');
    expect(text).toContain('smc_handshake_duration_seconds_count 1');
    expect((await fetch(`http://127.0.0.1:${portOf(s)}/other`)).status).toBe(404);
  });

  it('counts the application connections the sidecar reset: every decline, and resets after the upgrade', async () => {
    const m = new SidecarMetrics(() => ({ ...NO_LINK_GROUPS }));
    m.connection('fallback', 'handshake-timeout');
    m.connection('declined', 'limit-reached');
    m.appReset('peer-gone');
    m.appReset('peer-gone');
    const text = await m.render();
    expect(text).toContain('smc_app_resets_total{reason="limit-reached"} 1');
    expect(text).toContain('smc_app_resets_total{reason="peer-gone"} 2');
    // A fallback carries the connection: no reset. Every cause has a series from the start.
    expect(text).toContain('smc_app_resets_total{reason="handshake-timeout"} 0');
    expect(text).toContain('smc_app_resets_total{reason="cdc-protocol"} 0');
  });

  it('answers liveness always and readiness once every check is ready', async () => {
    const h = new HealthState();
    h.register('directory');
    const s = await startHealthServer(h, 0, '127.0.0.1');
    servers.push(s);
    const base = `http://127.0.0.1:${portOf(s)}`;
    expect((await fetch(`${base}/healthz/live`)).status).toBe(200);
    const notReady = await fetch(`${base}/healthz/ready`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ ready: false, checks: { directory: false } });
    h.set('directory', true);
    expect((await fetch(`${base}/healthz/ready`)).status).toBe(200);
    h.drain();
    expect((await fetch(`${base}/healthz/ready`)).status).toBe(503);
  });
});
