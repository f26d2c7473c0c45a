// Tenancy in the cluster against a real kube-apiserver + etcd (issue 12, items 6, 7 and 9):
//  - a namespace `edit` user cannot name a tenant whose SmcTenant does not admit the namespace
//    (the chart's ValidatingAdmissionPolicy), nor write SmcTenants (no role of the chart grants
//    them); the operator enforces the binding again when it builds the directory;
//  - the same user can rewrite the namespace's directory ConfigMaps, and the sidecar's directory
//    reader refuses what they write (the operator signs every shard);
//  - the operator's ServiceAccount, with the chart's RBAC, can read no ConfigMap but its own
//    smc-directory-<i>, and its caches hold only the labelled ones.
// The operator runs in-process as the chart's ServiceAccount with exactly the chart's RBAC.
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAllYaml } from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { shardOf } from '../../operator/src/api/directory.js';
import type { Operator } from '../../operator/src/controller/operator.js';
import { ApiError } from '../../operator/src/errors.js';
import { KubeClient } from '../../operator/src/kube/client.js';
import { Resources, resourcePath } from '../../operator/src/kube/resources.js';
import { notAdmittedMessage } from '../../operator/src/policy/tenancy.js';
import { sidecarContainer } from '../../operator/src/webhook/inject.js';
import { silentLogger } from '../../sidecar/src/log.js';
import {
  DirectoryRejection,
  acceptShard,
  directoryTrust,
  type AcceptedShard,
  type DirectoryRejectReason,
} from '../../sidecar/src/directory/verify.js';
import { DirectoryWatcher } from '../../sidecar/src/directory/watcher.js';
import { readVersions } from './harness/binaries.js';
import { startControlPlane, type ControlPlane } from './harness/control-plane.js';
import {
  OPERATOR_NS,
  adminClient,
  check,
  condition,
  createNamespace,
  directoryOf,
  ensure,
  eventually,
  getPolicy,
  installCrds,
  podBody,
  putTenant,
  setPodStatus,
  smcPolicy,
  startOperator,
} from './operator/helpers.js';

const CHART = fileURLToPath(new URL('../../charts/smc-operator', import.meta.url));
const KUBE_VERSION = readVersions().kubernetes.replace(/^v/, '');
const OPERATOR_SA = `system:serviceaccount:${OPERATOR_NS}:smc-operator`;
const SA_GROUPS = ['system:serviceaccounts', `system:serviceaccounts:${OPERATOR_NS}`, 'system:authenticated'];
const SHOP = 'shop';
const INTRUDER = 'intruder';
const RED_LABEL = 'tenants.example/red';
const Any = z.unknown();
const SHARDS = 2;

const ConfigMapView = z.object({
  metadata: z.object({
    name: z.string(),
    namespace: z.string().optional(),
    resourceVersion: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
  }),
  data: z.record(z.string(), z.string()).optional(),
});
type ConfigMapView = z.infer<typeof ConfigMapView>;
const ConfigMapList = z.object({ items: z.array(ConfigMapView) });

