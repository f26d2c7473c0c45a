// The real Prometheus binary (Debian's package) on this host:
//  1. the wrapper: start, scrape a prom-client endpoint, query, query_range, targets, errors;
//  2. the chart's ServiceMonitor/PodMonitor as generated scrape jobs, with discovery served by
//     kube-sd.ts from fake API objects whose addresses point at local prom-client servers that
//     export the project's own sidecar, operator and node agent metrics: the series carry the
//     labels the dashboard filters on, and every panel of the shipped dashboard has data.
// Needs the prometheus binary (apt-get install prometheus) and helm (built by
// test/apiserver/tools/build-binaries.sh when missing).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Endpoints, V1Pod, V1Service } from '@kubernetes/client-node';
import { Gauge, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROLLERS, OperatorMetrics } from '../../../operator/src/metrics.js';
import { createNodeAgentMetrics } from '../../../sidecar/src/node-agent/agent.js';
import { SidecarMetrics } from '../../../sidecar/src/ops/metrics.js';
import { NO_LINK_GROUPS } from '../../../sidecar/src/smc/link-group-manager.js';
import { FallbackReason } from '../../../sidecar/src/policy/reasons.js';
import { monitorsOf, renderChart } from './chart.js';
import { checkDashboard, failedPanels, formatCheck } from './dashboard.js';
import { serveKubeSd, type KubeLister, type KubeSd } from './kube-sd.js';
import { prometheusConfigText, staticConfigText } from './prometheus-config.js';
import {
  PrometheusApiError,
  PrometheusStartError,
  prometheusAvailable,
  prometheusBinary,
  startPrometheus,
  type Prometheus,
} from './prometheus.js';
import { writeCheckHtml } from './render.js';

const haveProm = prometheusAvailable();
const skipNote = haveProm ? '' : ` (SKIPPED: ${prometheusBinary()} is missing; apt-get install prometheus)`;

/** Serves a prom-client registry on 127.0.0.1 at a free port. */
async function serveRegistry(registry: Registry): Promise<{ port: number; server: Server }> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (e: unknown) => res.writeHead(500).end(String(e)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

const closeServer = (s: Server): Promise<void> =>
  new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });

function promtool(configFile: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('promtool', ['check', 'config', configFile], (err, stdout, stderr) => {
      resolve({ code: err ? 1 : 0, output: stdout + stderr });
    });
  });
}

describe.skipIf(!haveProm)(`Prometheus wrapper${skipNote}`, () => {
  let prom: Prometheus;
  let target: { port: number; server: Server };
  const registry = new Registry();
  const gauge = new Gauge({
    name: 'smc_test_value',
    help: 'test',
    labelNames: ['kind'],
    registers: [registry],
  });

  beforeAll(async () => {
    gauge.set({ kind: 'a' }, 42);
    target = await serveRegistry(registry);
    prom = await startPrometheus({
      config: staticConfigText(
        [{ job: 'static', targets: [`127.0.0.1:${target.port}`], labels: { namespace: 'demo' } }],
        '1s',
      ),
    });
  }, 120_000);

  afterAll(async () => {
    await prom?.stop();
    if (target !== undefined) await closeServer(target.server);
  });

  it('scrapes a prom-client endpoint and answers instant and range queries', async () => {
    const series = await prom.waitForSeries('smc_test_value', 30_000);
    expect(series).toHaveLength(1);
    expect(series[0]?.metric).toMatchObject({
      __name__: 'smc_test_value',
      job: 'static',
      kind: 'a',
      namespace: 'demo',
    });
    expect(series[0]?.value[1]).toBe('42');

    const scalar = await prom.query('scalar(smc_test_value) * 2');
    expect(scalar).toMatchObject({ resultType: 'scalar' });
    if (scalar.resultType === 'scalar') expect(scalar.result[1]).toBe('84');

    const end = new Date();
    const range = await prom.queryRange('smc_test_value', new Date(end.getTime() - 30_000), end, 1);
    expect(range[0]?.values.length).toBeGreaterThan(0);

    const targets = await prom.targets();
    expect(targets.active.map((t) => [t.scrapePool, t.health])).toEqual([['static', 'up']]);
  });

  it('reports bad PromQL as a PrometheusApiError with the error type', async () => {
    const err = await prom.query('sum(').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrometheusApiError);
    expect((err as PrometheusApiError).errorType).toBe('bad_data');
    expect((err as PrometheusApiError).status).toBe(400);
  });

  it('fails to start with the reason from the log on a bad configuration', async () => {
    const err = await startPrometheus({
      config: 'scrape_configs: [{job_name: x, nonsense: 1}]\n',
      readyTimeoutMs: 20_000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrometheusStartError);
    expect((err as PrometheusStartError).logTail).toMatch(/nonsense/);
  });

  it('stop() removes the temporary directory', async () => {
    const p = await startPrometheus({ config: staticConfigText([]) });
    expect(existsSync(p.dir)).toBe(true);
    await p.stop();
    expect(existsSync(p.dir)).toBe(false);
  });
});

