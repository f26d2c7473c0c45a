// Shared helpers of the operator integration tests: CRDs, RBAC, object builders, an operator
// started in-process with test timings, and polling.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadAllYaml, type KubeConfig } from '@kubernetes/client-node';
// loadAllYaml maps known kinds to client-node's model classes (camelCase keys such as
// xKubernetesValidations); serialize them back to their wire form before sending.
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { SIDECAR_DEFAULT_PORTS, SIDECAR_DEFAULT_UID } from '../../../operator/src/api/sidecar.js';
import { Operator, type OperatorOptions } from '../../../operator/src/controller/operator.js';
import { isApiError } from '../../../operator/src/errors.js';
import { KubeClient } from '../../../operator/src/kube/client.js';
import { Resources, resourcePath } from '../../../operator/src/kube/resources.js';
import type { ControlPlane } from '../harness/control-plane.js';

export const OPERATOR_NS = 'smc-system';
export const repoFile = (p: string): URL => new URL(`../../../${p}`, import.meta.url);

const Any = z.unknown();

export function adminClient(kc: KubeConfig): KubeClient {
  return new KubeClient(kc, 'operator-test');
}

/** Retries `fn` until it returns without throwing. */
export async function eventually<T>(
  fn: () => Promise<T> | T,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}: ${last instanceof Error ? last.message : String(last)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = a && typeof a === 'object' ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Creates an object; 409 (already exists) is fine. */
export async function ensure(c: KubeClient, path: string, body: unknown): Promise<void> {
  try {
    await c.request('POST', path, Any, { body });
  } catch (e) {
    if (!isApiError(e, 409)) throw e;
  }
}

export async function installCrds(c: KubeClient): Promise<void> {
  for (const f of [
    'crds/smc.dev_smcpolicies.yaml',
    'crds/smc.dev_smcnodes.yaml',
    'crds/smc.dev_smctenants.yaml',
  ]) {
    const crd: unknown = ObjectSerializer.serialize(
      loadAllYaml(readFileSync(repoFile(f), 'utf8'))[0],
      'V1CustomResourceDefinition',
      '',
    );
    await ensure(c, '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  }
  const Crd = z.object({
    status: z
      .object({ conditions: z.array(z.object({ type: z.string(), status: z.string() })).optional() })
      .optional(),
  });
  for (const name of ['smcpolicies.smc.dev', 'smcnodes.smc.dev', 'smctenants.smc.dev']) {
    await eventually(
      async () => {
        const crd = await c.request(
          'GET',
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
          Crd,
        );
        check(
          crd.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ?? false,
          'not established',
        );
        await c.request('GET', resourcePath(Resources.smcpolicies), Any);
      },
      30_000,
      `CRD ${name}`,
    );
  }
}

export async function createNamespace(
  c: KubeClient,
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  await ensure(c, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  // No controller-manager: the ServiceAccount admission plugin needs the default account to exist.
  await ensure(c, `/api/v1/namespaces/${name}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'default', namespace: name },
  });
}

/**
 * A kubeconfig for a user bound to exactly the rules of operator/deploy/rbac.yaml, so the
 * integration tests prove the documented RBAC is sufficient.
 */
export async function restrictedOperatorKubeConfig(cp: ControlPlane, c: KubeClient): Promise<KubeConfig> {
  const docs = loadAllYaml(readFileSync(repoFile('operator/deploy/rbac.yaml'), 'utf8')) as { kind: string }[];
  for (const d of docs) {
    if (d.kind === 'ClusterRole') {
      await ensure(
        c,
        '/apis/rbac.authorization.k8s.io/v1/clusterroles',
        ObjectSerializer.serialize(d, 'V1ClusterRole', ''),
      );
    } else {
      await ensure(
        c,
        `/apis/rbac.authorization.k8s.io/v1/namespaces/${OPERATOR_NS}/roles`,
        ObjectSerializer.serialize(d, 'V1Role', ''),
      );
    }
  }
  const subjects = [{ kind: 'User', name: 'smc-operator', apiGroup: 'rbac.authorization.k8s.io' }];
  const roleRef = (kind: string) => ({ apiGroup: 'rbac.authorization.k8s.io', kind, name: 'smc-operator' });
  await ensure(c, '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'smc-operator' },
    subjects,
    roleRef: roleRef('ClusterRole'),
  });
  await ensure(c, `/apis/rbac.authorization.k8s.io/v1/namespaces/${OPERATOR_NS}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'smc-operator', namespace: OPERATOR_NS },
    subjects,
    roleRef: roleRef('Role'),
  });
  const u = await cp.userKubeConfig('smc-operator');
  return u.kubeConfig;
}

export function testOptions(identity: string, over: Partial<OperatorOptions> = {}): OperatorOptions {
  return {
    namespace: OPERATOR_NS,
    identity,
    workers: 4,
    directoryShards: 2,
    directoryDebounceMs: 20,
    sidecarImage: 'registry.invalid/smc-sidecar:test',
    imagePullPolicy: 'IfNotPresent',
    cluster: 'cluster.local',
    rdmaResource: 'smc.dev/rdma',
    sidecar: {
      mode: 'auto',
      uid: SIDECAR_DEFAULT_UID,
      ports: SIDECAR_DEFAULT_PORTS,
      excludeOutboundUids: [],
      interceptInbound: true,
    },
    bindAddress: '127.0.0.1',
    metricsPort: 0,
    healthPort: 0,
    leaderElection: {
      enabled: true,
      leaseName: 'smc-operator-leader',
      leaseDurationMs: 3_000,
      renewDeadlineMs: 2_000,
      retryPeriodMs: 300,
    },
    webhook: {
      enabled: false,
      port: 0,
      secretName: 'smc-operator-webhook-tls',
      configName: 'smc-operator',
      hosts: ['127.0.0.1', 'smc-operator-webhook.smc-system.svc'],
      caValidityMs: 3_650 * 86_400_000,
      certValidityMs: 365 * 86_400_000,
      rotateBeforeMs: 30 * 86_400_000,
      checkIntervalMs: 3_600_000,
    },
    queue: { baseDelayMs: 5, maxDelayMs: 5_000, qps: 50, burst: 200 },
    ...over,
  };
}

export function testLogger(name: string): Logger {
  return pino({ level: process.env['SMC_TEST_LOG'] ?? 'warn', base: { replica: name } });
}

export async function startOperator(
  kc: KubeConfig,
  identity: string,
  over: Partial<OperatorOptions> = {},
): Promise<Operator> {
  const op = new Operator(kc, testOptions(identity, over), testLogger(identity));
  await op.start();
  return op;
}

// ---- object builders -------------------------------------------------------------------------

export function smcPolicy(ns: string, name: string, spec: Record<string, unknown>): unknown {
  return { apiVersion: 'smc.dev/v1alpha1', kind: 'SmcPolicy', metadata: { name, namespace: ns }, spec };
}

export function smcTenant(name: string, spec: Record<string, unknown>): unknown {
  return { apiVersion: 'smc.dev/v1alpha1', kind: 'SmcTenant', metadata: { name }, spec };
}

/**
 * Creates (or replaces the spec of) SmcTenant `name`. Policies are admitted only in namespaces
 * their tenant's SmcTenant admits, so a test that expects pods in the directory declares its
 * tenants first.
 */
export async function putTenant(c: KubeClient, name: string, spec: Record<string, unknown>): Promise<void> {
  try {
    await c.request('POST', resourcePath(Resources.smctenants), Any, { body: smcTenant(name, spec) });
  } catch (e) {
    if (!isApiError(e, 409)) throw e;
    await c.request('PATCH', resourcePath(Resources.smctenants, undefined, name), Any, {
      patch: 'merge',
      body: { spec: { namespaces: null, namespaceSelector: null, ...spec } },
    });
  }
}

export function podBody(
  ns: string,
  name: string,
  labels: Record<string, string>,
  o: { node?: string; sidecar?: boolean } = {},
): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels },
    spec: {
      nodeName: o.node ?? 'node-1',
      automountServiceAccountToken: false,
      containers: [
        { name: 'app', image: 'registry.invalid/app:1' },
        ...((o.sidecar ?? true) ? [{ name: 'smc-sidecar', image: 'registry.invalid/smc-sidecar:test' }] : []),
      ],
    },
  };
}

