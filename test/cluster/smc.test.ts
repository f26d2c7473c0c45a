// The chart on a real two-node Kubernetes cluster (kubelet + containerd in the two soft-RoCE VMs,
// control plane on the host): images built by `npm run image`, node agents with the device plugin,
// injected pods of unmodified Debian programs, upgraded and fallback traffic checked through the
// sidecars' metrics, leader failover, Prometheus and every dashboard panel, helm upgrade/uninstall.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KubeClient } from '../../operator/src/kube/client.js';
import { startCluster, type Cluster } from './harness/cluster.js';
import { renderMonitors } from './monitoring/chart.js';
import { checkDashboard, failedPanels, formatCheck } from './monitoring/dashboard.js';
import { startKubeSd } from './monitoring/kube-sd.js';
import { prometheusConfigText } from './monitoring/prometheus-config.js';
import { startPrometheus } from './monitoring/prometheus.js';
import { writeCheckHtml } from './monitoring/render.js';
import { helmRunner } from './e2e/helm.js';
import {
  create,
  exec,
  execReport,
  getPod,
  isReady,
  listPods,
  podPath,
  sidecarOf,
  waitFor,
  type PodView,
} from './e2e/kube.js';
import { outcomes, sidecarMetrics, sum } from './e2e/metrics.js';
import {
  APP_NS,
  BLOB_BYTES,
  PODS,
  POLICIES,
  SERVER,
  TENANTS,
  deploymentObject,
  directoryPods,
  lateClient,
  namespace,
  nginxConfig,
  podObject,
  policy,
  tenant,
} from './e2e/workloads.js';

const REPO = new URL('../../', import.meta.url).pathname;
const SMC_IMAGE_ARCHIVE = join(REPO, 'dist/image/smc-operator.oci.tar');
const APPS_IMAGE_ARCHIVE = join(REPO, 'dist/image/lab-apps.oci.tar');
const CHART = join(REPO, 'charts/smc-operator');
const RELEASE = 'smc-operator';
const SYSTEM_NS = 'smc-system';
const RESOURCE = 'smc.dev/rdma';
const MIN = 60_000;
// A node here is one emulated vCPU (qemu TCG) running kubelet, containerd and several Node.js
// processes: probes get the slack a heavily loaded node needs.
const SLOW_NODE_VALUES = [
  'image.pullPolicy=Never',
  'operator.probes.liveness.timeoutSeconds=10',
  'operator.probes.liveness.failureThreshold=6',
  'operator.probes.readiness.timeoutSeconds=10',
  'operator.shutdownDelay=10s',
  // A Node.js replica starved by a pod starting beside it can take seconds to admit a pod.
  'webhook.timeoutSeconds=15',
  // Handshakes between emulated nodes take the time the VM lab gives them (test/vm/sidecar).
  'injection.timeouts.clcHandshake=30s',
  'injection.timeouts.linkSetup=20s',
  'nodeAgent.livenessProbe.timeoutSeconds=10',
  'nodeAgent.livenessProbe.failureThreshold=6',
  'nodeAgent.readinessProbe.timeoutSeconds=10',
].flatMap((v) => ['--set', v]);

const Any = z.unknown();
const NodeView = z.object({
  metadata: z.object({ name: z.string() }),
  status: z.object({ allocatable: z.record(z.string(), z.string()).nullish() }).nullish(),
});
const SmcNodeView = z.object({
  metadata: z.object({ name: z.string() }),
  status: z.object({ devices: z.array(z.object({ name: z.string() })).nullish() }).nullish(),
});
const LeaseView = z.object({ spec: z.object({ holderIdentity: z.string().nullish() }) });
const DeploymentView = z.object({
  spec: z.object({ replicas: z.number().nullish() }),
  status: z.object({ readyReplicas: z.number().nullish() }).nullish(),
});
const ConnectionsView = z.object({
  connections: z.array(
    z.object({
      direction: z.string(),
      mode: z.string(),
      outcome: z.string().nullable(),
      reason: z.string().nullable(),
      bytes: z.object({ rdma: z.object({ tx: z.number(), rx: z.number() }) }),
    }),
  ),
});
const ListView = z.object({ items: z.array(z.object({ metadata: z.object({ name: z.string() }) })) });

