// The cluster test's workloads: one opted-in namespace, two tenants' SmcPolicies plus one whose
// pods may use no RDMA device, and pods of unmodified Debian programs pinned to the two nodes.
// Pure builders: the objects are plain JSON for the API server.

export const APP_NS = 'shop';
/** Size of the blob nginx serves; big enough that the RDMA byte counters cannot miss it. */
export const BLOB_BYTES = 8 * 1024 * 1024;

export const IMAGES = {
  nginx: 'smc.dev/lab/nginx:1',
  redis: 'smc.dev/lab/redis:1',
  iperf3: 'smc.dev/lab/iperf3:1',
} as const;

export interface PolicySpec {
  readonly name: string;
  readonly tenant: string;
  readonly selector: Record<string, string>;
  readonly devices?: readonly { deviceName: string }[];
}

export const POLICIES: readonly PolicySpec[] = [
  { name: 'blue', tenant: 'blue', selector: { tenant: 'blue' } },
  { name: 'red', tenant: 'red', selector: { tenant: 'red' } },
  // Blue pods whose policy pins a device no node has: they must still run, over TCP.
  {
    name: 'blue-no-rdma',
    tenant: 'blue',
    selector: { tenant: 'blue-no-rdma' },
    devices: [{ deviceName: 'mlx5_9' }],
  },
];

/** The tenants of POLICIES, each admitting the app namespace (an SmcPolicy's tenant must). */
export const TENANTS: readonly string[] = [...new Set(POLICIES.map((p) => p.tenant))];

export function tenant(name: string): Record<string, unknown> {
  return {
    apiVersion: 'smc.dev/v1alpha1',
    kind: 'SmcTenant',
    metadata: { name },
    spec: { namespaces: [APP_NS] },
  };
}

export function namespace(): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: APP_NS, labels: { 'smc.dev/injection': 'enabled' } },
  };
}

export function policy(p: PolicySpec): Record<string, unknown> {
  return {
    apiVersion: 'smc.dev/v1alpha1',
    kind: 'SmcPolicy',
    metadata: { name: p.name, namespace: APP_NS },
    spec: {
      tenant: p.tenant,
      mode: 'Prefer',
      podSelector: { matchLabels: p.selector },
      ...(p.devices ? { devices: p.devices } : {}),
    },
  };
}

const NGINX_CONF = `worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path /tmp/body;
  proxy_temp_path /tmp/proxy;
  fastcgi_temp_path /tmp/fastcgi;
  uwsgi_temp_path /tmp/uwsgi;
  scgi_temp_path /tmp/scgi;
  server { listen 8080; root /srv; }
}
`;

export function nginxConfig(): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'nginx', namespace: APP_NS },
    data: { 'nginx.conf': NGINX_CONF },
  };
}

interface ContainerSpec {
  readonly name: string;
  readonly image: string;
  readonly script: string;
  readonly port?: number;
}

export interface PodSpec {
  readonly name: string;
  readonly node: 'node0' | 'node1';
  readonly labels: Record<string, string>;
  readonly annotations?: Record<string, string>;
  readonly containers: readonly ContainerSpec[];
  /** Whether the webhook must inject the sidecar. */
  readonly injected: boolean;
}

const idle = (name: string, image: string): ContainerSpec => ({
  name,
  image,
  script: 'exec sleep 2147483647',
});

/** A client pod: one idle container per tool image, driven with exec. */
function client(
  name: string,
  node: 'node0' | 'node1',
  labels: Record<string, string>,
  injected: boolean,
  annotations?: Record<string, string>,
): PodSpec {
  return {
    name,
    node,
    labels,
    ...(annotations ? { annotations } : {}),
    injected,
    containers: [idle('curl', IMAGES.nginx), idle('redis', IMAGES.redis), idle('iperf3', IMAGES.iperf3)],
  };
}

export const SERVER = 'web';