/**
 * Sets a pod's status as a kubelet would: Running with an IP (and, dual-stack, the other family's
 * in `moreIps`), the sidecar ready or not.
 */
export async function setPodStatus(
  c: KubeClient,
  ns: string,
  name: string,
  ip: string,
  sidecarReady: boolean,
  moreIps: readonly string[] = [],
): Promise<void> {
  const running = { running: { startedAt: '2026-01-01T00:00:00Z' } };
  await c.request('PATCH', `${resourcePath(Resources.pods, ns, name)}/status`, Any, {
    patch: 'merge',
    body: {
      status: {
        phase: 'Running',
        podIP: ip,
        podIPs: [ip, ...moreIps].map((a) => ({ ip: a })),
        conditions: [{ type: 'Ready', status: sidecarReady ? 'True' : 'False' }],
        containerStatuses: [
          { name: 'app', ready: true, restartCount: 0, image: 'app', imageID: '', state: running },
          {
            name: 'smc-sidecar',
            ready: sidecarReady,
            restartCount: 0,
            image: 'smc-sidecar',
            imageID: '',
            state: running,
          },
        ],
      },
    },
  });
}

export const PolicyView = z.object({
  metadata: z.object({
    name: z.string(),
    finalizers: z.array(z.string()).optional(),
    generation: z.number().optional(),
  }),
  status: z
    .object({
      observedGeneration: z.number().optional(),
      matchedPods: z.number().optional(),
      readyPods: z.number().optional(),
      conflictingPolicies: z.array(z.string()).optional(),
      conditions: z
        .array(z.object({ type: z.string(), status: z.string(), reason: z.string(), message: z.string() }))
        .optional(),
    })
    .optional(),
});
export type PolicyView = z.infer<typeof PolicyView>;