/** The rendered chart objects this test applies, and where each kind is created. */
const APPLY: Record<string, { type: string; path: (ns: string) => string }> = {
  ServiceAccount: { type: 'V1ServiceAccount', path: (ns) => `/api/v1/namespaces/${ns}/serviceaccounts` },
  ClusterRole: { type: 'V1ClusterRole', path: () => '/apis/rbac.authorization.k8s.io/v1/clusterroles' },
  ClusterRoleBinding: {
    type: 'V1ClusterRoleBinding',
    path: () => '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
  },
  Role: { type: 'V1Role', path: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles` },
  RoleBinding: {
    type: 'V1RoleBinding',
    path: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
  },
  ValidatingAdmissionPolicy: {
    type: 'V1ValidatingAdmissionPolicy',
    path: () => '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies',
  },
  ValidatingAdmissionPolicyBinding: {
    type: 'V1ValidatingAdmissionPolicyBinding',
    path: () => '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings',
  },
};

/** The error of a request that must fail. */
async function failure(p: Promise<unknown>): Promise<ApiError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (e instanceof ApiError) return e;
  throw new Error(`expected an API error, got ${e === undefined ? 'success' : String(e)}`);
}

function rejectionOf(f: () => unknown): DirectoryRejectReason | 'accepted' {
  try {
    f();
    return 'accepted';
  } catch (e) {
    if (e instanceof DirectoryRejection) return e.reason;
    throw e;
  }
}

describe('tenancy: SmcTenant admission, signed directory, narrow ConfigMap access', () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let dev: KubeClient;
  let sa: KubeClient;
  let op: Operator | undefined;
  let publicKey = '';

  const policyPath = (ns: string): string => resourcePath(Resources.smcpolicies, ns);

  async function can(
    user: string,
    groups: string[],
    attrs: Record<string, string | undefined>,
  ): Promise<boolean> {
    const r = await admin.request(
      'POST',
      '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      z.object({ status: z.object({ allowed: z.boolean() }).optional() }),
      {
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: { user, groups, resourceAttributes: attrs },
        },
      },
    );
    return r.status?.allowed === true;
  }

  async function shopConfigMaps(): Promise<ConfigMapView[]> {
    const l = await admin.request('GET', resourcePath(Resources.configmaps, SHOP), ConfigMapList, {
      query: { labelSelector: 'smc.dev/directory=true' },
    });
    return l.items;
  }

  beforeAll(async () => {
    cp = await startControlPlane();
    admin = adminClient(cp.kubeConfig);
    await installCrds(admin);
    for (const ns of [OPERATOR_NS, SHOP, INTRUDER, 'other']) await createNamespace(admin, ns);

    // The chart's RBAC, its admission policies and the roles it aggregates into edit/admin/view.
    const rendered = await cp.helm([
      'template',
      'smc-operator',
      CHART,
      '--namespace',
      OPERATOR_NS,
      '--kube-version',
      KUBE_VERSION,
      '--show-only',
      'templates/operator-rbac.yaml',
      '--show-only',
      'templates/operator-admissionpolicy.yaml',
      '--show-only',
      'templates/tenant-admissionpolicy.yaml',
      '--show-only',
      'templates/user-rbac.yaml',
    ]);
    for (const doc of loadAllYaml(rendered.stdout) as ({ kind: string } | null)[]) {
      if (!doc) continue;
      const how = APPLY[doc.kind];
      if (!how) throw new Error(`no way to apply a ${doc.kind}`);
      await ensure(admin, how.path(OPERATOR_NS), ObjectSerializer.serialize(doc, how.type, ''));
    }

    // `dev` has `edit` in shop and intruder. No controller-manager aggregates roles here, so bind
    // what `edit` aggregates: every ClusterRole labelled aggregate-to-edit, expanded through those
    // that aggregate others themselves (`view`, labelled aggregate-to-edit, aggregates
    // aggregate-to-view): the built-in system:aggregate-to-edit and system:aggregate-to-view, and
    // the chart's smc-operator-policy-edit and smc-operator-policy-view.
    const Roles = z.object({
      items: z.array(
        z.object({
          metadata: z.object({ name: z.string() }),
          aggregationRule: z
            .object({
              clusterRoleSelectors: z
                .array(z.object({ matchLabels: z.record(z.string(), z.string()).optional() }))
                .optional(),
            })
            .optional(),
        }),
      ),
    });
    const aggregated = async (label: string, seen = new Set<string>()): Promise<string[]> => {
      if (seen.has(label)) return [];
      seen.add(label);
      const roles = await admin.request('GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles', Roles, {
        query: { labelSelector: label },
      });
      const out: string[] = [];
      for (const r of roles.items) {
        const selectors = r.aggregationRule?.clusterRoleSelectors ?? [];
        if (selectors.length === 0) out.push(r.metadata.name);
        for (const sel of selectors) {
          const l = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
          if (l.length > 0) out.push(...(await aggregated(l.join(','), seen)));
        }
      }
      return out;
    };
    const names = await aggregated('rbac.authorization.k8s.io/aggregate-to-edit=true');
    expect(names).toEqual(
      expect.arrayContaining([
        'system:aggregate-to-edit',
        'system:aggregate-to-view',
        'smc-operator-policy-edit',
        'smc-operator-policy-view',
      ]),
    );
    for (const ns of [SHOP, INTRUDER]) {
      for (const role of names) {
        await ensure(admin, `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: `dev-${role.replace(/:/g, '-')}`, namespace: ns },
          subjects: [{ kind: 'User', name: 'dev', apiGroup: 'rbac.authorization.k8s.io' }],
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        });
      }
    }
    dev = new KubeClient((await cp.userKubeConfig('dev')).kubeConfig, 'dev');
    sa = new KubeClient((await cp.serviceAccountKubeConfig(OPERATOR_NS, 'smc-operator')).kubeConfig, 'sa');

    await putTenant(admin, 'blue', { namespaces: [SHOP] });
    await putTenant(admin, 'red', { namespaceSelector: { matchLabels: { [RED_LABEL]: 'true' } } });
    // The API server enforces a new admission policy a moment after it exists: probe by dry run.
    await eventually(
      async () => {
        const e = await failure(
          dev.request('POST', policyPath(INTRUDER), Any, {
            body: smcPolicy(INTRUDER, 'probe', { tenant: 'blue' }),
            query: { dryRun: 'All' },
          }),
        );
        check(e.status === 403, `probe: ${e.message}`);
      },
      30_000,
      'the tenant admission policy to be enforced',
    );
  });

  afterAll(async () => {
    await op?.stop();
    for (const c of [admin, dev, sa]) c?.close();
    await cp?.stop();
  });

  it('refuses a namespace edit user who names a tenant whose SmcTenant does not admit the namespace', async () => {
    // The spoof: intruder claims blue, whose SmcTenant admits only shop.
    const spoof = await failure(
      dev.request('POST', policyPath(INTRUDER), Any, {
        body: smcPolicy(INTRUDER, 'spoof', { tenant: 'blue' }),
      }),
    );
    expect(spoof.status).toBe(403);
    expect(spoof.message).toContain(notAdmittedMessage('blue', INTRUDER));
    expect(spoof.message).toContain(
      'SmcTenant "blue" does not admit namespace "intruder": a cluster admin must list the namespace in spec.namespaces or label it to match spec.namespaceSelector',
    );
    // In the namespace blue admits, the same user may.
    await dev.request('POST', policyPath(SHOP), Any, {
      body: smcPolicy(SHOP, 'web', { tenant: 'blue', podSelector: { matchLabels: { app: 'web' } } }),
    });

    // red admits namespaces by label: not intruder, and its user cannot label it.
    const red = await failure(
      dev.request('POST', policyPath(INTRUDER), Any, {
        body: smcPolicy(INTRUDER, 'r', { tenant: 'red', podSelector: { matchLabels: { app: 'r' } } }),
      }),
    );
    expect(red.status).toBe(403);
    expect(red.message).toContain(notAdmittedMessage('red', INTRUDER));
    const label = await failure(
      dev.request('PATCH', `/api/v1/namespaces/${INTRUDER}`, Any, {
        patch: 'merge',
        body: { metadata: { labels: { [RED_LABEL]: 'true' } } },
      }),
    );
    expect(label.status).toBe(403);
    // Nor write SmcTenants: no aggregated role grants them.
    const create = await failure(
      dev.request('POST', resourcePath(Resources.smctenants), Any, {
        body: { apiVersion: 'smc.dev/v1alpha1', kind: 'SmcTenant', metadata: { name: 'mine' }, spec: {} },
      }),
    );
    expect(create.status).toBe(403);
    const widen = await failure(
      dev.request('PATCH', resourcePath(Resources.smctenants, undefined, 'blue'), Any, {
        patch: 'merge',
        body: { spec: { namespaces: [SHOP, INTRUDER] } },
      }),
    );
    expect(widen.status).toBe(403);
    for (const verb of ['create', 'update', 'patch', 'delete']) {
      expect(await can('dev', [], { verb, group: 'smc.dev', resource: 'smctenants', name: 'blue' })).toBe(
        false,
      );
    }

    // A cluster admin labels intruder: now red admits it.
    await admin.request('PATCH', `/api/v1/namespaces/${INTRUDER}`, Any, {
      patch: 'merge',
      body: { metadata: { labels: { [RED_LABEL]: 'true' } } },
    });
    await eventually(
      () =>
        dev.request('POST', policyPath(INTRUDER), Any, {
          body: smcPolicy(INTRUDER, 'r', { tenant: 'red', podSelector: { matchLabels: { app: 'r' } } }),
        }),
      15_000,
      'red admitted by label',
    );

    // matchExpressions, evaluated by the policy's CEL as metav1.LabelSelector does.
    await putTenant(admin, 'exprs', {
      namespaceSelector: {
        matchExpressions: [
          { key: RED_LABEL, operator: 'In', values: ['true'] },
          { key: RED_LABEL, operator: 'Exists' },
          { key: 'frozen', operator: 'DoesNotExist' },
          { key: 'tier', operator: 'NotIn', values: ['prod'] },
        ],
      },
    });
    const dryRun = (ns: string) =>
      dev.request('POST', policyPath(ns), Any, {
        body: smcPolicy(ns, 'e', { tenant: 'exprs' }),
        query: { dryRun: 'All' },
      });
    await eventually(() => dryRun(INTRUDER), 15_000, 'exprs admitted in intruder');
    expect((await failure(dryRun(SHOP))).message).toContain(notAdmittedMessage('exprs', SHOP));

    // A tenant without any SmcTenant passes admission (nothing to check it against) and is
    // refused by the operator (next test).
    await dev.request('POST', policyPath(INTRUDER), Any, {
      body: smcPolicy(INTRUDER, 'free', { tenant: 'nobody', podSelector: { matchLabels: { app: 'x' } } }),
    });
  });

  it('the operator publishes only admitted policies, and follows SmcTenant changes', async () => {
    op = await startOperator(
      (await cp.serviceAccountKubeConfig(OPERATOR_NS, 'smc-operator')).kubeConfig,
      'tenancy-a',
      { directoryShards: SHARDS },
    );
    const o = op;
    await eventually(() => check(o.isLeader, 'not leader'), 15_000, 'leadership');
    for (const [ns, name, app, ip] of [
      [SHOP, 'web-0', 'web', '10.1.0.1'],
      [INTRUDER, 'x-0', 'x', '10.2.0.1'],
      [INTRUDER, 'r-0', 'r', '10.2.0.2'],
      [INTRUDER, 'b-0', 'b', '10.2.0.3'],
    ] as const) {
      await admin.request('POST', resourcePath(Resources.pods, ns), Any, {
        body: podBody(ns, name, { app }),
      });
      await setPodStatus(admin, ns, name, ip, true);
    }
    await eventually(
      async () => {
        const shop = await directoryOf(admin, SHOP);
        check(
          shop.get('10.1.0.1')?.tenant === 'blue' && shop.size === 1,
          `shop: ${JSON.stringify([...shop])}`,
        );
        const intr = await directoryOf(admin, INTRUDER);
        check(
          intr.get('10.2.0.2')?.tenant === 'red' && intr.size === 1,
          `intruder: ${JSON.stringify([...intr])}`,
        );
        const free = await getPolicy(admin, INTRUDER, 'free');
        check(condition(free, 'TenantAdmitted')?.reason === 'TenantNotFound', JSON.stringify(free.status));
      },
      30_000,
      'directories without the unknown tenant',
    );
    const free = await getPolicy(admin, INTRUDER, 'free');
    expect(condition(free, 'TenantAdmitted')).toMatchObject({
      status: 'False',
      message: 'no SmcTenant "nobody" exists: a cluster admin must create it and admit namespace "intruder"',
    });
    expect(condition(free, 'Ready')).toMatchObject({ status: 'False', reason: 'TenantNotFound' });
    expect(condition(await getPolicy(admin, SHOP, 'web'), 'TenantAdmitted')).toMatchObject({
      status: 'True',
      reason: 'TenantAdmitted',
    });

    // blue admits intruder for a while: a policy there joins blue, both ways.
    await putTenant(admin, 'blue', { namespaces: [SHOP, INTRUDER] });
    await eventually(
      () =>
        dev.request('POST', policyPath(INTRUDER), Any, {
          body: smcPolicy(INTRUDER, 'b', { tenant: 'blue', podSelector: { matchLabels: { app: 'b' } } }),
        }),
      15_000,
      'blue admitted in intruder',
    );
    await eventually(
      async () => {
        check((await directoryOf(admin, SHOP)).get('10.2.0.3')?.tenant === 'blue', 'b-0 not in shop');
        check((await directoryOf(admin, INTRUDER)).has('10.1.0.1'), 'web-0 not in intruder');
      },
      30_000,
      'intruder joined blue',
    );
    // Taken back: the policy stays (admission saw nothing wrong then), the operator drops it.
    await putTenant(admin, 'blue', { namespaces: [SHOP] });
    await eventually(
      async () => {
        const shop = await directoryOf(admin, SHOP);
        check(!shop.has('10.2.0.3'), `shop still lists b-0: ${JSON.stringify([...shop])}`);
        const intr = await directoryOf(admin, INTRUDER);
        check(!intr.has('10.1.0.1'), `intruder still sees web-0: ${JSON.stringify([...intr])}`);
        const b = await getPolicy(admin, INTRUDER, 'b');
        check(condition(b, 'TenantAdmitted')?.reason === 'NamespaceNotAdmitted', JSON.stringify(b.status));
      },
      30_000,
      'intruder dropped from blue',
    );
    expect(condition(await getPolicy(admin, INTRUDER, 'b'), 'TenantAdmitted')?.message).toBe(
      notAdmittedMessage('blue', INTRUDER),
    );
  });

  it("a namespace edit user can rewrite the directory ConfigMap, and the sidecar's reader refuses it", async () => {
    const o = op;
    if (!o) throw new Error('operator not running');
    // The key: created by the operator in its Secret, given to the injected sidecars by the webhook.
    const secret = await admin.request(
      'GET',
      resourcePath(Resources.secrets, OPERATOR_NS, 'smc-operator-directory-key'),
      z.object({ data: z.record(z.string(), z.string()) }),
    );
    publicKey = Buffer.from(secret.data['ed25519.pub'] ?? '', 'base64').toString('utf8');
    expect(o.directoryPublicKey).toBe(publicKey);
    const policy = {
      metadata: { name: 'web', namespace: SHOP },
      spec: { tenant: 'blue', mode: 'Prefer' as const },
    };
    const env = sidecarContainer(o.webhook.currentSettings, policy)['env'] as {
      name: string;
      value?: string;
    }[];
    expect(env).toContainEqual({ name: 'SMC_DIRECTORY_PUBLIC_KEYS', value: publicKey });
    const trust = directoryTrust([publicKey], SHOP);

    // What the operator wrote verifies.
    const file = `shard-${shardOf('10.1.0.1', SHARDS)}.json`;
    const name = `smc-directory-${shardOf('10.1.0.1', SHARDS)}`;
    const cms = await shopConfigMaps();
    expect(cms.map((c) => c.metadata.name).sort()).toEqual(['smc-directory-0', 'smc-directory-1']);
    for (const cm of cms)
      for (const [f, text] of Object.entries(cm.data ?? {})) acceptShard(`/d/${f}`, text, trust);
    const good = cms.find((c) => c.metadata.name === name);
    const goodText = good?.data?.[file] ?? '';
    const goodShard = acceptShard(`/d/${file}`, goodText, trust);

    // dev edits it (ordinary `edit` rights): an extra peer claiming blue.
    const doc = JSON.parse(goodText) as { endpoints: Record<string, unknown>[] };
    const forged = JSON.stringify({
      ...doc,
      endpoints: [
        ...doc.endpoints,
        { ...doc.endpoints[0], podIP: '10.6.6.6', pod: 'evil', namespace: INTRUDER },
      ],
    });
    const cmPath = resourcePath(Resources.configmaps, SHOP, name);
    const current = await dev.request('GET', cmPath, ConfigMapView);
    await dev.request('PUT', cmPath, ConfigMapView, {
      body: { apiVersion: 'v1', kind: 'ConfigMap', ...current, data: { [file]: forged } },
    });
    expect(rejectionOf(() => acceptShard(`/d/${file}`, forged, trust))).toBe('bad-signature');

    // The sidecar's watcher, fed the real files: keeps the last good version and counts the rejection.
    const root = await mkdtemp(join(tmpdir(), 'smc-tenancy-dir-'));
    const put = async (text: string): Promise<void> => {
      await writeFile(join(root, `.${file}`), text);
      await rename(join(root, `.${file}`), join(root, file));
    };
    const rejected: DirectoryRejectReason[] = [];
    let loads = 0;
    const w = new DirectoryWatcher({
      path: root,
      pollIntervalMs: 50,
      debounceMs: 10,
      log: silentLogger(),
      trust,
    });
    w.on('rejected', (r) => rejected.push(r.reason));
    w.on('change', () => loads++);
    try {
      await put(goodText);
      await w.start();
      expect(w.directory.lookup('10.1.0.1')?.tenant).toBe('blue');
      await put(forged);
      await eventually(() => check(rejected.length === 1, 'not rejected'), 10_000, 'rejection');
      expect(rejected).toEqual(['bad-signature']);
      expect(w.directory.lookup('10.6.6.6')).toBeUndefined();
      expect(w.directory.lookup('10.1.0.1')?.tenant).toBe('blue');

      // The operator sees a write that is not its own and puts a freshly signed shard back.
      const repaired = await eventually(
        async () => {
          const cm = await admin.request('GET', cmPath, ConfigMapView);
          const text = cm.data?.[file] ?? '';
          return acceptShard(`/d/${file}`, text, trust, goodShard);
        },
        30_000,
        'the operator to repair the shard',
      );
      expect(repaired.doc.endpoints.map((e) => e.podIP)).not.toContain('10.6.6.6');
      expect(repaired.doc.issuedAt ?? 0).toBeGreaterThan(goodShard.doc.issuedAt ?? 0);
      const loadsBefore = loads;
      await put(repaired.text);
      await eventually(() => check(loads > loadsBefore, 'repaired shard not read'), 10_000, 'repaired');
      expect(rejected).toEqual(['bad-signature']);

      // Replaying the older, genuinely signed copy is refused too.
      const replayed: AcceptedShard = repaired;
      expect(rejectionOf(() => acceptShard(`/d/${file}`, goodText, trust, replayed))).toBe('rollback');
      await put(goodText);
      await eventually(() => check(rejected.length === 2, 'replay not rejected'), 10_000, 'replay');
      expect(rejected[1]).toBe('rollback');
    } finally {
      w.stop();
      await rm(root, { recursive: true, force: true });
    }

    // A genuine shard of shop is worthless in intruder (signed for shop).
    expect(
      rejectionOf(() => acceptShard(`/d/${file}`, goodText, directoryTrust([publicKey], INTRUDER))),
    ).toBe('namespace');
  });

  it("the operator's ServiceAccount reads no ConfigMap but smc-directory-<i>, and caches only labelled ones", async () => {
    const o = op;
    if (!o) throw new Error('operator not running');
    const cm = (verb: string, namespace?: string, name?: string) =>
      can(OPERATOR_SA, SA_GROUPS, { verb, resource: 'configmaps', namespace, name });
    // Every ConfigMap of the cluster: no longer.
    expect(await cm('list')).toBe(false);
    expect(await cm('watch')).toBe(false);
    expect(await cm('list', SHOP)).toBe(false);
    expect(await cm('get', SHOP, 'app-config')).toBe(false);
    expect(await cm('get', SHOP, 'smc-directory-64')).toBe(false);
    // Its own names only.
    for (const verb of ['get', 'list', 'watch', 'update', 'delete']) {
      expect(await cm(verb, undefined, 'smc-directory-0')).toBe(true);
      expect(await cm(verb, SHOP, 'smc-directory-63')).toBe(true);
    }
    expect(await cm('patch', SHOP, 'smc-directory-0')).toBe(false);
    expect(await cm('create', SHOP)).toBe(true); // create cannot be limited by name (the VAP does)

    // The same through real requests.
    await admin.request('POST', resourcePath(Resources.configmaps, SHOP), Any, {
      body: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'app-config', labels: { 'smc.dev/directory': 'true' } },
        data: { password: 'hunter2' },
      },
    });
    await admin.request('POST', resourcePath(Resources.configmaps, 'other'), Any, {
      body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'smc-directory-1' }, data: { x: 'y' } },
    });
    expect((await failure(sa.request('GET', resourcePath(Resources.configmaps), Any))).status).toBe(403);
    expect(
      (await failure(sa.request('GET', resourcePath(Resources.configmaps, SHOP, 'app-config'), Any))).status,
    ).toBe(403);
    const own = await sa.request('GET', resourcePath(Resources.configmaps), ConfigMapList, {
      query: { fieldSelector: 'metadata.name=smc-directory-0', labelSelector: 'smc.dev/directory=true' },
    });
    expect(own.items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`)).toContain(
      `${SHOP}/smc-directory-0`,
    );

    // The operator's caches: one reflector per shard name, only labelled smc-directory-<i>.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(o.configMaps.map((r) => r.name)).toEqual([
      'configmaps/smc-directory-0',
      'configmaps/smc-directory-1',
    ]);
    const cached = o.configMaps.flatMap((r) => [...r.store.list()]);
    expect(cached.length).toBeGreaterThan(0);
    for (const c of cached) {
      expect(c.metadata.name).toMatch(/^smc-directory-\d+$/);
      expect(c.metadata.labels?.['smc.dev/directory']).toBe('true');
    }
    const keys = cached.map((c) => `${c.metadata.namespace}/${c.metadata.name}`);
    expect(keys).not.toContain(`${SHOP}/app-config`);
    expect(keys).not.toContain('other/smc-directory-1');
    expect(o.ready()).toEqual({ ok: true, detail: 'ok' });
  });
});
