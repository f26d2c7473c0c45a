// Smoke test of the two-node cluster harness (harness/cluster.ts): the scheduler spreads a
// 2-replica Deployment over both VMs, pods talk TCP across nodes (eth0 link), the host reaches a pod
// IP (eth1 bridge), a pod reaches the API server through the `kubernetes` Service (kube-proxy), and
// `kubectl logs` / `kubectl exec` work (API server -> kubelet).
//
// Images: SMC_CLUSTER_IMAGES (archives separated by ':'), default dist/image/lab-apps.oci.tar
// (`npm run image`); the busybox image is SMC_CLUSTER_BUSYBOX, default smc.dev/lab/busybox:1.
import { connect } from 'node:net';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KUBERNETES_SERVICE_IP,
  clusterPrerequisites,
  startCluster,
  type Cluster,
} from './harness/cluster.js';

const REPO = new URL('../../', import.meta.url).pathname;
const IMAGES = (process.env['SMC_CLUSTER_IMAGES'] ?? join(REPO, 'dist/image/lab-apps.oci.tar'))
  .split(':')
  .filter((p) => p !== '');
const BUSYBOX = process.env['SMC_CLUSTER_BUSYBOX'] ?? 'smc.dev/lab/busybox:1';
const NS = 'default';
const APP = 'smoke';
const PORT = 7000;
const MIN = 60_000;

const t0 = Date.now();
const secs = (): string => ((Date.now() - t0) / 1000).toFixed(1);
function log(line: string): void {
  process.stderr.write(`[cluster-smoke ${secs()}s] ${line}\n`);
}

/** Reads what a TCP server at host:port sends before closing (or until timeoutMs). */
function readTcp(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let data = '';
    const sock = connect({ host, port });
    sock.setTimeout(timeoutMs, () =>
      sock.destroy(new Error(`no answer from ${host}:${port} in ${timeoutMs} ms`)),
    );
    sock.on('data', (b: Buffer) => (data += b.toString('utf8')));
    sock.on('end', () => {
      sock.end();
      resolvePromise(data);
    });
    sock.on('error', reject);
  });
}

async function retry<T>(what: string, fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

describe('two-node Kubernetes cluster on the soft-RoCE VMs', () => {
  let cluster: Cluster | undefined;

  beforeAll(async () => {
    const missing = clusterPrerequisites(IMAGES);
    if (missing.length > 0) throw new Error(`cannot run: ${missing.join('; ')}`);
    cluster = await startCluster({ images: IMAGES, log: (l) => process.stderr.write(`${l}\n`) });
    log(`cluster up in ${cluster.startupSec.toFixed(1)}s`);
  }, 25 * MIN); // may first wait for another cluster on this machine (lab-run --hostnet lock)

  afterAll(async () => {
    await cluster?.stop();
    log('test total');
  }, 2 * MIN);

  it(
    'spreads a Deployment over both nodes; pod<->pod, host->pod, pod->API server, logs, exec',
    async () => {
      if (cluster === undefined) throw new Error('no cluster');
      const c = cluster;
      const apps = c.kubeConfig.makeApiClient(AppsV1Api);
      const core = c.kubeConfig.makeApiClient(CoreV1Api);
      const labels = { app: APP };
      await apps.createNamespacedDeployment({
        namespace: NS,
        body: {
          metadata: { name: APP, labels },
          spec: {
            replicas: 2,
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: {
                terminationGracePeriodSeconds: 1,
                // One replica per node.
                affinity: {
                  podAntiAffinity: {
                    requiredDuringSchedulingIgnoredDuringExecution: [
                      { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: labels } },
                    ],
                  },
                },
                containers: [
                  {
                    name: 'echo',
                    image: BUSYBOX,
                    imagePullPolicy: 'Never',
                    command: [
                      '/bin/sh',
                      '-c',
                      `echo "echo up on $NODE"; while true; do echo "hello from $NODE" | nc -l -p ${PORT} >/dev/null; done`,
                    ],
                    env: [{ name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
                  },
                ],
              },
            },
          },
        },
      });
      const tCreate = Date.now();
      const pods = await retry(
        'two Running pods with IPs',
        async () => {
          const list = await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${APP}` });
          const running = list.items.filter(
            (p: V1Pod) =>
              p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((s) => s.ready),
          );
          if (running.length !== 2 || running.some((p) => !p.status?.podIP)) {
            const summary = list.items.map(
              (p) => `${p.metadata?.name}:${p.spec?.nodeName}:${p.status?.phase}`,
            );
            throw new Error(`pods: ${summary.join(', ') || 'none'}`);
          }
          return running;
        },
        5 * MIN,
      );
      log(
        `both pods Running ${((Date.now() - tCreate) / 1000).toFixed(1)}s after the Deployment was created`,
      );
      const byNode = new Map(pods.map((p) => [p.spec?.nodeName ?? '', p]));
      const p0 = byNode.get('node0');
      const p1 = byNode.get('node1');
      if (p0 === undefined || p1 === undefined) throw new Error('the pods are not one per node');
      const name0 = p0.metadata?.name ?? '';
      const name1 = p1.metadata?.name ?? '';
      const ip0 = p0.status?.podIP ?? '';
      const ip1 = p1.status?.podIP ?? '';
      expect(ip0).toMatch(/^10\.244\.0\./);
      expect(ip1).toMatch(/^10\.244\.1\./);

      // Host -> pod IP on each node (route via the node's eth1).
      for (const [ip, node] of [
        [ip0, 'node0'],
        [ip1, 'node1'],
      ] as const) {
        const got = await retry(`host -> ${ip}:${PORT}`, () => readTcp(ip, PORT, 5000), MIN);
        expect(got).toContain(`hello from ${node}`);
      }
      log('host reached both pods');

      // kubectl logs (API server -> kubelet on each node).
      const logs0 = await retry('kubectl logs', () => c.kubectl(['logs', '-n', NS, name0]), MIN);
      expect(logs0.stdout).toContain('echo up on node0');
      const logs1 = await c.kubectl(['logs', '-n', NS, name1]);
      expect(logs1.stdout).toContain('echo up on node1');
      log('kubectl logs works on both nodes');

      // kubectl exec + pod-to-pod across nodes, both directions (over eth0).
      const x01 = await retry(
        'node0 pod -> node1 pod',
        () => c.kubectl(['exec', '-n', NS, name0, '--', 'nc', '-w', '5', ip1, String(PORT)]),
        MIN,
      );
      expect(x01.stdout).toContain('hello from node1');
      const x10 = await c.kubectl(['exec', '-n', NS, name1, '--', 'nc', '-w', '5', ip0, String(PORT)]);
      expect(x10.stdout).toContain('hello from node0');
      log('kubectl exec and cross-node pod-to-pod TCP work');

      // Pod -> API server through the `kubernetes` Service (kube-proxy DNAT to 10.78.0.254).
      for (const name of [name0, name1]) {
        const r = await c.kubectl([
          'exec',
          '-n',
          NS,
          name,
          '--',
          'sh',
          '-c',
          `nc -w 5 ${KUBERNETES_SERVICE_IP} 443 </dev/null >/dev/null; echo rc=$?`,
        ]);
        expect(r.stdout.trim()).toBe('rc=0');
      }
      log('both pods connect to the kubernetes Service');

      await apps.deleteNamespacedDeployment({ name: APP, namespace: NS });
    },
    10 * MIN,
  );
});
