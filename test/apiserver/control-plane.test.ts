// Smoke test of the real control plane harness: CRDs and custom resources, admission policy,
// RBAC for a restricted user, API server restart with watch resumption, and helm.
import {
  AdmissionregistrationV1Api,
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  Watch,
  type KubeConfig,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from './harness/control-plane.js';

const GROUP = 'test.smc.dev';
const VERSION = 'v1';
const PLURAL = 'widgets';
const NS = 'smoke';

const widgetCrd: V1CustomResourceDefinition = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${PLURAL}.${GROUP}` },
  spec: {
    group: GROUP,
    scope: 'Namespaced',
    names: { plural: PLURAL, singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    versions: [
      {
        name: VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                properties: { size: { type: 'integer', minimum: 0 } },
                required: ['size'],
              },
              status: { type: 'object', properties: { ready: { type: 'boolean' } } },
            },
          },
        },
      },
    ],
  },
};

interface Widget {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec: { size: number };
}

interface WidgetList {
  metadata: { resourceVersion: string };
  items: Widget[];
}

const widget = (name: string, size = 1): Widget => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'Widget',
  metadata: { name, namespace: NS },
  spec: { size },
});

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

async function expectStatus(p: Promise<unknown>, code: number): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected HTTP ${code}`).toBeDefined();
  expect(statusOf(caught)).toBe(code);
}

/** Retries `fn` until it stops throwing (for informer-backed checks such as RBAC and policies). */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

interface WatchEvent {
  type: string;
  name: string;
  resourceVersion: string;
  /** For ERROR events: the Status code and message. */
  error?: string;
}

/** A watch on the test namespace's widgets that records its events and how it ended. */
class WidgetWatch {
  readonly events: WatchEvent[] = [];
  ended: { err: unknown } | undefined;
  private controller: AbortController | undefined;