export async function getPolicy(c: KubeClient, ns: string, name: string): Promise<PolicyView> {
  return c.request('GET', resourcePath(Resources.smcpolicies, ns, name), PolicyView);
}

export function condition(
  p: PolicyView,
  type: string,
): { status: string; reason: string; message: string } | undefined {
  return p.status?.conditions?.find((x) => x.type === type);
}

const ConfigMapList = z.object({
  items: z.array(
    z.object({
      metadata: z.object({ name: z.string(), resourceVersion: z.string() }),
      data: z.record(z.string(), z.string()).optional(),
    }),
  ),
});

/** The directory as pods of `ns` see it: podIP -> tenant. */
export async function directoryOf(
  c: KubeClient,
  ns: string,
): Promise<Map<string, { tenant: string; pod: string }>> {
  const list = await c.request('GET', resourcePath(Resources.configmaps, ns), ConfigMapList, {
    query: { labelSelector: 'smc.dev/directory=true' },
  });
  const out = new Map<string, { tenant: string; pod: string }>();
  for (const cm of list.items) {
    for (const json of Object.values(cm.data ?? {})) {
      const doc = z
        .object({ endpoints: z.array(z.object({ podIP: z.string(), tenant: z.string(), pod: z.string() })) })
        .parse(JSON.parse(json));
      for (const e of doc.endpoints) out.set(e.podIP, { tenant: e.tenant, pod: e.pod });
    }
  }
  return out;
}

/** The directory's shard files as pods of `ns` would read them: [file name, text]. */
export async function directoryShardFiles(c: KubeClient, ns: string): Promise<[string, string][]> {
  const list = await c.request('GET', resourcePath(Resources.configmaps, ns), ConfigMapList, {
    query: { labelSelector: 'smc.dev/directory=true' },
  });
  return list.items.flatMap((cm) => Object.entries(cm.data ?? {}));
}

export async function directoryVersions(c: KubeClient, ns: string): Promise<string[]> {
  const list = await c.request('GET', resourcePath(Resources.configmaps, ns), ConfigMapList, {
    query: { labelSelector: 'smc.dev/directory=true' },
  });
  return list.items.map((i) => `${i.metadata.name}@${i.metadata.resourceVersion}`).sort();
}

const EventList = z.object({
  items: z.array(
    z.object({
      reason: z.string().optional(),
      type: z.string().optional(),
      note: z.string().optional(),
      regarding: z.object({ name: z.string().optional(), kind: z.string().optional() }).optional(),
    }),
  ),
});

export async function eventsFor(
  c: KubeClient,
  ns: string,
  name: string,
): Promise<{ reason: string; type: string; note: string }[]> {
  const list = await c.request('GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`, EventList);
  return list.items
    .filter((e) => e.regarding?.name === name && e.regarding.kind === 'SmcPolicy')
    .map((e) => ({ reason: e.reason ?? '', type: e.type ?? '', note: e.note ?? '' }));
}