export const PODS: readonly PodSpec[] = [
  {
    name: SERVER,
    node: 'node0',
    labels: { tenant: 'blue', app: 'web' },
    injected: true,
    containers: [
      {
        name: 'nginx',
        image: IMAGES.nginx,
        port: 8080,
        script: `head -c ${BLOB_BYTES} /dev/urandom >/srv/blob && sha256sum /srv/blob | cut -d' ' -f1 >/srv/blob.sha256 && exec nginx -c /etc/nginx-smc/nginx.conf -g 'daemon off;'`,
      },
      {
        name: 'redis',
        image: IMAGES.redis,
        port: 6379,
        script: `exec redis-server --port 6379 --protected-mode no --save '' --appendonly no`,
      },
      { name: 'iperf3', image: IMAGES.iperf3, port: 5201, script: 'exec iperf3 -s -p 5201' },
    ],
  },
  client('client', 'node1', { tenant: 'blue', app: 'client' }, true),
  client('intruder', 'node0', { tenant: 'red', app: 'intruder' }, true),
  // Also on `redirect: peers` (an smc-redirect container keeps its redirect sets): its connections
  // to web still reach its sidecar, which falls back for want of a device.
  client('no-rdma', 'node1', { tenant: 'blue-no-rdma', app: 'no-rdma' }, true, {
    'smc.dev/redirect': 'peers',
  }),
  client('legacy', 'node0', { tenant: 'blue', app: 'legacy' }, false, { 'smc.dev/inject': 'false' }),
];

export function podObject(p: PodSpec): Record<string, unknown> {
  const usesNginxConf = p.containers.some((c) => c.script.includes('nginx-smc'));
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: APP_NS,
      labels: p.labels,
      ...(p.annotations ? { annotations: p.annotations } : {}),
    },
    spec: {
      nodeSelector: { 'kubernetes.io/hostname': p.node },
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 2,
      containers: p.containers.map((c) => ({
        name: c.name,
        image: c.image,
        imagePullPolicy: 'Never',
        command: ['/bin/sh', '-c', c.script],
        ...(c.port === undefined ? {} : { ports: [{ containerPort: c.port, protocol: 'TCP' }] }),
        ...(c.name === 'nginx' && usesNginxConf
          ? {
              volumeMounts: [
                { name: 'nginx-conf', mountPath: '/etc/nginx-smc' },
                { name: 'srv', mountPath: '/srv' },
              ],
            }
          : {}),
      })),
      ...(usesNginxConf
        ? {
            volumes: [
              { name: 'nginx-conf', configMap: { name: 'nginx' } },
              { name: 'srv', emptyDir: { sizeLimit: '64Mi' } },
            ],
          }
        : {}),
    },
  };
}

/**
 * The workload as users run it: a Deployment of one replica whose template is {@link podObject}'s
 * pod, pinned to its node. Pods are found by the `app` label.
 */
export function deploymentObject(p: PodSpec): Record<string, unknown> {
  const pod = podObject(p) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
  const app = p.labels['app'] ?? p.name;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: p.name, namespace: APP_NS, labels: { app } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app } },
      // The pod is pinned to one node: no surge, so a rollout never runs two copies there.
      strategy: { type: 'Recreate' },
      template: {
        metadata: { labels: p.labels, ...(p.annotations ? { annotations: p.annotations } : {}) },
        spec: pod.spec,
      },
    },
  };
}

/** A blue client created late in the test (its injection is what is checked). */
export function lateClient(name: string): PodSpec {
  return client(name, 'node1', { tenant: 'blue', app: 'late' }, true);
}

/**
 * Pods the operator lists in the peer directory: injected, and under a policy that pins no device
 * (a pinned device no node has makes the pod no SMC-R peer).
 */
export function directoryPods(): PodSpec[] {
  return PODS.filter((p) => {
    const policy = POLICIES.find((x) => Object.entries(x.selector).every(([k, v]) => p.labels[k] === v));
    return p.injected && policy !== undefined && (policy.devices ?? []).length === 0;
  });
}
