// The Helm chart (charts/smc-operator): lint, rendering with default and non-default values, the
// values schema, the CRD copies, and a real `helm install` into etcd + kube-apiserver with RBAC
// least-privilege checks (SubjectAccessReview), the node agent's ValidatingAdmissionPolicy, and
// the node agent publishing an SmcNode through the real API.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  AdmissionregistrationV1Api,
  ApiException,
  ApiextensionsV1Api,
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PolicyV1Api,
  RbacAuthorizationV1Api,
  PatchStrategy,
  loadAllYaml,
  loadYaml,
  setHeaderOptions,
  type RequestContext,
  type V1PolicyRule,
  type V1ResourceAttributes,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBinaries, readVersions } from './harness/binaries.js';
import { startControlPlane, type ControlPlane } from './harness/control-plane.js';
import { buildSmcNode } from '../../sidecar/src/node-agent/mapping.js';
import { runNodeAgent } from '../../sidecar/src/node-agent/index.js';
import { KubeSmcNodeStore, publishSmcNode } from '../../sidecar/src/node-agent/publisher.js';
import { rxeInventory } from '../../sidecar/src/node-agent/testing.js';

const repo = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const CHART = repo('charts/smc-operator');
// Release name = chart name: object names are then plain smc-operator, smc-operator-webhook, ...
const RELEASE = 'smc-operator';
const CUSTOM_VALUES = repo('charts/smc-operator/ci/custom-values.yaml');
// helm built from source defaults to an old Kubernetes version for offline rendering.
const KUBE_VERSION = readVersions().kubernetes.replace(/^v/, '');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsNonRoot?: boolean;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    privileged?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type: string };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

interface PodSpec {
  serviceAccountName?: string;
  hostNetwork?: boolean;
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
  containers: Container[];
  volumes?: { name: string; hostPath?: { path: string } }[];
  affinity?: {
    podAntiAffinity?: {
      requiredDuringSchedulingIgnoredDuringExecution?: unknown[];
      preferredDuringSchedulingIgnoredDuringExecution?: unknown[];
    };
  };
  nodeSelector?: Record<string, string>;
  tolerations?: { key?: string; operator?: string; effect?: string }[];
  imagePullSecrets?: { name: string }[];
}

interface Workload extends K8sObject {
  spec: { replicas?: number; template: { spec: PodSpec } };
}

interface Webhook {
  name: string;
  failurePolicy: string;
  sideEffects: string;
  admissionReviewVersions: string[];
  timeoutSeconds: number;
  clientConfig: {
    caBundle?: string;
    service: { name: string; namespace: string; path: string; port: number };
  };
  namespaceSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
  objectSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
}

interface RoleObject extends K8sObject {
  rules: V1PolicyRule[];
}

interface CrdObject extends K8sObject {
  metadata: K8sObject['metadata'] & { annotations?: Record<string, string> };
  spec: { names: { kind: string }; versions: { name: string }[] };
}