/** A decimal quantity as the API server prints it (1000 comes back as "1k"). */
function quantity(q: string | undefined): number {
  const m = /^(\d+)(k|M)?$/.exec(q ?? '');
  if (!m?.[1]) return NaN;
  return Number(m[1]) * (m[2] === 'k' ? 1e3 : m[2] === 'M' ? 1e6 : 1);
}

function deploymentPath(): string {
  return `/apis/apps/v1/namespaces/${APP_NS}/deployments`;
}

function log(line: string): void {
  process.stdout.write(`[cluster-test ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

describe('smc-operator on a real two-node cluster (kubelet, containerd, soft-RoCE)', () => {
  let cluster: Cluster;
  let kc: KubeConfig;
  let c: KubeClient;
  let helm: (args: string[], timeoutMs?: number) => Promise<string>;
  const ip = new Map<string, string>();
  /** Workload (Deployment) name to the name of its running pod. */
  const podName = new Map<string, string>();
  const pod = (workload: string): string => podName.get(workload) ?? workload;
  const t0 = Date.now();

  beforeAll(async () => {
    for (const f of [SMC_IMAGE_ARCHIVE, APPS_IMAGE_ARCHIVE, join(REPO, 'dist/bin/smc.js')]) {
      if (!existsSync(f)) throw new Error(`${f} is missing: run npm run build and npm run image first`);
    }
    cluster = await startCluster({ images: [SMC_IMAGE_ARCHIVE, APPS_IMAGE_ARCHIVE], log, memMiB: 3072 });
    kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    c = new KubeClient(kc, 'cluster-test');
    helm = helmRunner(cluster.kubeconfigPath, mkdtempSync(join(tmpdir(), 'smc-helm-')));
    log(`cluster up in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }, 15 * MIN);

  // A failed step leaves what a person would look at first: pods, recent events, operator logs.
  afterEach(async (ctx) => {
    if (ctx.task.result?.state !== 'fail' || !cluster) return;
    const run = async (args: string[]): Promise<string> => {
      try {
        const r = await cluster.kubectl(args);
        return r.stdout;
      } catch (e) {
        return `kubectl ${args.join(' ')}: ${(e as Error).message}`;
      }
    };
    log(`diagnostics:\n${await run(['get', 'pods', '-A', '-o', 'wide'])}`);
    log(
      `events:\n${(await run(['get', 'events', '-A', '--sort-by=.lastTimestamp'])).split('\n').slice(-25).join('\n')}`,
    );
    for (const p of await listPods(c, SYSTEM_NS, 'app.kubernetes.io/component=operator').catch(() => []))
      log(
        `${p.metadata.name} log:\n${(await run(['logs', '-n', SYSTEM_NS, p.metadata.name, '--tail=30'])).trim()}`,
      );
    // The data path's side: both ends of the upgraded traffic.
    for (const w of [SERVER, 'client'])
      log(
        `${w} sidecar log:\n${(await run(['logs', '-n', APP_NS, pod(w), '-c', 'smc-sidecar', '--tail=40'])).trim()}`,
      );
  }, 2 * MIN);

  afterAll(async () => {
    c?.close();
    await cluster?.stop();
    log(`cluster test total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }, 2 * MIN);

  it(
    'installs the chart; node agents publish SmcNodes and advertise the RDMA resource',
    async () => {
      await helm([
        'install',
        RELEASE,
        CHART,
        '--namespace',
        SYSTEM_NS,
        '--create-namespace',
        ...SLOW_NODE_VALUES,
        '--wait',
        '--timeout',
        '8m',
      ]);
      for (const node of cluster.nodes) {
        const devices = await waitFor(
          `SmcNode ${node} with rxe0`,
          async () => {
            const n = await c.request('GET', `/apis/smc.dev/v1alpha1/smcnodes/${node}`, SmcNodeView);
            const names = (n.status?.devices ?? []).map((d) => d.name);
            return names.includes('rxe0') ? names : undefined;
          },
          3 * MIN,
        );
        const slots = await waitFor(
          `${RESOURCE} allocatable on ${node}`,
          async () => {
            const n = await c.request('GET', `/api/v1/nodes/${node}`, NodeView);
            return n.status?.allocatable?.[RESOURCE];
          },
          3 * MIN,
        );
        log(`${node}: SmcNode devices ${devices.join(',')}, allocatable ${RESOURCE}=${slots}`);
        expect(quantity(slots)).toBe(1000);
      }
    },
    15 * MIN,
  );

  it(
    'injects the selected pods; sidecars get the RDMA resource and become Ready',
    async () => {
      await create(c, '/api/v1/namespaces', namespace());
      for (const t of TENANTS) await create(c, '/apis/smc.dev/v1alpha1/smctenants', tenant(t));
      for (const p of POLICIES)
        await create(c, `/apis/smc.dev/v1alpha1/namespaces/${APP_NS}/smcpolicies`, policy(p));
      await create(c, `/api/v1/namespaces/${APP_NS}/configmaps`, nginxConfig());
      for (const p of PODS) await create(c, deploymentPath(), deploymentObject(p));
      const ofDeployment = (pods: PodView[], spec: (typeof PODS)[number]): PodView | undefined =>
        pods.find((x) => x.metadata.labels?.['app'] === spec.labels['app'] && !x.metadata.deletionTimestamp);
      const ready = await waitFor(
        'a Ready pod of every Deployment',
        async () => {
          const pods = await listPods(c, APP_NS);
          const notReady = PODS.filter((p) => {
            const pod = ofDeployment(pods, p);
            return pod === undefined || !isReady(pod);
          });
          return notReady.length === 0 ? pods : undefined;
        },
        10 * MIN,
        3000,
      );
      for (const spec of PODS) {
        const pod = ofDeployment(ready, spec) as PodView;
        ip.set(spec.name, pod.status?.podIP ?? '');
        podName.set(spec.name, pod.metadata.name);
        const sidecar = sidecarOf(pod);
        const init = (pod.spec.initContainers ?? []).some((x) => x.name === 'smc-init');
        log(
          `${spec.name} on ${pod.spec.nodeName ?? '?'} ip ${pod.status?.podIP ?? '?'} sidecar ${sidecar ? 'yes' : 'no'}`,
        );
        expect(pod.spec.nodeName).toBe(spec.node);
        expect(Boolean(sidecar) && init).toBe(spec.injected);
        if (sidecar) {
          // Kubernetes 1.34: the operator's `auto` mode injects a native sidecar, an init container
          // with restartPolicy Always right after smc-init, and no sidecar among the containers.
          // With `smc.dev/redirect: peers` the smc-redirect container sits between the two.
          const injectedInits = [
            'smc-init',
            ...(spec.annotations?.['smc.dev/redirect'] === 'peers' ? ['smc-redirect'] : []),
            'smc-sidecar',
          ];
          expect((pod.spec.initContainers ?? []).map((x) => x.name).slice(-injectedInits.length)).toEqual(
            injectedInits,
          );
          expect(sidecar.restartPolicy).toBe('Always');
          expect(pod.spec.containers.some((x) => x.name === 'smc-sidecar')).toBe(false);
          expect(sidecar.command).toEqual(['smc', 'sidecar']);
          expect(sidecar.resources?.limits?.[RESOURCE]).toBe('1');
        }
      }
      // The operator publishes the directory; each sidecar sees it once the kubelet refreshes the
      // projected volume. Until then a peer is unknown and the connection stays TCP.
      const injected = PODS.filter((p) => p.injected);
      const peers = directoryPods().length;
      for (const p of injected) {
        const n = await waitFor(
          `${p.name}'s sidecar directory with ${peers} endpoints`,
          async () => {
            const size = await directorySize(pod(p.name));
            return size >= peers ? size : undefined;
          },
          5 * MIN,
          3000,
        );
        log(`${p.name}: directory of ${n} endpoints loaded`);
      }
    },
    15 * MIN,
  );

  const server = (): string => ip.get(SERVER) ?? '';

  /** bin/kubectl-smc as a user runs it: `kubectl` on PATH, the kubeconfig in KUBECONFIG. */
  async function kubectlSmc(args: string[]): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'smc-kubectl-'));
    symlinkSync(cluster.kubectlPath, join(dir, 'kubectl'));
    const r = spawnSync(join(REPO, 'bin/kubectl-smc'), args, {
      encoding: 'utf8',
      timeout: 2 * MIN,
      env: {
        ...process.env,
        PATH: `${dir}:${process.env['PATH'] ?? ''}`,
        KUBECONFIG: cluster.kubeconfigPath,
      },
    });
    rmSync(dir, { recursive: true, force: true });
    if (r.status !== 0) throw new Error(`kubectl smc ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  /** Endpoints in the sidecar's last loaded directory, from its log (the volume is the kubelet's). */
  async function directorySize(pod: string): Promise<number> {
    const { stdout } = await cluster.kubectl(['logs', '-n', APP_NS, pod, '-c', 'smc-sidecar']);
    let n = -1;
    for (const line of stdout.split('\n')) {
      if (!line.includes('"msg":"endpoint directory loaded"')) continue;
      const m = /"endpoints":(\d+)/.exec(line);
      if (m?.[1]) n = Number(m[1]);
    }
    return n;
  }

  async function fetchBlob(from: string): Promise<void> {
    const want = await exec(kc, APP_NS, pod(SERVER), 'nginx', ['cat', '/srv/blob.sha256']);
    expect(want.code, execReport(want)).toBe(0);
    const got = await exec(kc, APP_NS, pod(from), 'curl', [
      'sh',
      '-c',
      `curl -sS --max-time 120 -o /tmp/blob http://${server()}:8080/blob && wc -c </tmp/blob && sha256sum /tmp/blob`,
    ]);
    expect(got.stderr).toBe('');
    expect(got.code, execReport(got)).toBe(0);
    const [size, sha] = got.stdout.trim().split(/\s+/);
    expect(Number(size)).toBe(BLOB_BYTES);
    expect(sha).toBe(want.stdout.trim());
  }

  it(
    'upgrades same-tenant cross-node traffic of nginx/curl, redis and iperf3, bytes intact',
    async () => {
      const clientIp = ip.get('client') ?? '';
      const before = await sidecarMetrics(clientIp);
      await fetchBlob('client');

      const value = 'v'.repeat(100_000);
      // Small counts: one emulated vCPU per node carries kubelet, containerd and both sidecars.
      const redis = await exec(
        kc,
        APP_NS,
        pod('client'),
        'redis',
        [
          'sh',
          '-c',
          `redis-cli -h ${server()} set big ${value} >/dev/null && redis-cli -h ${server()} get big | sha256sum && ` +
            `redis-benchmark -h ${server()} -n 300 -c 2 -t set,get -q`,
        ],
        6 * MIN,
      );
      expect(redis.code, execReport(redis)).toBe(0);
      const expected = await exec(kc, APP_NS, pod('client'), 'redis', [
        'sh',
        '-c',
        `printf '%s\\n' ${value} | sha256sum`,
      ]);
      expect(redis.stdout.split('\n')[0]).toBe(expected.stdout.trim());
      log(`redis-benchmark: ${redis.stdout.split('\n').slice(1).join(' ').replace(/\s+/g, ' ')}`);

      const iperf = await exec(kc, APP_NS, pod('client'), 'iperf3', [
        'iperf3',
        '-c',
        server(),
        '-p',
        '5201',
        '-t',
        '3',
        '-J',
      ]);
      expect(iperf.code, execReport(iperf)).toBe(0);
      const report = JSON.parse(iperf.stdout) as { end: { sum_received: { bytes: number } } };
      expect(report.end.sum_received.bytes).toBeGreaterThan(0);
      log(`iperf3 received ${report.end.sum_received.bytes} bytes`);

      const after = await sidecarMetrics(clientIp);
      const upgraded =
        sum(after, 'smc_connections_total', { outcome: 'upgraded' }) -
        sum(before, 'smc_connections_total', { outcome: 'upgraded' });
      const rdmaRx =
        sum(after, 'smc_bytes_total', { path: 'rdma', direction: 'rx' }) -
        sum(before, 'smc_bytes_total', { path: 'rdma', direction: 'rx' });
      log(`client sidecar: ${JSON.stringify(outcomes(after))}, RDMA rx ${rdmaRx} bytes this step`);
      // curl 1, redis-cli 2, redis-benchmark >= 2 (-c 2, per test), iperf3 >= 2 connections.
      expect(upgraded).toBeGreaterThanOrEqual(7);
      expect(sum(after, 'smc_connections_total', { outcome: 'fallback' })).toBe(0);
      expect(rdmaRx).toBeGreaterThanOrEqual(BLOB_BYTES);
      const web = await sidecarMetrics(server());
      expect(sum(web, 'smc_bytes_total', { path: 'rdma', direction: 'tx' })).toBeGreaterThanOrEqual(
        BLOB_BYTES,
      );
    },
    10 * MIN,
  );

  it(
    'falls back with the reason: another tenant, no RDMA device; a pod without injection is untouched',
    async () => {
      await fetchBlob('intruder');
      const intruder = await sidecarMetrics(ip.get('intruder') ?? '');
      log(`intruder (tenant red) sidecar: ${JSON.stringify(outcomes(intruder))}`);
      expect(
        sum(intruder, 'smc_connections_total', { outcome: 'fallback', reason: 'tenant-not-allowed' }),
      ).toBeGreaterThanOrEqual(1);
      expect(sum(intruder, 'smc_connections_total', { outcome: 'upgraded' })).toBe(0);

      await fetchBlob('no-rdma');
      const noRdma = await sidecarMetrics(ip.get('no-rdma') ?? '');
      log(`no-rdma (policy pins mlx5_9) sidecar: ${JSON.stringify(outcomes(noRdma))}`);
      expect(
        sum(noRdma, 'smc_connections_total', { outcome: 'fallback', reason: 'no-rdma-device' }),
      ).toBeGreaterThanOrEqual(1);
      // no-rdma is on `redirect: peers`: its smc-redirect container (NET_ADMIN only) keeps web, a
      // peer of its tenant, in the outbound set and the red intruder in the inbound plain set.
      const sets = await waitFor(
        'no-rdma redirect sets',
        async () => {
          const r = await exec(kc, APP_NS, pod('no-rdma'), 'smc-redirect', [
            'nft',
            'list',
            'table',
            'inet',
            'smc_sidecar',
          ]);
          return r.code === 0 && r.stdout.includes(ip.get(SERVER) ?? '?') ? r.stdout : undefined;
        },
        2 * MIN,
        2000,
      );
      log(`no-rdma's nftables table:\n${sets}`);
      const setText = (name: string): string => sets.split(`set ${name} {`)[1]?.split('}')[0] ?? '';
      expect(setText('peers4')).toContain(ip.get(SERVER));
      expect(setText('peers4')).not.toContain(ip.get('intruder'));
      expect(setText('plain4')).toContain(ip.get('intruder'));

      const legacy = await getPod(c, APP_NS, pod('legacy'));
      expect(legacy.spec.containers.map((x) => x.name)).toEqual(['curl', 'redis', 'iperf3']);
      expect(legacy.spec.initContainers ?? []).toEqual([]);
      await fetchBlob('legacy');

      // Per connection, as an operator asks it: the kubectl plugin execs `smc connections` in the
      // sidecar (the bundled CLI against the sidecar's loopback-only endpoint).
      for (const [workload, outcome, reason] of [
        ['client', 'upgraded', null],
        ['intruder', 'fallback', 'tenant-not-allowed'],
      ] as const) {
        const table = await kubectlSmc(['connections', pod(workload), '-n', APP_NS]);
        log(`kubectl smc connections ${workload}:\n${table}`);
        const report = ConnectionsView.parse(
          JSON.parse(await kubectlSmc(['connections', pod(workload), '-n', APP_NS, '-o', 'json'])),
        );
        const rows = report.connections.filter(
          (x) =>
            x.direction === 'outbound' && x.outcome === outcome && (reason === null || x.reason === reason),
        );
        expect(rows.length, `${workload}: outbound ${outcome} connections`).toBeGreaterThan(0);
        for (const r of rows) expect(r.mode).toBe(outcome === 'upgraded' ? 'SMCR' : 'TCP');
        if (outcome === 'upgraded') expect(rows.some((r) => r.bytes.rdma.rx > 0)).toBe(true);
        else expect(rows.every((r) => r.bytes.rdma.tx === 0 && r.bytes.rdma.rx === 0)).toBe(true);
      }
    },
    10 * MIN,
  );

  it(
    'keeps injecting while the leading operator pod is deleted; the other replica takes the Lease',
    async () => {
      const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases/smc-operator-leader`;
      const leader = await waitFor(
        'a Lease holder',
        async () => (await c.request('GET', leasePath, LeaseView)).spec.holderIdentity ?? undefined,
        2 * MIN,
      );
      log(`leader: ${leader}; deleting it`);
      await c.request('DELETE', podPath(SYSTEM_NS, leader), Any);
      // With failurePolicy Fail, pods of opted-in namespaces need a webhook answer: the standby
      // replica serves the webhook all along, so creation goes on during the leader change.
      await create(c, podPath(APP_NS), podObject(lateClient('during-failover')));
      const late = await getPod(c, APP_NS, 'during-failover');
      expect(sidecarOf(late)).toBeDefined();
      const next = await waitFor(
        'another Lease holder',
        async () => {
          const h = (await c.request('GET', leasePath, LeaseView)).spec.holderIdentity;
          return h && h !== leader ? h : undefined;
        },
        3 * MIN,
      );
      log(`new leader: ${next}`);
      await c.request('DELETE', podPath(APP_NS, 'during-failover'), Any);
      // The Deployment replaces the deleted pod; later steps scrape both replicas.
      const deploymentPath = `/apis/apps/v1/namespaces/${SYSTEM_NS}/deployments/${RELEASE}`;
      await waitFor(
        'the operator Deployment ready again',
        async () => {
          const d = await c.request('GET', deploymentPath, DeploymentView);
          const want = d.spec.replicas ?? 1;
          return (d.status?.readyReplicas ?? 0) >= want ? want : undefined;
        },
        6 * MIN,
        2000,
      );
      log('operator Deployment ready again');
    },
    10 * MIN,
  );

  it(
    'Prometheus scrapes every target of the chart; every query of every dashboard panel has data',
    async () => {
      const sd = await startKubeSd({ kubeconfig: cluster.kubeconfigPath });
      const monitors = await renderMonitors({ release: RELEASE, namespace: SYSTEM_NS });
      // 10 s scrapes with a 10 s timeout: a Node.js process on a loaded emulated vCPU can take
      // seconds to answer /metrics, and a missed scrape must not empty a 4-interval rate window.
      const prom = await startPrometheus({
        config: prometheusConfigText(monitors, {
          discovery: { kind: 'http', baseUrl: sd.url },
          scrapeInterval: '10s',
          scrapeTimeout: '10s',
        }),
      });
      const started = Date.now();
      try {
        // Operator replicas, node agents and the injected sidecars (web, client, intruder, no-rdma).
        const up = await waitFor(
          'every scrape target up',
          async () => {
            const t = await prom.targets();
            const down = t.active.filter((a) => a.health !== 'up');
            // Thrown, so a timeout names the targets that never came up.
            if (down.length > 0)
              throw new Error(down.map((a) => `${a.scrapeUrl} ${a.health} ${a.lastError}`).join('; '));
            const byJob = new Map<string, number>();
            for (const a of t.active) {
              const job = a.labels['job'] ?? '?';
              byJob.set(job, (byJob.get(job) ?? 0) + 1);
            }
            const total = [...byJob.values()].reduce((a, b) => a + b, 0);
            if (total < 2 + 2 + 4) throw new Error(`${total} targets: ${JSON.stringify([...byJob])}`);
            return byJob;
          },
          3 * MIN,
          2000,
        );
        log(`Prometheus targets up: ${JSON.stringify(Object.fromEntries(up))}`);
        // Traffic while Prometheus scrapes, every round: upgraded (client), fallback (intruder),
        // an admission (webhook latency) and a policy spec change (reconciles).
        const policyPath = `/apis/smc.dev/v1alpha1/namespaces/${APP_NS}/smcpolicies/blue`;
        const until = Date.now() + 90_000;
        let round = 0;
        while (Date.now() < until) {
          for (const from of ['client', 'intruder']) {
            const r = await exec(kc, APP_NS, pod(from), 'curl', [
              'curl',
              '-sS',
              '-o',
              '/dev/null',
              `http://${server()}:8080/blob`,
            ]);
            expect(r.code, execReport(r)).toBe(0);
          }
          // A dry-run create passes the injection webhook (sideEffects: None) without starting a pod.
          await c.request('POST', podPath(APP_NS), Any, {
            query: { dryRun: 'All' },
            body: podObject(lateClient(`scrape-window-${round}`)),
          });
          await c.request('PATCH', policyPath, Any, {
            body: { spec: { allowedPeerTenants: [`green-${round}`] } },
            patch: 'merge',
          });
          round++;
        }
        await c.request('PATCH', policyPath, Any, {
          body: { spec: { allowedPeerTenants: [] } },
          patch: 'merge',
        });
        // Two more scrapes, so the last round's increments are in the data.
        await new Promise((r) => setTimeout(r, 25_000));
        const targets = await prom.targets();
        for (const t of targets.active.filter((a) => a.health !== 'up' || a.lastError !== '')) {
          log(`target ${t.scrapeUrl}: ${t.health} ${t.lastError}`);
        }
        const check = await checkDashboard(prom, {
          rangeMs: Date.now() - started + 30_000,
          scrapeIntervalMs: 10_000,
        });
        const page = await writeCheckHtml(join(REPO, 'dist/cluster-test/dashboard.html'), check, {
          subtitle: `two-node cluster, ${round} traffic rounds`,
        });
        log(`dashboard rendered: ${page}`);
        log(formatCheck(check));
        expect(failedPanels(check), formatCheck(check)).toEqual([]);
      } finally {
        await prom.stop();
        await sd.close();
      }
    },
    10 * MIN,
  );

  it(
    'helm upgrade applies changed values; helm uninstall leaves no pods, webhook or RBAC behind',
    async () => {
      await helm([
        'upgrade',
        RELEASE,
        CHART,
        '--namespace',
        SYSTEM_NS,
        ...SLOW_NODE_VALUES,
        '--set',
        'rdma.devicePlugin.slots=500',
        '--set',
        'operator.replicas=1',
        // Both node agents restart at once (the default, one node at a time, is for real fleets).
        '--set',
        'nodeAgent.updateStrategy.rollingUpdate.maxUnavailable=2',
        '--wait',
        '--timeout',
        '8m',
      ]);
      for (const node of cluster.nodes) {
        await waitFor(
          `${RESOURCE}=500 on ${node}`,
          async () => {
            const n = await c.request('GET', `/api/v1/nodes/${node}`, NodeView);
            return quantity(n.status?.allocatable?.[RESOURCE]) === 500 ? true : undefined;
          },
          5 * MIN,
        );
      }
      await helm(['uninstall', RELEASE, '--namespace', SYSTEM_NS, '--wait', '--timeout', '5m']);
      const leftovers = await waitFor(
        'nothing of the release left',
        async () => {
          const found: string[] = [];
          const pods = await listPods(c, SYSTEM_NS);
          found.push(...pods.map((p) => `pod/${p.metadata.name}`));
          for (const [kind, path] of [
            [
              'mutatingwebhookconfiguration',
              '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
            ],
            [
              'validatingadmissionpolicy',
              '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies',
            ],
            ['clusterrole', '/apis/rbac.authorization.k8s.io/v1/clusterroles'],
            ['clusterrolebinding', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings'],
          ] as const) {
            const l = await c.request(
              'GET',
              `${path}?labelSelector=${encodeURIComponent(`app.kubernetes.io/instance=${RELEASE}`)}`,
              ListView,
            );
            found.push(...l.items.map((i) => `${kind}/${i.metadata.name}`));
          }
          return found.length === 0 ? found : undefined;
        },
        5 * MIN,
        2000,
      );
      expect(leftovers).toEqual([]);
    },
    15 * MIN,
  );
});