interface Rendered {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
}

describe.skipIf(!haveProm)(
  `the chart's monitors scraped through emulated Kubernetes discovery${skipNote}`,
  () => {
    const NS = 'smc-system';
    let prom: Prometheus;
    let sd: KubeSd;
    let servers: Server[] = [];
    let workDir: string;
    let configText: string;
    let driver: NodeJS.Timeout | undefined;

    const sidecar = new SidecarMetrics(() => ({ ...NO_LINK_GROUPS, linkGroups: 1, links: 2 }));
    const operator = new OperatorMetrics({ defaultMetrics: false });
    const nodeAgent = createNodeAgentMetrics();

    /** Traffic for every panel: upgrades, fallbacks, declines, handshakes, bytes, errors, reconciles. */
    function drive(): void {
      sidecar.connection('upgraded', 'none');
      sidecar.connection('fallback', FallbackReason.PeerNotInDirectory);
      sidecar.connection('declined', FallbackReason.LimitReached);
      sidecar.handshakeSeconds(0.002 + Math.random() * 0.01);
      sidecar.byteCounter('rdma')('tx', 65_536);
      sidecar.byteCounter('rdma')('rx', 32_768);
      sidecar.byteCounter('tcp')('tx', 1_024);
      sidecar.rdmaError('link-setup');
      for (const c of CONTROLLERS) {
        operator.reconcileDuration.labels(c).observe(0.001 + Math.random() * 0.02);
        operator.reconciles.labels(c).inc();
        operator.reconcileErrors.labels(c).inc();
        operator.queueDepth.labels(c).set(Math.floor(Math.random() * 3));
      }
      operator.watchedObjects.labels('Pod').set(3);
      operator.webhookDuration.labels('allowed').observe(0.003);
      nodeAgent.scans.inc({ result: 'ok' });
      nodeAgent.devices.set(1);
      nodeAgent.ports.set({ state: 'Active' }, 1);
      nodeAgent.lastSuccess.set(Date.now() / 1000);
      sidecar.dataPath('native', 'auto');
    }

    beforeAll(async () => {
      const objects = await renderChart({ namespace: NS });
      const monitors = monitorsOf(objects);
      const rendered = objects as Rendered[];
      const service = (name: string): V1Service => {
        const s = rendered.find((o) => o.kind === 'Service' && o.metadata.name === name);
        if (s === undefined) throw new Error(`chart renders no Service ${name}`);
        return { metadata: { ...s.metadata, namespace: NS }, spec: { type: 'ClusterIP' } };
      };
      const [side, op, na, unrelated] = await Promise.all([
        serveRegistry(sidecar.registry),
        serveRegistry(operator.registry),
        serveRegistry(nodeAgent.registry),
        serveRegistry(new Registry()),
      ]);
      servers = [side.server, op.server, na.server, unrelated.server];

      const running = {
        phase: 'Running',
        podIP: '127.0.0.1',
        conditions: [{ type: 'Ready', status: 'True' }],
      };
      const pods: V1Pod[] = [
        {
          // As the webhook labels an injected pod (the PodMonitor copies tenant and policy).
          metadata: {
            name: 'web-1',
            namespace: 'demo',
            labels: { app: 'web', 'smc.dev/tenant': 'blue', 'smc.dev/policy': 'blue-web' },
          },
          spec: {
            containers: [
              { name: 'app', image: 'app', ports: [{ name: 'http', containerPort: unrelated.port }] },
              {
                name: 'smc-sidecar',
                image: 'smc',
                ports: [{ name: 'smc-metrics', containerPort: side.port }],
              },
            ],
          },
          status: running,
        },
        {
          metadata: { name: 'done-1', namespace: 'demo' },
          spec: {
            containers: [
              {
                name: 'smc-sidecar',
                image: 'smc',
                ports: [{ name: 'smc-metrics', containerPort: side.port }],
              },
            ],
          },
          status: { ...running, phase: 'Succeeded' },
        },
        {
          metadata: { name: 'smc-operator-0', namespace: NS },
          spec: {
            containers: [
              { name: 'operator', image: 'smc', ports: [{ name: 'metrics', containerPort: op.port }] },
            ],
          },
          status: running,
        },
        {
          metadata: { name: 'smc-operator-node-agent-x', namespace: NS },
          spec: {
            nodeName: 'node-1',
            containers: [
              { name: 'node-agent', image: 'smc', ports: [{ name: 'metrics', containerPort: na.port }] },
            ],
          },
          status: running,
        },
      ];
      const endpointsFor = (svc: V1Service, pod: string, port: number): V1Endpoints => ({
        metadata: { name: svc.metadata?.name ?? '', namespace: NS },
        subsets: [
          {
            addresses: [{ ip: '127.0.0.1', targetRef: { kind: 'Pod', name: pod, namespace: NS } }],
            ports: [{ name: 'metrics', port, protocol: 'TCP' }],
          },
        ],
      });
      const opSvc = service('smc-operator-metrics');
      const naSvc = service('smc-operator-node-agent-metrics');
      const webhookSvc = service('smc-operator-webhook');
      const services = [opSvc, naSvc, webhookSvc];
      const endpoints = [
        endpointsFor(opSvc, 'smc-operator-0', op.port),
        endpointsFor(naSvc, 'smc-operator-node-agent-x', na.port),
        // Same pod, port not named metrics: the ServiceMonitor must not select it.
        {
          ...endpointsFor(webhookSvc, 'smc-operator-0', unrelated.port),
          subsets: [{ addresses: [{ ip: '127.0.0.1' }], ports: [{ name: 'webhook', port: unrelated.port }] }],
        },
      ];
      const inNs = <T extends { metadata?: { namespace?: string } }>(items: T[], ns?: string): T[] =>
        items.filter((i) => ns === undefined || i.metadata?.namespace === ns);
      const lister: KubeLister = {
        pods: async (ns) => inNs(pods, ns),
        services: async (ns) => inNs(services, ns),
        endpoints: async (ns) => inNs(endpoints, ns),
      };
      sd = await serveKubeSd(lister);
      configText = prometheusConfigText(monitors, {
        discovery: { kind: 'http', baseUrl: sd.url },
        scrapeInterval: '1s',
      });
      workDir = await mkdtemp(join(tmpdir(), 'smc-monitoring-test-'));
      drive();
      driver = setInterval(drive, 200);
      prom = await startPrometheus({ config: configText });
    }, 900_000);

    afterAll(async () => {
      if (driver !== undefined) clearInterval(driver);
      await prom?.stop();
      await sd?.close();
      await Promise.all(servers.map(closeServer));
      // SMC_KEEP_DASHBOARD=1 keeps the rendered page (its path is printed) for a look.
      if (workDir !== undefined && process.env['SMC_KEEP_DASHBOARD'] !== '1')
        await rm(workDir, { recursive: true, force: true });
    });

    it('the generated prometheus.yml passes promtool', async () => {
      const file = join(workDir, 'prometheus.yml');
      await writeFile(file, configText);
      const r = await promtool(file);
      expect(r.code, r.output).toBe(0);
    });

    it('scrapes exactly the sidecar port of running pods, the operator and the node agent, with the Prometheus Operator labels', async () => {
      const sidecarSeries = await prom.waitForSeries('smc_connections_total', 60_000);
      expect(sidecarSeries[0]?.metric).toMatchObject({
        namespace: 'demo',
        pod: 'web-1',
        container: 'smc-sidecar',
        job: `${NS}/smc-operator-sidecars`,
        endpoint: 'smc-metrics',
        smc_dev_tenant: 'blue',
        smc_dev_policy: 'blue-web',
      });
      const opSeries = await prom.waitForSeries('smc_operator_watched_objects', 60_000);
      expect(opSeries[0]?.metric).toMatchObject({
        namespace: NS,
        pod: 'smc-operator-0',
        container: 'operator',
        service: 'smc-operator-metrics',
        job: 'operator',
        endpoint: 'metrics',
      });
      const naSeries = await prom.waitForSeries('smc_node_agent_scans_total', 60_000);
      expect(naSeries[0]?.metric).toMatchObject({
        namespace: NS,
        job: 'node-agent',
        service: 'smc-operator-node-agent-metrics',
        node: 'node-1',
      });
      expect(opSeries[0]?.metric).not.toHaveProperty('node');

      const targets = await prom.targets();
      const active = targets.active
        .map((t) => `${t.labels['job'] ?? ''} ${t.labels['pod'] ?? ''} ${t.health}`)
        .sort();
      expect(active).toEqual([
        'node-agent smc-operator-node-agent-x up',
        'operator smc-operator-0 up',
        `${NS}/smc-operator-sidecars web-1 up`,
      ]);
      expect(targets.droppedCount).toBeGreaterThan(0);
    });

    it('every query of every panel of the shipped dashboard returns data, and the page renders', async () => {
      // Histogram quantiles need observations inside their rate window: wait for a few scrapes.
      await prom.waitForSeries('rate(smc_handshake_duration_seconds_count[4s]) > 0', 60_000);
      await prom.waitForSeries('rate(smc_operator_webhook_duration_seconds_count[4s]) > 0', 60_000);
      // Rates of every job: the node agent's target may be discovered last.
      await prom.waitForSeries('rate(smc_node_agent_scans_total[4s]) > 0', 60_000);
      const check = await checkDashboard(prom, { scrapeIntervalMs: 1_000, rangeMs: 60_000 });
      const html = await writeCheckHtml(join(workDir, 'dashboard.html'), check, { subtitle: 'host test' });
      expect(failedPanels(check), formatCheck(check)).toEqual([]);
      if (process.env['SMC_KEEP_DASHBOARD'] === '1') process.stderr.write(`dashboard page: ${html}\n`);
      const page = readFileSync(html, 'utf8');
      for (const p of check.panels) expect(page).toContain(p.title);
      expect(page).not.toContain('class="panel failed"');
    });
  },
);