  static async open(kc: KubeConfig, resourceVersion: string): Promise<WidgetWatch> {
    const w = new WidgetWatch();
    w.controller = await new Watch(kc).watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${NS}/${PLURAL}`,
      { resourceVersion },
      (type: string, obj: unknown) => {
        const o = obj as {
          metadata?: { name?: string; resourceVersion?: string };
          code?: number;
          message?: string;
        };
        w.events.push({
          type,
          name: o.metadata?.name ?? '',
          resourceVersion: o.metadata?.resourceVersion ?? '',
          ...(type === 'ERROR' ? { error: `${o.code ?? '?'} ${o.message ?? ''}` } : {}),
        });
      },
      (err: unknown) => {
        w.ended = { err };
      },
    );
    return w;
  }

  async waitFor(pred: (e: WatchEvent) => boolean, timeoutMs = 30_000): Promise<WatchEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      const error = this.events.find((e) => e.type === 'ERROR');
      if (error) throw new Error(`watch failed: ${error.error ?? ''}`);
      if (Date.now() > deadline)
        throw new Error(`no matching watch event; got ${JSON.stringify(this.events)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  close(): void {
    this.controller?.abort();
  }
}

describe('real control plane (etcd + kube-apiserver)', () => {
  let cp: ControlPlane;
  let custom: CustomObjectsApi;

  beforeAll(async () => {
    cp = await startControlPlane();
    custom = cp.kubeConfig.makeApiClient(CustomObjectsApi);
  });

  afterAll(async () => {
    await cp?.stop();
  });

  it('serves a CRD and its custom resources', async () => {
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    const ext = cp.kubeConfig.makeApiClient(ApiextensionsV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await ext.createCustomResourceDefinition({ body: widgetCrd });
    await eventually(async () => {
      const crd = await ext.readCustomResourceDefinition({ name: `${PLURAL}.${GROUP}` });
      const established = crd.status?.conditions?.find((c) => c.type === 'Established');
      if (established?.status !== 'True') throw new Error('CRD not established yet');
    });
    // The CRD's endpoint can lag its Established condition by a moment.
    await eventually(() =>
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NS,
        plural: PLURAL,
        body: widget('w1', 3),
      }),
    );
    // Schema validation is enforced.
    await expectStatus(
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NS,
        plural: PLURAL,
        body: widget('bad', -1),
      }),
      422,
    );
    const list = (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NS,
      plural: PLURAL,
    })) as {
      items: Widget[];
    };
    expect(list.items.map((w) => [w.metadata.name, w.spec.size])).toEqual([['w1', 3]]);
  });

  it('enforces a ValidatingAdmissionPolicy', async () => {
    const admission = cp.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    await admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: 'widget-size-limit' },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [
              {
                apiGroups: [GROUP],
                apiVersions: [VERSION],
                operations: ['CREATE', 'UPDATE'],
                resources: [PLURAL],
              },
            ],
          },
          validations: [{ expression: 'object.spec.size <= 10', message: 'widgets are at most size 10' }],
        },
      },
    });
    await admission.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name: 'widget-size-limit' },
        spec: { policyName: 'widget-size-limit', validationActions: ['Deny'] },
      },
    });
    // The policy takes effect once the API server's policy informer has seen it.
    const denial = await eventually(async () => {
      try {
        await custom.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: NS,
          plural: PLURAL,
          body: widget('huge', 100),
        });
      } catch (err) {
        return err;
      }
      await custom.deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NS,
        plural: PLURAL,
        name: 'huge',
      });
      throw new Error('policy not in effect yet');
    });
    expect(statusOf(denial)).toBe(422);
    expect(String((denial as ApiException<unknown>).body)).toContain('widgets are at most size 10');
  });

  it('applies RBAC to a restricted user', async () => {
    const rbac = cp.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: NS,
      body: {
        metadata: { name: 'widget-reader' },
        rules: [{ apiGroups: [GROUP], resources: [PLURAL], verbs: ['get', 'list', 'watch'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: NS,
      body: {
        metadata: { name: 'widget-readers' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'widget-reader' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'smc-viewers' }],
      },
    });
    const alice = await cp.userKubeConfig('alice', ['smc-viewers']);
    const aliceCustom = alice.kubeConfig.makeApiClient(CustomObjectsApi);
    const aliceCore = alice.kubeConfig.makeApiClient(CoreV1Api);
    // Granted via the group binding.
    await eventually(() =>
      aliceCustom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NS,
        plural: PLURAL,
      }),
    );
    // Not granted.
    await expectStatus(
      aliceCustom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NS,
        plural: PLURAL,
        body: widget('w-alice'),
      }),
      403,
    );
    await expectStatus(aliceCore.listNamespacedSecret({ namespace: NS }), 403);
    await expectStatus(aliceCore.listNamespace(), 403);
    // A ServiceAccount identity, granted through its service-account group.
    await rbac.createNamespacedRoleBinding({
      namespace: NS,
      body: {
        metadata: { name: 'widget-readers-sa' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'widget-reader' },
        subjects: [
          { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: `system:serviceaccounts:${NS}` },
        ],
      },
    });
    const sa = (await cp.serviceAccountKubeConfig(NS, 'reader')).kubeConfig.makeApiClient(CustomObjectsApi);
    await eventually(() =>
      sa.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL }),
    );
    await expectStatus(
      sa.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NS,
        plural: PLURAL,
        body: widget('w-sa'),
      }),
      403,
    );
    // A user outside the group gets nothing.
    const bob = await cp.userKubeConfig('bob');
    await expectStatus(
      bob.kubeConfig
        .makeApiClient(CustomObjectsApi)
        .listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL }),
      403,
    );
  });

  it('keeps data across an API server restart; a watch resumes or gets 410 and relists', async () => {
    const widgets = { group: GROUP, version: VERSION, namespace: NS, plural: PLURAL };
    const list = (await custom.listNamespacedCustomObject(widgets)) as WidgetList;
    const before = await WidgetWatch.open(cp.kubeConfig, list.metadata.resourceVersion);
    await custom.createNamespacedCustomObject({ ...widgets, body: widget('w2', 2) });
    const seen = await before.waitFor((e) => e.type === 'ADDED' && e.name === 'w2');

    await cp.restartApiServer();
    // The restart ends the open watch.
    await eventually(async () => {
      if (before.ended === undefined) throw new Error('watch still open');
    }, 10_000);
    before.close();

    // Written after the restart, before the client comes back.
    await custom.createNamespacedCustomObject({ ...widgets, body: widget('w3', 4) });

    // Resume as an informer does: watch from the last resourceVersion seen. The restarted API
    // server's watch cache starts at the etcd revision it found on startup, so unless nothing
    // was written in between it answers 410 Gone, and the client relists and watches from the
    // list's resourceVersion. Either way the client ends up with everything and no duplicates.
    let resumed = await WidgetWatch.open(cp.kubeConfig, seen.resourceVersion);
    try {
      const first = await resumed.waitFor(
        (e) => e.type === 'ERROR' || (e.type === 'ADDED' && e.name === 'w3'),
      );
      if (first.type === 'ERROR') {
        expect(first.error).toMatch(/^410 /);
        resumed.close();
        const relist = (await custom.listNamespacedCustomObject(widgets)) as WidgetList;
        expect(relist.items.map((w) => w.metadata.name).sort()).toEqual(['w1', 'w2', 'w3']);
        resumed = await WidgetWatch.open(cp.kubeConfig, relist.metadata.resourceVersion);
      } else {
        expect(resumed.events.map((e) => e.name)).not.toContain('w2');
      }
      // The resumed watch is live.
      await custom.createNamespacedCustomObject({ ...widgets, body: widget('w4', 5) });
      await resumed.waitFor((e) => e.type === 'ADDED' && e.name === 'w4');
    } finally {
      resumed.close();
    }

    const after = (await custom.listNamespacedCustomObject(widgets)) as WidgetList;
    expect(after.items.map((w) => w.metadata.name).sort()).toEqual(['w1', 'w2', 'w3', 'w4']);
  });

  it('runs the pinned helm against the cluster', async () => {
    const version = await cp.helm(['version', '--short']);
    expect(version.stdout).toMatch(/^v3\.\d+\.\d+/);
    const releases = await cp.helm(['list', '--all-namespaces', '--output', 'json']);
    expect(JSON.parse(releases.stdout)).toEqual([]);
  });
});
