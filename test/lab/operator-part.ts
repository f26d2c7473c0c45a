// Part 1 of `npm run lab`: the operator on a real etcd + kube-apiserver. The operator runs
// in-process as a user bound to exactly operator/deploy/rbac.yaml, with its webhook called by the
// API server; the scenario's namespace, policies and pods are created, the pods' status is set as a
// kubelet would (no kubelet runs), and the result is read back from the API server.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAllYaml, type KubeConfig } from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { z } from 'zod';
import type { Operator } from '../../operator/src/controller/operator.js';
import type { KubeClient } from '../../operator/src/kube/client.js';
import { Resources, resourcePath } from '../../operator/src/kube/resources.js';
import { expectedBinaries } from '../apiserver/harness/binaries.js';
import { startControlPlane, type ControlPlane } from '../apiserver/harness/control-plane.js';
import {
  OPERATOR_NS,
  adminClient,
  check,
  createNamespace,
  ensure,
  eventually,
  freePort,
  getPolicy,
  smcPolicy,
  startOperator,
  testOptions,
  type PolicyView,
} from '../apiserver/operator/helpers.js';
import { NAMESPACE, PODS, POLICIES, type LabPod } from './scenario.js';

const Any = z.unknown();

// Run from dist/test/lab/: the harness helpers that read repo files relative to themselves would
// look under dist/, so the repo files are read from the source tree here.
export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const repoText = (p: string): string => readFileSync(join(REPO, p), 'utf8');

function binaries(): ReturnType<typeof expectedBinaries> {
  const env = repoText('test/apiserver/tools/versions.env');
  const v = (k: string): string => new RegExp(`^${k}=(.*)$`, 'm').exec(env)?.[1]?.trim() ?? '';
  return expectedBinaries({
    kubernetes: v('KUBERNETES_VERSION'),
    etcd: v('ETCD_VERSION'),
    helm: v('HELM_VERSION'),
  });
}

async function installCrds(c: KubeClient): Promise<void> {
  for (const f of [
    'crds/smc.dev_smcpolicies.yaml',
    'crds/smc.dev_smcnodes.yaml',
    'crds/smc.dev_smctenants.yaml',
  ]) {
    const crd: unknown = ObjectSerializer.serialize(
      loadAllYaml(repoText(f))[0],
      'V1CustomResourceDefinition',
      '',
    );
    await ensure(c, '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  }
  await eventually(
    async () => {
      await c.request('GET', resourcePath(Resources.smcpolicies), Any);
      await c.request('GET', resourcePath(Resources.smcnodes), Any);
      await c.request('GET', resourcePath(Resources.smctenants), Any);
    },
    30_000,
    'CRDs established',
  );
}

/** A kubeconfig for a user bound to exactly operator/deploy/rbac.yaml (as the integration tests do). */
async function restrictedOperatorKubeConfig(cp: ControlPlane, c: KubeClient): Promise<KubeConfig> {
  const docs = loadAllYaml(repoText('operator/deploy/rbac.yaml')) as { kind: string }[];
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
  return (await cp.userKubeConfig('smc-operator')).kubeConfig;
}

const EnvVar = z.object({ name: z.string(), value: z.string().optional() });
const PodView = z.object({
  metadata: z.object({ name: z.string(), annotations: z.record(z.string(), z.string()).nullish() }),
  spec: z.object({
    containers: z.array(z.object({ name: z.string(), env: z.array(EnvVar).nullish() })),
    initContainers: z.array(z.object({ name: z.string() })).nullish(),
  }),
});
type PodView = z.infer<typeof PodView>;

const ConfigMapList = z.object({
  items: z.array(
    z.object({
      metadata: z.object({ name: z.string() }),
      data: z.record(z.string(), z.string()).optional(),
    }),
  ),
});
const Endpoints = z.object({
  endpoints: z.array(z.object({ podIP: z.string(), pod: z.string(), tenant: z.string() })),
});

export interface PodResult {
  pod: LabPod;
  initContainers: string[];
  containers: string[];
  injected: boolean;
  /** The literal env of the injected smc-sidecar container (valueFrom entries left out). */
  sidecarEnv: Record<string, string>;
}

export interface OperatorResult {
  pods: PodResult[];
  policies: { name: string; status: PolicyView['status'] }[];
  /** ConfigMap key (shard-<i>.json) -> content, merged over the namespace's directory ConfigMaps. */
  directory: Map<string, string>;
  directoryConfigMaps: string[];
  endpoints: { podIP: string; pod: string; tenant: string }[];
  seconds: number;
}

async function createWebhookConfig(admin: KubeClient, port: number): Promise<void> {
  await admin.request('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', Any, {
    body: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: 'smc-operator' },
      webhooks: [
        {
          name: 'inject.smc.dev',
          clientConfig: { url: `https://127.0.0.1:${port}/mutate-v1-pod` },
          rules: [
            {
              apiGroups: [''],
              apiVersions: ['v1'],
              operations: ['CREATE'],
              resources: ['pods'],
              scope: 'Namespaced',
            },
          ],
          namespaceSelector: {
            matchExpressions: [
              { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [OPERATOR_NS, 'kube-system'] },
            ],
          },
          failurePolicy: 'Ignore',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 5,
          reinvocationPolicy: 'Never',
        },
      ],
    },
  });
}

