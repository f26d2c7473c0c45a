// The embedded default scenario of `npm run lab`: one namespace opted in to injection, two
// tenants' SmcPolicies, four pods on the lab's two nodes, and the application flows run between
// them. The pod IPs are the ones the pods get inside the VMs, so the directory the operator
// publishes in part 1 is used unchanged by the sidecars in part 2.
import { renderShard } from '../../operator/src/directory/build.js';
import type { DirectoryEndpoint } from '../../operator/src/api/directory.js';

export const NAMESPACE = 'shop';

export interface LabPolicy {
  name: string;
  tenant: string;
  podSelector: { matchLabels: Record<string, string> };
  allowedPeerTenants: string[];
  mode: 'Prefer' | 'Require' | 'Disabled';
  vlans?: number[];
}

export const POLICIES: LabPolicy[] = [
  {
    name: 'blue',
    tenant: 'blue',
    podSelector: { matchLabels: { tenant: 'blue' } },
    allowedPeerTenants: [],
    mode: 'Prefer',
  },
  {
    name: 'red',
    tenant: 'red',
    podSelector: { matchLabels: { tenant: 'red' } },
    allowedPeerTenants: [],
    mode: 'Prefer',
  },
  // The blue tenant again, but its pods' RoCE traffic belongs on VLAN 100: never on a link with
  // blue pods of the default VLAN.
  {
    name: 'blue-vlan100',
    tenant: 'blue',
    podSelector: { matchLabels: { net: 'vlan100' } },
    allowedPeerTenants: [],
    mode: 'Prefer',
    vlans: [100],
  },
];

export interface LabPod {
  name: string;
  /** Lab node index; the Kubernetes node is `node<N>`. */
  node: 0 | 1;
  ip: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  /** Whether the webhook is expected to inject the sidecar (and the pod to be in the directory). */
  sidecar: boolean;
  /** Servers run nginx (8080) and redis-server (6379). */
  role: 'server' | 'client';
  /** Tenant of its effective policy, if any. */
  tenant?: string;
  /** Its effective policy, if any. */
  policy?: string;
}

export const PODS: LabPod[] = [
  {
    name: 'web',
    node: 0,
    ip: '10.244.0.10',
    labels: { app: 'web', tenant: 'blue' },
    sidecar: true,
    role: 'server',
    tenant: 'blue',
    policy: 'blue',
  },
  {
    name: 'legacy',
    node: 0,
    ip: '10.244.0.11',
    labels: { app: 'legacy' },
    annotations: { 'smc.dev/inject': 'false' },
    sidecar: false,
    role: 'server',
  },
  {
    name: 'client',
    node: 1,
    ip: '10.244.1.10',
    labels: { app: 'client', tenant: 'blue' },
    sidecar: true,
    role: 'client',
    tenant: 'blue',
    policy: 'blue',
  },
  {
    name: 'batch',
    node: 1,
    ip: '10.244.1.11',
    labels: { app: 'batch', tenant: 'red' },
    sidecar: true,
    role: 'client',
    tenant: 'red',
    policy: 'red',
  },
  {
    name: 'edge',
    node: 1,
    ip: '10.244.1.13',
    labels: { app: 'edge', net: 'vlan100' },
    sidecar: true,
    role: 'client',
    tenant: 'blue',
    policy: 'blue-vlan100',
  },
];

export type Outcome = 'upgraded' | 'fallback' | 'declined';

export interface LabFlow {
  name: string;
  /** The pod the application runs in (its sidecar's metrics attribute the connections). */
  pod: string;
  /** Shell command run as uid 65534 in the pod (bash -o pipefail -c). */
  command: string;
  /** What the program is, for the report. */
  program: string;
  target: string;
  expect: { outcome: Outcome; reason: string };
  /** Name of the server pod whose /blob sha256 the command's output must match. */
  blobOf?: string;
}

const web = PODS[0]?.ip ?? '';
const legacy = PODS[1]?.ip ?? '';

/** curl of web's 4 MiB blob from `pod`, its sha256 checked against web's. */
function webBlob(name: string, pod: string, outcome: Outcome, reason: string): LabFlow {
  return {
    name,
    pod,
    program: 'curl (4 MiB, sha256)',
    target: 'web:8080 nginx',
    command: `curl -sS --max-time 100 http://${web}:8080/blob | sha256sum`,
    expect: { outcome, reason },
    blobOf: 'web',
  };
}

export const FLOWS: LabFlow[] = [
  webBlob('download', 'client', 'upgraded', 'none'),
  {
    name: 'redis',
    pod: 'client',
    program: 'redis-benchmark',
    target: 'web:6379 redis',
    command: `redis-benchmark -h ${web} -p 6379 -c 2 -n 200 -d 512 -t set,get -q 2>&1 | tr '\\r' '\\n' | grep -E '^(SET|GET): [0-9.]+ requests'`,
    expect: { outcome: 'upgraded', reason: 'none' },
  },
  {
    name: 'no-sidecar',
    pod: 'client',
    program: 'curl (1 MiB, sha256)',
    target: 'legacy:8080 nginx',
    command: `curl -sS --max-time 100 http://${legacy}:8080/blob | sha256sum`,
    expect: { outcome: 'fallback', reason: 'peer-not-in-directory' },
    blobOf: 'legacy',
  },
  webBlob('other-tenant', 'batch', 'fallback', 'tenant-not-allowed'),
  webBlob('other-vlan', 'edge', 'fallback', 'vlan-mismatch'),
];

/** The directory for --vm-only runs: what the operator publishes for this scenario, one shard. */
export function fallbackDirectory(): Map<string, string> {
  const endpoints: DirectoryEndpoint[] = PODS.filter((p) => p.sidecar && p.tenant !== undefined).map((p) => {
    const policy = POLICIES.find((x) => x.name === p.policy);
    const vlan = policy?.vlans?.[0];
    return {
      podIP: p.ip,
      node: `node${p.node}`,
      namespace: NAMESPACE,
      pod: p.name,
      tenant: p.tenant ?? '',
      sidecarPort: 15100,
      allowedPeerTenants: [...(policy?.allowedPeerTenants ?? [])],
      ...(vlan === undefined ? {} : { vlan }),
    };
  });
  return new Map([['shard-0.json', renderShard(0, 1, endpoints).json]]);
}

/** The sidecar environment for --vm-only runs: what the webhook injects for the pod's policy. */
export function fallbackSidecarEnv(pod: LabPod): Record<string, string> {
  const policy = POLICIES.find((x) => x.name === pod.policy);
  if (!policy) return {};
  return {
    SMC_POLICY: policy.name,
    SMC_TENANT: policy.tenant,
    SMC_MODE: policy.mode,
    SMC_ALLOWED_PEER_TENANTS: policy.allowedPeerTenants.join(','),
    ...(policy.vlans?.[0] === undefined ? {} : { SMC_VLAN: String(policy.vlans[0]) }),
  };
}