function execHelm(helm: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(helm, args, { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let helmBin = '';

async function template(args: string[] = [], namespace = 'smc-system'): Promise<K8sObject[]> {
  const r = await execHelm(helmBin, [
    'template',
    RELEASE,
    CHART,
    '--namespace',
    namespace,
    '--kube-version',
    KUBE_VERSION,
    ...args,
  ]);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return (loadAllYaml(r.stdout) as (K8sObject | null)[]).filter((o): o is K8sObject => o !== null);
}

function find<T extends K8sObject>(objs: K8sObject[], kind: string, name?: string): T {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!o) throw new Error(`no ${kind} ${name ?? ''} rendered (have ${objs.map((x) => x.kind).join(', ')})`);
  return o as T;
}

function all<T extends K8sObject>(objs: K8sObject[], kind: string): T[] {
  return objs.filter((x) => x.kind === kind) as T[];
}

function containerOf(w: Workload, name: string): Container {
  const c = w.spec.template.spec.containers.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name}`);
  return c;
}

function expectRestricted(c: Container): void {
  expect(c.securityContext?.readOnlyRootFilesystem).toBe(true);
  expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
  expect(c.securityContext?.privileged).toBe(false);
  expect(c.securityContext?.capabilities?.drop).toEqual(['ALL']);
  expect(c.securityContext?.capabilities?.add).toBeUndefined();
  expect(c.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
}

beforeAll(async () => {
  helmBin = (await ensureBinaries()).helm;
});

describe('chart files', () => {
  it('the chart CRDs (files/crds, rendered by templates/crds.yaml) are byte-identical copies of crds/', () => {
    const source = readdirSync(repo('crds'))
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    const copies = readdirSync(repo('charts/smc-operator/files/crds')).sort();
    expect(source.length).toBeGreaterThan(0);
    expect(copies).toEqual(source);
    for (const f of source) {
      expect(
        readFileSync(repo(`charts/smc-operator/files/crds/${f}`)).equals(readFileSync(repo(`crds/${f}`))),
        `charts/smc-operator/files/crds/${f} differs from crds/${f}: cp crds/*.yaml charts/smc-operator/files/crds/`,
      ).toBe(true);
    }
    // helm installs a chart's crds/ directory before the templates and never upgrades it: the
    // CRDs are templates instead (crds.enabled), so there must be no crds/ directory as well.
    expect(readdirSync(CHART)).not.toContain('crds');
  });

  it("Chart.yaml's artifacthub.io/crds lists every CRD of crds/", () => {
    const chart = loadYaml<{ annotations: Record<string, string> }>(
      readFileSync(repo('charts/smc-operator/Chart.yaml'), 'utf8'),
    );
    const listed = loadYaml<{ name: string; kind: string; version: string }[]>(
      chart.annotations['artifacthub.io/crds'] ?? '[]',
    );
    const crds = readdirSync(repo('crds'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => loadYaml<CrdObject>(readFileSync(repo(`crds/${f}`), 'utf8')));
    expect(listed.map((c) => [c.name, c.kind, c.version]).sort()).toEqual(
      crds.map((c) => [c.metadata.name, c.spec.names.kind, c.spec.versions[0]?.name]).sort(),
    );
  });

  it('the dashboard is valid JSON with a panel for every documented metric', () => {
    const dash = JSON.parse(
      readFileSync(repo('charts/smc-operator/dashboards/smc-operator.json'), 'utf8'),
    ) as {
      uid: string;
      panels: { type: string; targets?: { expr: string }[] }[];
    };
    expect(dash.uid).toBe('smc-operator-overview');
    const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    for (const metric of [
      'smc_connections_total',
      'smc_bytes_total',
      'smc_link_groups',
      'smc_links',
      'smc_rdma_errors_total',
      'smc_handshake_duration_seconds_bucket',
      'smc_operator_reconcile_duration_seconds_bucket',
      'smc_operator_reconcile_errors_total',
      'smc_operator_queue_depth',
      'smc_operator_watched_objects',
      'smc_operator_webhook_duration_seconds_bucket',
    ]) {
      expect(
        exprs.some((e) => e.includes(metric)),
        `no panel queries ${metric}`,
      ).toBe(true);
    }
    for (const outcome of ['upgraded', 'fallback', 'declined']) {
      expect(exprs.some((e) => e.includes(`outcome="${outcome}"`) || e.includes('by (outcome)'))).toBe(true);
    }
    expect(exprs.filter((e) => e.startsWith('histogram_quantile(0.99')).length).toBeGreaterThanOrEqual(3);
    expect(exprs.filter((e) => e.startsWith('histogram_quantile(0.5')).length).toBeGreaterThanOrEqual(3);
  });
});

describe('helm lint and template', () => {
  it('helm lint passes with default and with non-default values', async () => {
    for (const extra of [[], ['-f', CUSTOM_VALUES]]) {
      const r = await execHelm(helmBin, [
        'lint',
        CHART,
        '--strict',
        '--kube-version',
        KUBE_VERSION,
        ...extra,
      ]);
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    }
  });

  it('renders the defaults: 2 hardened operator replicas, webhook Fail, node agent, no ServiceMonitor', async () => {
    const objs = await template();
    const dep = find<Workload>(objs, 'Deployment', 'smc-operator');
    expect(dep.metadata.namespace).toBe('smc-system');
    expect(dep.spec.replicas).toBe(2);
    const pod = dep.spec.template.spec;
    expect(pod.serviceAccountName).toBe('smc-operator');
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    expect(pod.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
    expect(pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    const op = containerOf(dep, 'operator');
    expect(op.image).toBe('ghcr.io/smc-operator/smc-operator:0.1.0');
    expect(op.command).toEqual(['smc', 'operator']);
    expectRestricted(op);
    expect(op.securityContext?.runAsNonRoot).toBe(true);
    expect(Object.fromEntries((op.ports ?? []).map((p) => [p.name, p.containerPort]))).toEqual({
      metrics: 8080,
      health: 8081,
      webhook: 9443,
    });
    expect(op.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(op.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(op.resources?.requests).toBeDefined();
    expect(op.resources?.limits?.['memory']).toBeDefined();
    expect(op.env?.map((e) => e.name)).toEqual(expect.arrayContaining(['POD_NAME', 'POD_NAMESPACE']));
    expect(op.args).toEqual(
      expect.arrayContaining([
        '--lease-name=smc-operator-leader',
        '--cluster=cluster.local',
        '--rdma-resource=smc.dev/rdma',
        // The injected sidecar: native where the API server allows, ports and uid clear of Istio's.
        '--sidecar-mode=auto',
        '--sidecar-uid=7609',
        '--sidecar-port-outbound=15101',
        '--sidecar-port-inbound=15106',
        '--sidecar-port-smc=15100',
        '--sidecar-port-metrics=15190',
        '--sidecar-port-health=15121',
        '--sidecar-port-admin=15104',
        '--sidecar-exclude-outbound-uids=',
        '--sidecar-intercept-inbound=true',
        '--sidecar-intercept-redirect=all',
      ]),
    );

    const mwc = find<K8sObject & { webhooks: Webhook[] }>(objs, 'MutatingWebhookConfiguration');
    expect(mwc.webhooks.map((w) => w.name)).toEqual(['namespace.inject.smc.dev', 'pod.inject.smc.dev']);
    for (const w of mwc.webhooks) {
      expect(w.failurePolicy).toBe('Fail');
      expect(w.sideEffects).toBe('None');
      expect(w.admissionReviewVersions).toEqual(['v1']);
      expect(w.timeoutSeconds).toBe(5);
      expect(w.clientConfig.caBundle).toBeUndefined();
      expect(w.clientConfig.service).toEqual({
        name: 'smc-operator-webhook',
        namespace: 'smc-system',
        path: '/mutate-v1-pod',
        port: 443,
      });
      const excluded = w.namespaceSelector.matchExpressions.find(
        (e) => e.key === 'kubernetes.io/metadata.name',
      );
      expect(excluded?.operator).toBe('NotIn');
      expect(excluded?.values).toEqual(expect.arrayContaining(['kube-system', 'smc-system']));
    }
    const [nsHook, podHook] = mwc.webhooks;
    expect(nsHook?.namespaceSelector.matchExpressions).toContainEqual({
      key: 'smc.dev/injection',
      operator: 'In',
      values: ['enabled'],
    });
    expect(podHook?.objectSelector.matchExpressions).toContainEqual({
      key: 'smc.dev/inject',
      operator: 'In',
      values: ['true'],
    });

    const svc = find<K8sObject & { spec: { ports: { port: number; targetPort: string }[] } }>(
      objs,
      'Service',
      'smc-operator-webhook',
    );
    expect(svc.spec.ports).toEqual([{ name: 'webhook', port: 443, targetPort: 'webhook', protocol: 'TCP' }]);
    find(objs, 'Service', 'smc-operator-metrics');
    expect(
      find<K8sObject & { spec: { minAvailable: number } }>(objs, 'PodDisruptionBudget').spec.minAvailable,
    ).toBe(1);

    const ds = find<Workload>(objs, 'DaemonSet', 'smc-operator-node-agent');
    const agent = containerOf(ds, 'node-agent');
    expect(agent.command).toEqual(['smc', 'node-agent']);
    expectRestricted(agent);
    expect(ds.spec.template.spec.serviceAccountName).toBe('smc-operator-node-agent');
    expect(ds.spec.template.spec.hostNetwork).toBe(true);
    const mounts = Object.fromEntries((agent.volumeMounts ?? []).map((m) => [m.mountPath, m.readOnly]));
    expect(mounts['/sys/class/infiniband']).toBe(true);
    expect(mounts['/dev/infiniband']).toBe(true);
    const hostPaths = (ds.spec.template.spec.volumes ?? []).flatMap((v) =>
      v.hostPath ? [v.hostPath.path] : [],
    );
    // The device plugin's directory is the only writable host path.
    expect(hostPaths.sort()).toEqual([
      '/dev/infiniband',
      '/sys/class/infiniband',
      '/var/lib/kubelet/device-plugins',
    ]);
    expect(mounts['/var/lib/kubelet/device-plugins']).toBeUndefined();
    expect(agent.args).toEqual(
      expect.arrayContaining(['--device-plugin', '--resource-name=smc.dev/rdma', '--resource-slots=1000']),
    );
    expect(agent.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom).toEqual({
      fieldRef: { fieldPath: 'spec.nodeName' },
    });

    find(objs, 'ValidatingAdmissionPolicy');
    find(objs, 'ValidatingAdmissionPolicyBinding');
    const dashboard = find<K8sObject & { data: Record<string, string> }>(
      objs,
      'ConfigMap',
      'smc-operator-dashboard',
    );
    expect(dashboard.metadata.labels?.['grafana_dashboard']).toBe('1');
    expect(JSON.parse(dashboard.data['smc-operator.json'] ?? '')).toMatchObject({
      uid: 'smc-operator-overview',
    });
    expect(all(objs, 'ServiceMonitor')).toHaveLength(0);
    expect(all(objs, 'PodMonitor')).toHaveLength(0);
  });

  it('RBAC: no wildcards, no cluster-admin, writes scoped by name or namespace', async () => {
    for (const objs of [await template(), await template(['-f', CUSTOM_VALUES])]) {
      const roles = [...all<RoleObject>(objs, 'ClusterRole'), ...all<RoleObject>(objs, 'Role')];
      expect(roles.length).toBeGreaterThanOrEqual(3);
      // Roles aggregated into view/edit/admin give namespace users SmcPolicies, never SmcTenants.
      const aggregated = roles.filter((r) =>
        Object.keys(r.metadata.labels ?? {}).some((l) =>
          l.startsWith('rbac.authorization.k8s.io/aggregate-to-'),
        ),
      );
      expect(aggregated.map((r) => r.metadata.name).sort()).toEqual([
        'smc-operator-policy-edit',
        'smc-operator-policy-view',
      ]);
      for (const r of aggregated)
        expect(r.rules.flatMap((x) => x.resources ?? [])).not.toContain('smctenants');
      for (const role of roles) {
        for (const rule of role.rules) {
          for (const field of [
            rule.apiGroups,
            rule.resources,
            rule.verbs,
            rule.resourceNames,
            rule.nonResourceURLs,
          ]) {
            expect(field ?? [], `${role.kind} ${role.metadata.name}`).not.toContain('*');
          }
          expect(rule.verbs).not.toContain('escalate');
          expect(rule.verbs).not.toContain('bind');
          expect(rule.verbs).not.toContain('impersonate');
        }
      }
      const bindings = [...all<K8sObject & { roleRef: { name: string } }>(objs, 'ClusterRoleBinding')];
      for (const b of bindings) expect(b.roleRef.name).not.toMatch(/^(cluster-admin|admin|edit)$/);
      const clusterRules = all<RoleObject>(objs, 'ClusterRole').flatMap((r) => r.rules);
      // Secrets and leases only through the namespaced Role.
      expect(clusterRules.flatMap((r) => r.resources ?? [])).not.toContain('secrets');
      expect(clusterRules.flatMap((r) => r.resources ?? [])).not.toContain('leases');
      const mwcRule = clusterRules.find((r) => r.resources?.includes('mutatingwebhookconfigurations'));
      expect(mwcRule?.resourceNames).toEqual(['smc-operator']);
      expect(mwcRule?.verbs).toEqual(['get', 'patch']);
      const role = find<RoleObject>(objs, 'Role', 'smc-operator');
      expect(role.metadata.namespace).toBe('smc-system');
      for (const r of role.rules) {
        if (!r.verbs.includes('create')) expect(r.resourceNames?.length).toBe(1);
        else expect(r.verbs).toEqual(['create']);
      }
    }
  });

  it('renders non-default values: replicas, image, failurePolicy, ServiceMonitor, resources, placement', async () => {
    const objs = await template(['-f', CUSTOM_VALUES]);
    const dep = find<Workload>(objs, 'Deployment');
    expect(dep.spec.replicas).toBe(3);
    const op = containerOf(dep, 'operator');
    expect(op.image).toBe('ghcr.io/smc-operator/smc-operator:1.2.3');
    expect(op.imagePullPolicy).toBe('Always');
    expect(op.args).toContain('--log-level=debug');
    expect(op.args).toContain('--sidecar-image=ghcr.io/smc-operator/smc-operator:1.2.3');
    expect(op.args).toContain('--cluster=east.example');
    expect(op.args).toEqual(
      expect.arrayContaining([
        '--sidecar-mode=container',
        '--sidecar-uid=4242',
        '--sidecar-exclude-outbound-uids=1337',
        '--sidecar-intercept-inbound=false',
        '--sidecar-intercept-redirect=peers',
      ]),
    );
    expect(op.resources).toEqual({
      requests: { cpu: '100m', memory: '128Mi' },
      limits: { cpu: '1', memory: '512Mi' },
    });
    const pod = dep.spec.template.spec;
    expect(pod.nodeSelector).toEqual({ 'node-role.kubernetes.io/control-plane': '' });
    expect(pod.tolerations).toEqual([
      { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    expect(pod.imagePullSecrets).toEqual([{ name: 'registry-creds' }]);
    expect(pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    const mwc = find<K8sObject & { webhooks: Webhook[] }>(objs, 'MutatingWebhookConfiguration');
    expect(mwc.webhooks.map((w) => [w.failurePolicy, w.timeoutSeconds])).toEqual([
      ['Ignore', 3],
      ['Ignore', 3],
    ]);
    const sm = find<K8sObject & { spec: { endpoints: { port: string; path: string }[] } }>(
      objs,
      'ServiceMonitor',
    );
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(sm.metadata.labels?.['release']).toBe('prometheus');
    expect(sm.spec.endpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics' })]);
    find(objs, 'PodMonitor');
    expect(
      find<K8sObject & { spec: { maxUnavailable: number } }>(objs, 'PodDisruptionBudget').spec.maxUnavailable,
    ).toBe(1);
    // nodeAgent.enabled=false: no DaemonSet, no agent RBAC, no admission policy.
    expect(all(objs, 'DaemonSet')).toHaveLength(0);
    expect(objs.filter((o) => o.metadata.name.includes('node-agent'))).toHaveLength(0);
    expect(find(objs, 'ConfigMap', 'smc-operator-dashboard').metadata.labels?.['team']).toBe('networking');
  });

  it('the directory ConfigMap policy is rendered for the operator ServiceAccount, and can be turned off', async () => {
    const objs = await template();
    const vap = find<K8sObject & { spec: { matchConditions: { expression: string }[] } }>(
      objs,
      'ValidatingAdmissionPolicy',
      'smc-operator-directory-configmaps',
    );
    expect(vap.spec.matchConditions[0]?.expression).toBe(
      'request.userInfo.username == "system:serviceaccount:smc-system:smc-operator"',
    );
    find(objs, 'ValidatingAdmissionPolicyBinding', 'smc-operator-directory-configmaps');
    const off = await template(['--set', 'operator.directoryAdmissionPolicy.enabled=false']);
    expect(off.filter((o) => o.metadata.name === 'smc-operator-directory-configmaps')).toHaveLength(0);
  });

  it.each([
    [['--set', 'operator.replicas=0'], /operator\/replicas.*minimum/],
    [['--set', 'webhook.failurePolicy=Sometimes'], /webhook\/failurePolicy.*'Fail', 'Ignore'/],
    [['--set', 'webhook.timeoutSeconds=31'], /webhook\/timeoutSeconds.*maximum/],
    [['--set', 'image.pullPolicy=Maybe'], /image\/pullPolicy/],
    [['--set', 'cluster='], /cluster.*minLength|cluster.*at least/],
    [['--set', 'serviceMonitor.enabled=yes'], /serviceMonitor\/enabled.*boolean/],
    [['--set', 'nodeAgent.inventorySource=magic'], /nodeAgent\/inventorySource/],
    [['--set', 'nodeAgent.rescanIntervalSeconds=1'], /nodeAgent\/rescanIntervalSeconds.*minimum/],
    [['--set', 'operator.resources.requests.cpu=lots'], /operator\/resources\/requests\/cpu/],
    [['--set', 'operator.tolerations[0].operator=Maybe'], /tolerations\/0\/operator/],
    [['--set', 'unknownKey=1'], /additional properties 'unknownKey' not allowed/],
    [['--set', 'operator.replica=3'], /additional properties 'replica' not allowed/],
    [['--set', 'image.digest=sha256:nothex'], /image\/digest/],
    [['--set', 'injection.sidecarMode=sometimes'], /injection\/sidecarMode/],
    [['--set', 'injection.ports.smc=0'], /injection\/ports\/smc.*minimum/],
    [['--set', 'injection.interception.excludeOutboundUids[0]=envoy'], /excludeOutboundUids\/0/],
    [['--set', 'injection.interception.redirect=some'], /interception\/redirect/],
  ])('values.schema.json rejects %j', async (args, message) => {
    const r = await execHelm(helmBin, ['template', RELEASE, CHART, '--kube-version', KUBE_VERSION, ...args]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(r.stderr).toMatch(message);
  });

  it('rejects a PodDisruptionBudget with both minAvailable and maxUnavailable', async () => {
    const r = await execHelm(helmBin, [
      'template',
      RELEASE,
      CHART,
      '--kube-version',
      KUBE_VERSION,
      '--set',
      'operator.podDisruptionBudget.maxUnavailable=1',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/either minAvailable or maxUnavailable/);
  });
});

describe('helm template: cert-manager for the webhook certificate, CRDs from templates', () => {
  interface Certificate extends K8sObject {
    spec: {
      secretName: string;
      isCA?: boolean;
      commonName?: string;
      dnsNames?: string[];
      duration?: string;
      renewBefore?: string;
      usages?: string[];
      privateKey?: { algorithm: string; rotationPolicy?: string };
      issuerRef: { name: string; kind: string; group: string };
    };
  }
  type Issuer = K8sObject & { spec: { selfSigned?: object; ca?: { secretName: string } } };
  type Mwc = K8sObject & { metadata: { annotations?: Record<string, string> }; webhooks: Webhook[] };
  interface OperatorPod extends PodSpec {
    volumes?: { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] } }[];
  }
  const CM = ['--set', 'webhook.certManager.enabled=true'];
  const certManagerObjects = (objs: K8sObject[]): K8sObject[] =>
    objs.filter((o) => o.apiVersion.startsWith('cert-manager.io/'));
  const operatorRules = (objs: K8sObject[]): V1PolicyRule[] => [
    ...find<RoleObject>(objs, 'ClusterRole', 'smc-operator').rules,
    ...find<RoleObject>(objs, 'Role', 'smc-operator').rules,
  ];
  /** Every single permission the rules grant, as "group/resource/name:verb" ("*" name: any). */
  const permissions = (rules: V1PolicyRule[]): Set<string> =>
    new Set(
      rules.flatMap((r) =>
        (r.apiGroups ?? []).flatMap((g) =>
          (r.resources ?? []).flatMap((res) =>
            (r.resourceNames?.length ? r.resourceNames : ['*']).flatMap((n) =>
              r.verbs.map((v) => `${g}/${res}/${n}:${v}`),
            ),
          ),
        ),
      ),
    );
  const WEBHOOK_CERT_RIGHTS = [
    '/secrets/smc-operator-webhook-tls:get',
    '/secrets/smc-operator-webhook-tls:update',
    '/secrets/smc-operator-webhook-tls:patch',
    'admissionregistration.k8s.io/mutatingwebhookconfigurations/smc-operator:get',
    'admissionregistration.k8s.io/mutatingwebhookconfigurations/smc-operator:patch',
  ];

  it('off by default: no cert-manager objects; the operator owns the Secret and patches the caBundle', async () => {
    const objs = await template();
    expect(certManagerObjects(objs)).toEqual([]);
    const mwc = find<Mwc>(objs, 'MutatingWebhookConfiguration');
    expect(mwc.metadata.annotations?.['cert-manager.io/inject-ca-from']).toBeUndefined();
    const dep = find<Workload>(objs, 'Deployment', 'smc-operator');
    const op = containerOf(dep, 'operator');
    expect(op.args?.some((a) => a.startsWith('--webhook-cert-dir'))).toBe(false);
    expect(op.args).toContain('--webhook-secret-name=smc-operator-webhook-tls');
    expect((op.volumeMounts ?? []).map((m) => m.name)).toEqual(['tmp']);
    const granted = permissions(operatorRules(objs));
    for (const p of [...WEBHOOK_CERT_RIGHTS, '/secrets/*:create']) expect(granted, p).toContain(p);
  });

  it('webhook.certManager.enabled: a self-signed CA, a Certificate for the Service, inject-ca-from, the Secret mounted', async () => {
    const objs = await template(CM);
    const issuers = all<Issuer>(objs, 'Issuer');
    const certs = all<Certificate>(objs, 'Certificate');
    expect(issuers.map((i) => i.metadata.name).sort()).toEqual([
      'smc-operator-webhook-ca',
      'smc-operator-webhook-ca-selfsigned',
    ]);
    for (const o of [...issuers, ...certs]) {
      expect(o.apiVersion).toBe('cert-manager.io/v1');
      expect(o.metadata.namespace).toBe('smc-system');
    }
    // cert-manager's recommended CA bootstrap: selfSigned Issuer -> CA Certificate -> CA Issuer.
    expect(find<Issuer>(objs, 'Issuer', 'smc-operator-webhook-ca-selfsigned').spec).toEqual({
      selfSigned: {},
    });
    const ca = find<Certificate>(objs, 'Certificate', 'smc-operator-webhook-ca');
    expect(ca.spec).toMatchObject({
      isCA: true,
      secretName: 'smc-operator-webhook-ca',
      duration: '87600h',
      issuerRef: { name: 'smc-operator-webhook-ca-selfsigned', kind: 'Issuer', group: 'cert-manager.io' },
    });
    expect(find<Issuer>(objs, 'Issuer', 'smc-operator-webhook-ca').spec).toEqual({
      ca: { secretName: 'smc-operator-webhook-ca' },
    });
    const serving = find<Certificate>(objs, 'Certificate', 'smc-operator-webhook');
    expect(serving.spec.isCA).toBeUndefined();
    expect(serving.spec.secretName).toBe('smc-operator-webhook-tls');
    // Exactly the names the operator would put in its own certificate (config.ts webhookHosts).
    expect(serving.spec.dnsNames).toEqual([
      'smc-operator-webhook.smc-system.svc',
      'smc-operator-webhook',
      'smc-operator-webhook.smc-system',
      'smc-operator-webhook.smc-system.svc.cluster.local',
    ]);
    expect(serving.spec.usages).toEqual(['server auth', 'digital signature']);
    expect(serving.spec.privateKey).toEqual({ algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' });
    expect([serving.spec.duration, serving.spec.renewBefore]).toEqual(['2160h', '360h']);
    expect(serving.spec.issuerRef).toEqual({
      name: 'smc-operator-webhook-ca',
      kind: 'Issuer',
      group: 'cert-manager.io',
    });

    const mwc = find<Mwc>(objs, 'MutatingWebhookConfiguration');
    expect(mwc.metadata.annotations?.['cert-manager.io/inject-ca-from']).toBe(
      'smc-system/smc-operator-webhook',
    );
    for (const w of mwc.webhooks) expect(w.clientConfig.caBundle).toBeUndefined();

    const dep = find<Workload>(objs, 'Deployment', 'smc-operator');
    const op = containerOf(dep, 'operator');
    expect(op.args).toContain('--webhook-cert-dir=/var/run/smc-operator/webhook-tls');
    expect(op.volumeMounts).toContainEqual({
      name: 'webhook-tls',
      mountPath: '/var/run/smc-operator/webhook-tls',
      readOnly: true,
    });
    const pod = dep.spec.template.spec as OperatorPod;
    const vol = pod.volumes?.find((v) => v.name === 'webhook-tls');
    expect(vol?.secret?.secretName).toBe('smc-operator-webhook-tls');
    // Only the serving pair: the CA's key never reaches the operator.
    expect(vol?.secret?.items?.map((i) => i.key)).toEqual(['tls.crt', 'tls.key']);
  });

  it('webhook.certManager.enabled: the operator gets no rights on the webhook Secret nor on the MutatingWebhookConfiguration', async () => {
    const objs = await template(CM);
    const granted = permissions(operatorRules(objs));
    expect([...granted].filter((p) => p.includes('mutatingwebhookconfigurations'))).toEqual([]);
    expect([...granted].filter((p) => p.includes('smc-operator-webhook'))).toEqual([]);
    // Exactly those rights are gone: everything else is granted as without cert-manager (a
    // Secret "create" may stay for another Secret of the operator's; it cannot name this one).
    const selfManaged = permissions(operatorRules(await template()));
    expect([...granted].sort()).toEqual(
      [...selfManaged].filter((p) => !WEBHOOK_CERT_RIGHTS.includes(p)).sort(),
    );
  });

  it('webhook.certManager.issuerRef: the given issuer signs, and the chart makes no CA', async () => {
    const objs = await template([
      ...CM,
      '--set',
      'webhook.certManager.issuerRef.name=corp-ca',
      '--set',
      'webhook.certManager.issuerRef.kind=ClusterIssuer',
      '--set',
      'webhook.certManager.duration=720h',
      '--set',
      'webhook.certManager.renewBefore=240h',
      '--set',
      'webhook.certSecretName=my-webhook-tls',
    ]);
    expect(all(objs, 'Issuer')).toHaveLength(0);
    const certs = all<Certificate>(objs, 'Certificate');
    expect(certs.map((c) => c.metadata.name)).toEqual(['smc-operator-webhook']);
    expect(certs[0]?.spec).toMatchObject({
      secretName: 'my-webhook-tls',
      duration: '720h',
      renewBefore: '240h',
      issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
    });
    const pod = find<Workload>(objs, 'Deployment', 'smc-operator').spec.template.spec as OperatorPod;
    expect(pod.volumes?.find((v) => v.name === 'webhook-tls')?.secret?.secretName).toBe('my-webhook-tls');
    // An Issuer kind defaults to the namespaced Issuer of cert-manager.io.
    const plain = await template([...CM, '--set', 'webhook.certManager.issuerRef.name=ns-issuer']);
    expect(find<Certificate>(plain, 'Certificate').spec.issuerRef).toEqual({
      name: 'ns-issuer',
      kind: 'Issuer',
      group: 'cert-manager.io',
    });
  });

  it('helm lint passes with cert-manager on and the CRDs off', async () => {
    const r = await execHelm(helmBin, [
      'lint',
      CHART,
      '--strict',
      '--kube-version',
      KUBE_VERSION,
      ...CM,
      '--set',
      'crds.enabled=false',
    ]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  });

  it('renders the CRDs by default, kept on uninstall, equal to crds/ but for labels and annotations', async () => {
    const objs = await template();
    const crds = all<CrdObject>(objs, 'CustomResourceDefinition');
    const source = readdirSync(repo('crds'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => loadYaml<CrdObject>(readFileSync(repo(`crds/${f}`), 'utf8')));
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(source.map((c) => c.metadata.name).sort());
    for (const crd of crds) {
      const src = source.find((c) => c.metadata.name === crd.metadata.name);
      expect(crd.spec, crd.metadata.name).toEqual(src?.spec);
      expect(crd.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
      expect(crd.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('Helm');
      expect(crd.metadata.labels?.['app.kubernetes.io/part-of']).toBe('smc-operator');
      expect(crd.metadata.namespace).toBeUndefined();
    }
  });

  it('crds.keep=false renders them without the keep policy; crds.enabled=false renders none', async () => {
    const notKept = all<CrdObject>(await template(['--set', 'crds.keep=false']), 'CustomResourceDefinition');
    expect(notKept.length).toBeGreaterThan(0);
    for (const crd of notKept) expect(crd.metadata.annotations).toBeUndefined();
    const off = await template(['--set', 'crds.enabled=false']);
    expect(all(off, 'CustomResourceDefinition')).toHaveLength(0);
    // Everything else is unchanged.
    const on = await template();
    expect(off.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(
      on.filter((o) => o.kind !== 'CustomResourceDefinition').map((o) => `${o.kind}/${o.metadata.name}`),
    );
  });

  it.each([
    [['--set', 'webhook.certManager.enabled=yes'], /certManager\/enabled.*boolean/],
    [['--set', 'webhook.certManager.issuerRef.nmae=x'], /additional properties 'nmae' not allowed/],
    [['--set', 'webhook.certManager.issuerRef.name=Not_A_Name'], /issuerRef\/name/],
    [['--set', 'webhook.certManager.duration=soon'], /certManager\/duration/],
    [['--set', 'crds.enabled=no'], /crds\/enabled.*boolean/],
    [['--set', 'crds.keep=maybe'], /crds\/keep.*boolean/],
    [['--set', 'crds.install=true'], /additional properties 'install' not allowed/],
  ])('values.schema.json rejects %j', async (args, message) => {
    const r = await execHelm(helmBin, ['template', RELEASE, CHART, '--kube-version', KUBE_VERSION, ...args]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(r.stderr).toMatch(message);
  });
});

// ---------------------------------------------------------------------------------------------

const NS = 'smc-system';
const OPERATOR_SA = `system:serviceaccount:${NS}:smc-operator`;
const AGENT_SA = `system:serviceaccount:${NS}:smc-operator-node-agent`;
const SA_GROUPS = ['system:serviceaccounts', `system:serviceaccounts:${NS}`, 'system:authenticated'];
const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

/**
 * A client that acts as `user` (with extras) through the admin's impersonation rights. For a
 * service-account user name the API server adds the service-account groups itself.
 */
class ImpersonatingKubeConfig extends KubeConfig {
  constructor(
    base: KubeConfig,
    private readonly user: string,
    private readonly extra: Record<string, string> = {},
  ) {
    super();
    this.loadFromString(base.exportConfig());
  }

  private get impersonation(): Record<string, string> {
    const headers: Record<string, string> = { 'Impersonate-User': this.user };
    for (const [k, v] of Object.entries(this.extra))
      headers[`Impersonate-Extra-${encodeURIComponent(k)}`] = v;
    return headers;
  }

  /** client-node's generated API clients. */
  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    for (const [k, v] of Object.entries(this.impersonation)) context.setHeaderParam(k, v);
  }

  /** The operator's KubeClient (operator/src/kube/client.ts), which the node agent's store uses too. */
  override async applyToHTTPSOptions(opts: Parameters<KubeConfig['applyToHTTPSOptions']>[0]): Promise<void> {
    await super.applyToHTTPSOptions(opts);
    opts.headers = { ...opts.headers, ...this.impersonation };
  }
}

function codeOf(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'number')
    return err.code;
  return undefined;
}

describe('helm install into a real API server', () => {
  let cp: ControlPlane;
  let authz: AuthorizationV1Api;

  async function can(user: string, attrs: V1ResourceAttributes): Promise<boolean> {
    const review = await authz.createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: { user, groups: SA_GROUPS, resourceAttributes: attrs },
      },
    });
    return review.status?.allowed === true;
  }

  beforeAll(async () => {
    cp = await startControlPlane();
    authz = cp.kubeConfig.makeApiClient(AuthorizationV1Api);
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await core.createNamespace({ body: { metadata: { name: 'apps' } } });
    await cp.helm(['install', RELEASE, CHART, '--namespace', NS, '--wait=false'], { timeoutMs: 180_000 });
    await untilPoliciesEnforced();
  });

  // The API server starts enforcing a new ValidatingAdmissionPolicy a moment after it is created;
  // dry-run probes (which admission sees, and which persist nothing) tell when both are live.
  async function untilPoliciesEnforced(): Promise<void> {
    const asOperator = new ImpersonatingKubeConfig(cp.kubeConfig, OPERATOR_SA).makeApiClient(CoreV1Api);
    const asAgent = new ImpersonatingKubeConfig(cp.kubeConfig, AGENT_SA, {
      [NODE_NAME_EXTRA]: 'node-b',
    }).makeApiClient(CustomObjectsApi);
    const refused = (p: Promise<unknown>): Promise<boolean> =>
      p.then(
        () => false,
        (e: unknown) => codeOf(e) === 403,
      );
    const deadline = Date.now() + 30_000;
    for (;;) {
      const operatorRefused = await refused(
        asOperator.createNamespacedConfigMap({
          namespace: 'apps',
          body: { metadata: { name: 'policy-probe' } },
          dryRun: 'All',
        }),
      );
      const agentRefused = await refused(
        asAgent.createClusterCustomObject({
          group: 'smc.dev',
          version: 'v1alpha1',
          plural: 'smcnodes',
          body: buildSmcNode('policy-probe', rxeInventory(), new Date()),
          dryRun: 'All',
        }),
      );
      if (operatorRefused && agentRefused) return;
      if (Date.now() > deadline)
        throw new Error(
          `the admission policies were not enforced within 30 s (operator refused: ${operatorRefused}, agent refused: ${agentRefused})`,
        );
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  afterAll(async () => {
    await cp?.stop();
  });

  it('creates the CRDs, RBAC, workloads, webhook, admission policy and dashboard', async () => {
    const kc = cp.kubeConfig;
    const crds = kc.makeApiClient(ApiextensionsV1Api);
    for (const name of ['smcpolicies.smc.dev', 'smcnodes.smc.dev', 'smctenants.smc.dev']) {
      const crd = await crds.readCustomResourceDefinition({ name });
      expect(crd.spec.versions.map((v) => v.name)).toContain('v1alpha1');
    }
    const core = kc.makeApiClient(CoreV1Api);
    await core.readNamespacedServiceAccount({ name: 'smc-operator', namespace: NS });
    await core.readNamespacedServiceAccount({ name: 'smc-operator-node-agent', namespace: NS });
    await core.readNamespacedService({ name: 'smc-operator-webhook', namespace: NS });
    await core.readNamespacedService({ name: 'smc-operator-metrics', namespace: NS });
    const cm = await core.readNamespacedConfigMap({ name: 'smc-operator-dashboard', namespace: NS });
    expect(cm.metadata?.labels?.['grafana_dashboard']).toBe('1');
    expect(Object.keys(cm.data ?? {})).toEqual(['smc-operator.json']);

    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    for (const name of ['smc-operator', 'smc-operator-directory', 'smc-operator-node-agent']) {
      await rbac.readClusterRole({ name });
      await rbac.readClusterRoleBinding({ name });
    }
    await rbac.readNamespacedRole({ name: 'smc-operator', namespace: NS });
    await rbac.readNamespacedRoleBinding({ name: 'smc-operator', namespace: NS });

    const apps = kc.makeApiClient(AppsV1Api);
    const dep = await apps.readNamespacedDeployment({ name: 'smc-operator', namespace: NS });
    expect(dep.spec?.replicas).toBe(2);
    expect(dep.spec?.template.spec?.containers[0]?.securityContext?.readOnlyRootFilesystem).toBe(true);
    const ds = await apps.readNamespacedDaemonSet({ name: 'smc-operator-node-agent', namespace: NS });
    expect(ds.spec?.template.spec?.containers[0]?.args).toContain('--inventory-source=sysfs');
    await kc
      .makeApiClient(PolicyV1Api)
      .readNamespacedPodDisruptionBudget({ name: 'smc-operator', namespace: NS });

    const adm = kc.makeApiClient(AdmissionregistrationV1Api);
    const mwc = await adm.readMutatingWebhookConfiguration({ name: 'smc-operator' });
    expect(mwc.webhooks?.map((w) => [w.name, w.failurePolicy, w.sideEffects])).toEqual([
      ['namespace.inject.smc.dev', 'Fail', 'None'],
      ['pod.inject.smc.dev', 'Fail', 'None'],
    ]);
    await adm.readValidatingAdmissionPolicy({ name: 'smc-operator-node-agent-own-smcnode' });
    await adm.readValidatingAdmissionPolicyBinding({ name: 'smc-operator-node-agent-own-smcnode' });
    await adm.readValidatingAdmissionPolicy({ name: 'smc-operator-tenant-binding' });
    await adm.readValidatingAdmissionPolicyBinding({ name: 'smc-operator-tenant-binding' });
  });

  it('the operator ServiceAccount may do what it needs', async () => {
    const allowed: V1ResourceAttributes[] = [
      { verb: 'list', resource: 'pods' },
      { verb: 'watch', resource: 'pods', namespace: 'apps' },
      { verb: 'get', resource: 'namespaces', name: 'apps' },
      { verb: 'watch', group: 'smc.dev', resource: 'smcnodes' },
      { verb: 'list', group: 'smc.dev', resource: 'smcpolicies' },
      { verb: 'patch', group: 'smc.dev', resource: 'smcpolicies', subresource: 'status', namespace: 'apps' },
      { verb: 'update', group: 'smc.dev', resource: 'smcpolicies', subresource: 'status', namespace: 'apps' },
      {
        verb: 'update',
        group: 'smc.dev',
        resource: 'smcpolicies',
        subresource: 'finalizers',
        namespace: 'apps',
      },
      { verb: 'create', group: '', resource: 'configmaps', namespace: 'apps' },
      { verb: 'update', group: '', resource: 'configmaps', namespace: 'apps', name: 'smc-directory-0' },
      { verb: 'delete', group: '', resource: 'configmaps', namespace: 'apps', name: 'smc-directory-3' },
      // Its own directory ConfigMaps only: listed and watched by name across namespaces.
      { verb: 'watch', group: '', resource: 'configmaps', name: 'smc-directory-0' },
      { verb: 'list', group: '', resource: 'configmaps', name: 'smc-directory-63' },
      { verb: 'get', group: '', resource: 'configmaps', namespace: 'apps', name: 'smc-directory-1' },
      { verb: 'watch', group: 'smc.dev', resource: 'smctenants' },
      { verb: 'get', resource: 'secrets', namespace: NS, name: 'smc-operator-directory-key' },
      { verb: 'list', resource: 'nodes' },
      { verb: 'create', resource: 'events', namespace: 'apps' },
      { verb: 'patch', group: 'events.k8s.io', resource: 'events', namespace: 'apps' },
      {
        verb: 'get',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: NS,
        name: 'smc-operator-leader',
      },
      {
        verb: 'update',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: NS,
        name: 'smc-operator-leader',
      },
      { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: NS },
      { verb: 'get', resource: 'secrets', namespace: NS, name: 'smc-operator-webhook-tls' },
      { verb: 'update', resource: 'secrets', namespace: NS, name: 'smc-operator-webhook-tls' },
      { verb: 'create', resource: 'secrets', namespace: NS },
      {
        verb: 'patch',
        group: 'admissionregistration.k8s.io',
        resource: 'mutatingwebhookconfigurations',
        name: 'smc-operator',
      },
    ];
    for (const attrs of allowed) expect(await can(OPERATOR_SA, attrs), JSON.stringify(attrs)).toBe(true);
  });

  it('the operator ServiceAccount is denied everything else', async () => {
    const denied: V1ResourceAttributes[] = [
      { verb: 'get', resource: 'secrets', namespace: 'apps', name: 'db-password' },
      { verb: 'list', resource: 'secrets', namespace: NS },
      { verb: 'get', resource: 'secrets', namespace: NS, name: 'some-other-secret' },
      { verb: 'list', resource: 'secrets' },
      { verb: 'delete', resource: 'pods', namespace: 'apps', name: 'web-0' },
      { verb: 'create', resource: 'pods', namespace: 'apps' },
      { verb: 'patch', resource: 'pods', namespace: 'apps', name: 'web-0' },
      { verb: 'delete', resource: 'namespaces', name: 'apps' },
      { verb: 'create', group: 'smc.dev', resource: 'smcpolicies', namespace: 'apps' },
      { verb: 'delete', group: 'smc.dev', resource: 'smcpolicies', namespace: 'apps', name: 'p' },
      { verb: 'update', group: 'smc.dev', resource: 'smcnodes', name: 'node-a' },
      {
        verb: 'update',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: NS,
        name: 'other-lease',
      },
      {
        verb: 'get',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: 'kube-system',
        name: 'smc-operator-leader',
      },
      {
        verb: 'patch',
        group: 'admissionregistration.k8s.io',
        resource: 'mutatingwebhookconfigurations',
        name: 'someone-elses-webhook',
      },
      { verb: 'create', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' },
      {
        verb: 'update',
        group: 'admissionregistration.k8s.io',
        resource: 'validatingadmissionpolicies',
        name: 'smc-operator-node-agent-own-smcnode',
      },
      { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' },
      { verb: 'update', resource: 'nodes', name: 'node-a' },
      { verb: 'patch', resource: 'configmaps', namespace: 'apps', name: 'smc-directory-0' },
      // No ConfigMap but its own directory ones (issue 12 item 9).
      { verb: 'list', resource: 'configmaps' },
      { verb: 'watch', resource: 'configmaps' },
      { verb: 'list', resource: 'configmaps', namespace: 'apps' },
      { verb: 'get', resource: 'configmaps', namespace: 'apps', name: 'app-config' },
      { verb: 'get', resource: 'configmaps', namespace: 'apps', name: 'smc-directory-64' },
      { verb: 'create', group: 'smc.dev', resource: 'smctenants' },
      { verb: 'update', resource: 'secrets', namespace: NS, name: 'smc-operator-directory-key' },
    ];
    for (const attrs of denied) expect(await can(OPERATOR_SA, attrs), JSON.stringify(attrs)).toBe(false);
  });

  it('the node agent ServiceAccount may only write SmcNodes', async () => {
    for (const verb of ['create', 'get', 'update', 'patch']) {
      expect(await can(AGENT_SA, { verb, group: 'smc.dev', resource: 'smcnodes', name: 'node-a' })).toBe(
        true,
      );
    }
    expect(
      await can(AGENT_SA, {
        verb: 'update',
        group: 'smc.dev',
        resource: 'smcnodes',
        subresource: 'status',
        name: 'node-a',
      }),
    ).toBe(true);
    const denied: V1ResourceAttributes[] = [
      { verb: 'get', group: 'smc.dev', resource: 'smcpolicies', namespace: 'apps', name: 'p' },
      { verb: 'list', group: 'smc.dev', resource: 'smcpolicies' },
      { verb: 'delete', group: 'smc.dev', resource: 'smcnodes', name: 'node-a' },
      { verb: 'list', group: 'smc.dev', resource: 'smcnodes' },
      { verb: 'get', resource: 'secrets', namespace: NS, name: 'smc-operator-webhook-tls' },
      { verb: 'list', resource: 'pods' },
      { verb: 'get', resource: 'configmaps', namespace: 'apps', name: 'smc-directory-0' },
    ];
    for (const attrs of denied) expect(await can(AGENT_SA, attrs), JSON.stringify(attrs)).toBe(false);
  });

  it('the node agent publishes its SmcNode from an inventory, and rewrites it only on change', async () => {
    const agentKc = new ImpersonatingKubeConfig(cp.kubeConfig, AGENT_SA, { [NODE_NAME_EXTRA]: 'node-a' });
    const store = new KubeSmcNodeStore(agentKc);
    const first = await publishSmcNode(
      store,
      buildSmcNode('node-a', rxeInventory(), new Date('2025-01-01T00:00:00Z')),
    );
    expect(first.result).toBe('created');
    expect(first.writes).toEqual(['create', 'status']);

    const admin = cp.kubeConfig.makeApiClient(CustomObjectsApi);
    const read = async () =>
      (await admin.getClusterCustomObject({
        group: 'smc.dev',
        version: 'v1alpha1',
        plural: 'smcnodes',
        name: 'node-a',
      })) as {
        metadata: { resourceVersion: string; labels: Record<string, string> };
        spec: { nodeName: string };
        status: {
          deviceCount: number;
          observedTime: string;
          devices: { name: string; ports: { gids: { vlan?: number }[] }[] }[];
        };
      };
    const live = await read();
    expect(live.spec.nodeName).toBe('node-a');
    expect(live.metadata.labels['app.kubernetes.io/managed-by']).toBe('smc-node-agent');
    expect(live.status.deviceCount).toBe(1);
    expect(live.status.devices[0]?.name).toBe('rxe0');
    expect(live.status.devices[0]?.ports[0]?.gids.map((g) => g.vlan)).toEqual([undefined, undefined, 100]);
    expect(live.status.observedTime).toBe('2025-01-01T00:00:00.000Z');

    const again = await publishSmcNode(
      store,
      buildSmcNode('node-a', rxeInventory(), new Date('2025-01-01T00:05:00Z')),
    );
    expect(again.result).toBe('unchanged');
    expect((await read()).metadata.resourceVersion).toBe(live.metadata.resourceVersion);

    const changed = await publishSmcNode(
      store,
      buildSmcNode('node-a', { ...rxeInventory(), vlans: [] }, new Date('2025-01-01T00:10:00Z')),
    );
    expect(changed.result).toBe('updated');
    expect(changed.writes).toEqual(['status']);
    const after = await read();
    expect(after.metadata.resourceVersion).not.toBe(live.metadata.resourceVersion);
    expect(after.status.devices[0]?.ports[0]?.gids.map((g) => g.vlan)).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('the admission policy keeps a node agent to its own node', async () => {
    const asNodeB = new KubeSmcNodeStore(
      new ImpersonatingKubeConfig(cp.kubeConfig, AGENT_SA, { [NODE_NAME_EXTRA]: 'node-b' }),
    );
    const other = buildSmcNode('node-c', rxeInventory(), new Date());
    const err = await publishSmcNode(asNodeB, other).catch((e: unknown) => e);
    expect(codeOf(err)).toBe(403);
    expect(String(err)).toMatch(/may only write SmcNode node-b, not node-c/);
    // Nor may it overwrite another node's existing object.
    const hijack = await publishSmcNode(
      asNodeB,
      buildSmcNode('node-a', { devices: [], vlans: [] }, new Date()),
    ).catch((e: unknown) => e);
    expect(codeOf(hijack)).toBe(403);
    // Credentials without a node claim (not from a pod) are refused outright.
    const noClaim = new KubeSmcNodeStore(new ImpersonatingKubeConfig(cp.kubeConfig, AGENT_SA));
    const err2 = await publishSmcNode(noClaim, buildSmcNode('node-d', rxeInventory(), new Date())).catch(
      (e: unknown) => e,
    );
    expect(codeOf(err2)).toBe(403);
    expect(String(err2)).toMatch(/no node claim/);
    // Its own node works.
    expect((await publishSmcNode(asNodeB, buildSmcNode('node-b', rxeInventory(), new Date()))).result).toBe(
      'created',
    );
  });

  it('the admission policy keeps the operator to its directory ConfigMaps', async () => {
    const asOperator = new ImpersonatingKubeConfig(cp.kubeConfig, OPERATOR_SA).makeApiClient(CoreV1Api);
    const admin = cp.kubeConfig.makeApiClient(CoreV1Api);
    const labelled = { 'smc.dev/directory': 'true' };
    await asOperator.createNamespacedConfigMap({
      namespace: 'apps',
      body: { metadata: { name: 'smc-directory-0', labels: labelled }, data: { 'shard-0.json': '{}' } },
    });
    const cm = await asOperator.readNamespacedConfigMap({ name: 'smc-directory-0', namespace: 'apps' });
    await asOperator.replaceNamespacedConfigMap({
      name: 'smc-directory-0',
      namespace: 'apps',
      body: { ...cm, data: { 'shard-0.json': '{"version":1}' } },
    });
    const forbidden = async (p: Promise<unknown>): Promise<string> => {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(codeOf(err)).toBe(403);
      return String((err as { body?: unknown }).body);
    };
    // Another name, or the right name without the label: refused by the policy, although RBAC allows it.
    expect(
      await forbidden(
        asOperator.createNamespacedConfigMap({
          namespace: 'apps',
          body: { metadata: { name: 'app-config' } },
        }),
      ),
    ).toMatch(/may only write its peer-directory ConfigMaps/);
    await forbidden(
      asOperator.createNamespacedConfigMap({
        namespace: 'apps',
        body: { metadata: { name: 'smc-directory-1' } },
      }),
    );
    await admin.createNamespacedConfigMap({
      namespace: 'apps',
      body: { metadata: { name: 'smc-directory-7' }, data: { owner: 'someone else' } },
    });
    const foreign = await admin.readNamespacedConfigMap({ name: 'smc-directory-7', namespace: 'apps' });
    await forbidden(
      asOperator.replaceNamespacedConfigMap({
        name: 'smc-directory-7',
        namespace: 'apps',
        body: { ...foreign, metadata: { ...foreign.metadata, labels: labelled } },
      }),
    );
    await forbidden(asOperator.deleteNamespacedConfigMap({ name: 'smc-directory-7', namespace: 'apps' }));
    await admin.createNamespacedConfigMap({ namespace: 'apps', body: { metadata: { name: 'app-config' } } });
    await forbidden(asOperator.deleteNamespacedConfigMap({ name: 'app-config', namespace: 'apps' }));
    await asOperator.deleteNamespacedConfigMap({ name: 'smc-directory-0', namespace: 'apps' });
  });

  it('helm upgrade keeps the caBundle the operator filled in, and applies new values', async () => {
    const adm = cp.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    const caBundle = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString(
      'base64',
    );
    // What the operator does at runtime (its RBAC allows exactly this patch).
    const operatorKc = new ImpersonatingKubeConfig(cp.kubeConfig, OPERATOR_SA);
    const opAdm = operatorKc.makeApiClient(AdmissionregistrationV1Api);
    const current = await opAdm.readMutatingWebhookConfiguration({ name: RELEASE });
    const ops = (current.webhooks ?? []).flatMap((w, i) => [
      { op: 'test', path: `/webhooks/${i}/name`, value: w.name },
      { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle },
    ]);
    await opAdm.patchMutatingWebhookConfiguration(
      { name: RELEASE, body: ops },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    await cp.helm([
      'upgrade',
      RELEASE,
      CHART,
      '--namespace',
      NS,
      '--wait=false',
      '--reuse-values',
      '--set',
      'webhook.failurePolicy=Ignore',
      '--set',
      'operator.replicas=3',
    ]);
    const mwc = await adm.readMutatingWebhookConfiguration({ name: 'smc-operator' });
    expect(mwc.webhooks?.map((w) => [w.failurePolicy, w.clientConfig.caBundle])).toEqual([
      ['Ignore', caBundle],
      ['Ignore', caBundle],
    ]);
    const dep = await cp.kubeConfig
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ name: 'smc-operator', namespace: NS });
    expect(dep.spec?.replicas).toBe(3);
  });

  it("the node agent entry point publishes this machine's SmcNode and serves health and metrics", async () => {
    const abort = new AbortController();
    let ports: { health: number; metrics: number } | undefined;
    const run = runNodeAgent(
      ['--rescan-interval=5', '--health-port=0', '--metrics-port=0', '--log-level=warn'],
      { NODE_NAME: 'chart-test-host', KUBECONFIG: cp.kubeconfigPath },
      { signal: abort.signal, onListening: (p) => (ports = p) },
    );
    try {
      const get = async (port: number, path: string) => {
        const res = await fetch(`http://127.0.0.1:${port}${path}`);
        return { status: res.status, text: await res.text() };
      };
      let ready = 0;
      for (let i = 0; i < 200 && ready !== 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        if (ports) ready = (await get(ports.health, '/readyz')).status;
      }
      expect(ready).toBe(200);
      if (!ports) throw new Error('not listening');
      expect((await get(ports.health, '/healthz')).status).toBe(200);
      const metrics = await get(ports.metrics, '/metrics');
      expect(metrics.text).toMatch(/smc_node_agent_scans_total\{result="ok"\} [1-9]/);
      expect(metrics.text).toContain('smc_node_agent_smcnode_writes_total{kind="create"} 1');
      const obj = (await cp.kubeConfig.makeApiClient(CustomObjectsApi).getClusterCustomObject({
        group: 'smc.dev',
        version: 'v1alpha1',
        plural: 'smcnodes',
        name: 'chart-test-host',
      })) as { spec: { nodeName: string }; status: { deviceCount: number } };
      expect(obj.spec.nodeName).toBe('chart-test-host');
      expect(obj.status.deviceCount).toBeGreaterThanOrEqual(0);
    } finally {
      abort.abort();
      expect(await run).toBe(0);
    }
  });

  it('helm uninstall removes the release but keeps the CRDs and SmcNodes', async () => {
    await cp.helm(['uninstall', RELEASE, '--namespace', NS, '--wait=false']);
    const adm = cp.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    await expect(adm.readMutatingWebhookConfiguration({ name: 'smc-operator' })).rejects.toSatisfy(
      (e: unknown) => codeOf(e) === 404,
    );
    await expect(
      cp.kubeConfig.makeApiClient(RbacAuthorizationV1Api).readClusterRole({ name: 'smc-operator' }),
    ).rejects.toSatisfy((e: unknown) => codeOf(e) === 404);
    await cp.kubeConfig
      .makeApiClient(ApiextensionsV1Api)
      .readCustomResourceDefinition({ name: 'smcnodes.smc.dev' });
    const nodes = (await cp.kubeConfig
      .makeApiClient(CustomObjectsApi)
      .listClusterCustomObject({ group: 'smc.dev', version: 'v1alpha1', plural: 'smcnodes' })) as {
      items: unknown[];
    };
    expect(nodes.items.length).toBeGreaterThanOrEqual(2);
  });
});