/** Sets the pod Running with its IP and every container running and ready, as a kubelet would. */
async function setRunning(admin: KubeClient, p: LabPod, containers: string[]): Promise<void> {
  const running = { running: { startedAt: new Date().toISOString() } };
  await admin.request('PATCH', `${resourcePath(Resources.pods, NAMESPACE, p.name)}/status`, Any, {
    patch: 'merge',
    body: {
      status: {
        phase: 'Running',
        podIP: p.ip,
        podIPs: [{ ip: p.ip }],
        conditions: [{ type: 'Ready', status: 'True' }],
        containerStatuses: containers.map((name) => ({
          name,
          ready: true,
          restartCount: 0,
          image: name,
          imageID: '',
          state: running,
        })),
      },
    },
  });
}

export async function runOperatorPart(progress: (msg: string) => void): Promise<OperatorResult> {
  const started = Date.now();
  progress('starting etcd + kube-apiserver');
  let cp: ControlPlane | undefined;
  let op: Operator | undefined;
  let admin: KubeClient | undefined;
  try {
    cp = await startControlPlane({ binaries: binaries() });
    admin = adminClient(cp.kubeConfig);
    progress(`API server at ${cp.server}; applying crds/`);
    await installCrds(admin);
    await createNamespace(admin, OPERATOR_NS);
    await createNamespace(admin, NAMESPACE, { 'smc.dev/injection': 'enabled' });
    const port = await freePort();
    await createWebhookConfig(admin, port);
    // Each tenant of the scenario admits the lab namespace (an SmcPolicy's tenant must).
    for (const tenant of new Set(POLICIES.map((p) => p.tenant))) {
      await admin.request('POST', resourcePath(Resources.smctenants), Any, {
        body: {
          apiVersion: 'smc.dev/v1alpha1',
          kind: 'SmcTenant',
          metadata: { name: tenant },
          spec: { namespaces: [NAMESPACE] },
        },
      });
    }
    for (const p of POLICIES) {
      await admin.request('POST', resourcePath(Resources.smcpolicies, NAMESPACE), Any, {
        body: smcPolicy(NAMESPACE, p.name, {
          tenant: p.tenant,
          podSelector: p.podSelector,
          mode: p.mode,
          ...(p.allowedPeerTenants.length > 0 ? { allowedPeerTenants: p.allowedPeerTenants } : {}),
          ...(p.vlans === undefined ? {} : { vlans: p.vlans }),
        }),
      });
    }
    progress(
      `namespace ${NAMESPACE} (smc.dev/injection=enabled), SmcPolicies ${POLICIES.map((p) => p.name).join(', ')}`,
    );
    const kc = await restrictedOperatorKubeConfig(cp, admin);
    const base = testOptions('smc-lab');
    // No kubelet: the pods are marked Running through their containerStatuses (setRunning), so the
    // sidecar stays a plain container (a native sidecar reports among the initContainerStatuses).
    op = await startOperator(kc, 'smc-lab', {
      webhook: { ...base.webhook, enabled: true, port },
      sidecar: { ...base.sidecar, mode: 'container' },
    });
    progress('operator started (RBAC of operator/deploy/rbac.yaml); waiting for its webhook CA bundle');
    const a = admin;
    await eventually(
      async () => {
        const m = await a.request(
          'GET',
          '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/smc-operator',
          z.object({
            webhooks: z.array(z.object({ clientConfig: z.object({ caBundle: z.string().optional() }) })),
          }),
        );
        check(Boolean(m.webhooks[0]?.clientConfig.caBundle), 'caBundle not set');
      },
      30_000,
      'webhook caBundle',
    );
    const pods: PodResult[] = [];
    for (const p of PODS) {
      const created: PodView = await admin.request('POST', resourcePath(Resources.pods, NAMESPACE), PodView, {
        body: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: p.name,
            namespace: NAMESPACE,
            labels: p.labels,
            annotations: p.annotations ?? {},
          },
          spec: {
            nodeName: `node${p.node}`,
            automountServiceAccountToken: false,
            containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
          },
        },
      });
      const containers = created.spec.containers.map((c) => c.name);
      const sidecar = created.spec.containers.find((c) => c.name === 'smc-sidecar');
      const sidecarEnv: Record<string, string> = {};
      for (const e of sidecar?.env ?? []) if (e.value !== undefined) sidecarEnv[e.name] = e.value;
      // What a kubelet resolves from the downward API (POD_NAMESPACE = metadata.namespace): the
      // sidecar accepts only directory shards signed for its own namespace.
      if (sidecar !== undefined) sidecarEnv['SMC_DIRECTORY_NAMESPACE'] = NAMESPACE;
      pods.push({
        pod: p,
        containers,
        initContainers: (created.spec.initContainers ?? []).map((c) => c.name),
        injected: sidecar !== undefined,
        sidecarEnv,
      });
      await setRunning(admin, p, containers);
    }
    progress(
      `pods created (nodeName set, no kubelet) and marked Running: ${PODS.map((p) => p.name).join(', ')}`,
    );
    const expectedEndpoints = PODS.filter((p) => p.sidecar).length;
    const endpoints = await eventually(
      async () => {
        const list = await a.request('GET', resourcePath(Resources.configmaps, NAMESPACE), ConfigMapList, {
          query: { labelSelector: 'smc.dev/directory=true' },
        });
        const eps = list.items.flatMap((cm) =>
          Object.values(cm.data ?? {}).flatMap((json) => Endpoints.parse(JSON.parse(json)).endpoints),
        );
        check(eps.length === expectedEndpoints, `directory has ${eps.length} endpoints`);
        return { eps, list };
      },
      30_000,
      'directory',
    );
    const policies = await eventually(
      async () => {
        const out: OperatorResult['policies'] = [];
        for (const p of POLICIES) {
          const v = await getPolicy(a, NAMESPACE, p.name);
          const want = PODS.filter((x) => x.policy === p.name).length;
          check(v.status?.matchedPods === want && v.status.readyPods === want, `${p.name} not converged`);
          check(
            v.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
            'not Ready',
          );
          out.push({ name: p.name, status: v.status });
        }
        return out;
      },
      30_000,
      'policy status',
    );
    const directory = new Map<string, string>();
    for (const cm of endpoints.list.items)
      for (const [k, v] of Object.entries(cm.data ?? {})) directory.set(k, v);
    progress('policy status and directory converged');
    return {
      pods,
      policies,
      directory,
      directoryConfigMaps: endpoints.list.items.map((i) => i.metadata.name).sort(),
      endpoints: endpoints.eps,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await op?.stop();
    admin?.close();
    await cp?.stop();
  }
}
