// The mutating webhook called by the real API server: the operator creates its CA and serving
// certificate, stores them in a Secret, patches the MutatingWebhookConfiguration's caBundle, and
// the API server then sends pod creations to https://127.0.0.1:PORT/mutate-v1-pod. The serving
// certificate is given a short life here so a rotation happens during the test. A pod that opted
// in but is left alone is not silent: the creating client gets an admission warning (an HTTP
// `Warning: 299` header) and the pod a `NotInjected` Event.
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Operator } from '../../operator/src/controller/operator.js';
import type { KubeClient } from '../../operator/src/kube/client.js';
import { Resources, resourcePath } from '../../operator/src/kube/resources.js';
import { startControlPlane, type ControlPlane } from './harness/control-plane.js';
import {
  OPERATOR_NS,
  adminClient,
  check,
  condition,
  createNamespace,
  eventually,
  freePort,
  getPolicy,
  installCrds,
  podBody,
  restrictedOperatorKubeConfig,
  smcPolicy,
  startOperator,
  testOptions,
} from './operator/helpers.js';

const INJECT_NS = 'inject-me';
const PLAIN_NS = 'plain';

const EnvView = z.array(z.object({ name: z.string(), value: z.string().optional() })).optional();

const PodView = z.object({
  metadata: z.object({ name: z.string(), annotations: z.record(z.string(), z.string()).nullish() }),
  spec: z.object({
    containers: z.array(z.object({ name: z.string(), image: z.string().optional(), env: EnvView })),
    initContainers: z
      .array(
        z.object({
          name: z.string(),
          image: z.string().optional(),
          env: EnvView,
          restartPolicy: z.string().optional(),
          startupProbe: z.object({ httpGet: z.object({ port: z.number() }) }).optional(),
          command: z.array(z.string()).optional(),
          securityContext: z
            .object({
              privileged: z.boolean().optional(),
              capabilities: z.object({ add: z.array(z.string()).optional() }).optional(),
            })
            .optional(),
        }),
      )
      .nullish(),
    volumes: z.array(z.object({ name: z.string() })).nullish(),
  }),
});
type PodView = z.infer<typeof PodView>;

const SecretView = z.object({ data: z.record(z.string(), z.string()) });
const MwcView = z.object({
  webhooks: z.array(z.object({ clientConfig: z.object({ caBundle: z.string().optional() }) })),
});

/** The texts of `Warning: 299 - "..."` headers (node-fetch joins several with ", "). */
function warningsOf(header: string | undefined): string[] {
  return [...(header ?? '').matchAll(/299 - "((?:[^"\\]|\\.)*)"/g)].map((m) =>
    (m[1] ?? '').replace(/\\(.)/g, '$1'),
  );
}

const EventList = z.object({
  items: z.array(
    z.object({
      reason: z.string().optional(),
      type: z.string().optional(),
      note: z.string().optional(),
      reportingController: z.string().optional(),
      regarding: z.object({
        kind: z.string().optional(),
        name: z.string().optional(),
        uid: z.string().optional(),
      }),
    }),
  ),
});
type PodEvent = z.infer<typeof EventList>['items'][number];

const Table = z.object({
  kind: z.literal('Table'),
  columnDefinitions: z.array(z.object({ name: z.string(), type: z.string() })),
  rows: z.array(
    z.object({ cells: z.array(z.unknown()), object: z.object({ metadata: z.object({ name: z.string() }) }) }),
  ),
});
type Table = z.infer<typeof Table>;

/** A GET as kubectl's table printer makes it: the API server renders additionalPrinterColumns. */
async function getTable(kc: KubeConfig, path: string): Promise<Table> {
  const opts: https.RequestOptions = { headers: {} };
  await kc.applyToHTTPSOptions(opts);
  const url = new URL(path, kc.getCurrentCluster()?.server);
  const text = await new Promise<string>((resolve, reject) => {
    const req = https.request(
      url,
      {
        ...opts,
        method: 'GET',
        headers: { ...opts.headers, Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode === 200) resolve(body);
          else reject(new Error(`GET ${path}: ${res.statusCode ?? 0} ${body.slice(0, 200)}`));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
  return Table.parse(JSON.parse(text));
}

function peerCertificate(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const c = s.getPeerX509Certificate();
      s.end();
      if (c) resolve(c.serialNumber);
      else reject(new Error('no certificate'));
    });
    s.once('error', reject);
  });
}

describe('mutating webhook', () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator | undefined;
  let port = 0;
  let n = 0;

  /** Creates a pod and returns it as admitted (the POST answer is the stored object). */
  async function create(
    ns: string,
    labels: Record<string, string>,
    o: { annotations?: Record<string, string>; sidecar?: boolean } = {},
  ): Promise<PodView> {
    const body = podBody(ns, `pod-${++n}`, labels, { sidecar: o.sidecar ?? false }) as {
      metadata: Record<string, unknown>;
    };
    if (o.annotations) body.metadata['annotations'] = o.annotations;
    return admin.request('POST', resourcePath(Resources.pods, ns), PodView, { body });
  }

  /** The sidecar, a native one (an init container) or a plain container. */
  const injected = (p: PodView): boolean =>
    [...p.spec.containers, ...(p.spec.initContainers ?? [])].some((c) => c.name === 'smc-sidecar');

  /** Creates a pod with client-node, as a user's tooling would, keeping the response headers. */
  async function createWithWarnings(
    ns: string,
    labels: Record<string, string>,
    annotations?: Record<string, string>,
  ): Promise<{ pod: V1Pod; warnings: string[] }> {
    const body = podBody(ns, `pod-${++n}`, labels, { sidecar: false }) as V1Pod;
    if (annotations && body.metadata) body.metadata.annotations = annotations;
    const r = await cp.kubeConfig
      .makeApiClient(CoreV1Api)
      .createNamespacedPodWithHttpInfo({ namespace: ns, body });
    return { pod: r.data, warnings: warningsOf(r.headers['warning']) };
  }

  async function podEvents(ns: string, name: string): Promise<PodEvent[]> {
    const list = await admin.request('GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`, EventList);
    return list.items.filter((e) => e.regarding.kind === 'Pod' && e.regarding.name === name);
  }

  beforeAll(async () => {
    cp = await startControlPlane();
    admin = adminClient(cp.kubeConfig);
    await installCrds(admin);
    await createNamespace(admin, OPERATOR_NS);
    await createNamespace(admin, INJECT_NS, { 'smc.dev/injection': 'enabled' });
    await createNamespace(admin, PLAIN_NS);
    port = await freePort();
    await admin.request(
      'POST',
      '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
      z.unknown(),
      {
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
                  {
                    key: 'kubernetes.io/metadata.name',
                    operator: 'NotIn',
                    values: [OPERATOR_NS, 'kube-system'],
                  },
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
      },
    );
    // Two policies selecting the same pods (`conflict-a` is older: created first, and the names
    // order any tie), and one in mode Disabled.
    for (const [name, spec] of [
      ['conflict-a', { tenant: 'blue', podSelector: { matchLabels: { app: 'both' } } }],
      ['conflict-b', { tenant: 'red', podSelector: { matchLabels: { app: 'both' } } }],
      ['off', { tenant: 'blue', mode: 'Disabled', podSelector: { matchLabels: { app: 'off' } } }],
      [
        'limited',
        {
          tenant: 'blue',
          podSelector: { matchLabels: { app: 'limited' } },
          limits: { maxConnections: 64, rmbSize: '64Ki', maxRegisteredMemory: '500M' },
        },
      ],
    ] as const) {
      await admin.request('POST', resourcePath(Resources.smcpolicies, INJECT_NS), z.unknown(), {
        body: smcPolicy(INJECT_NS, name, spec),
      });
    }
    for (const ns of [INJECT_NS, PLAIN_NS]) {
      await admin.request('POST', resourcePath(Resources.smcpolicies, ns), z.unknown(), {
        body: smcPolicy(ns, 'web', {
          tenant: 'blue',
          podSelector: { matchLabels: { app: 'web' } },
          vlans: [42],
          allowedPeerTenants: ['red'],
        }),
      });
    }
    const kc = await restrictedOperatorKubeConfig(cp, admin);
    const base = testOptions('replica-a');
    op = await startOperator(kc, 'replica-a', {
      webhook: {
        ...base.webhook,
        enabled: true,
        port,
        certValidityMs: 25_000,
        rotateBeforeMs: 12_000,
        checkIntervalMs: 2_000,
      },
    });
  });

  afterAll(async () => {
    await op?.stop();
    admin?.close();
    await cp?.stop();
  });

  it('creates the certificate Secret and sets the caBundle', async () => {
    const secret = await eventually(
      () =>
        admin.request(
          'GET',
          resourcePath(Resources.secrets, OPERATOR_NS, 'smc-operator-webhook-tls'),
          SecretView,
        ),
      15_000,
      'webhook Secret',
    );
    const bundle = secret.data['ca-bundle.crt'];
    expect(bundle).toBeTruthy();
    const mwc = await eventually(
      async () => {
        const m = await admin.request(
          'GET',
          '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/smc-operator',
          MwcView,
        );
        check(m.webhooks[0]?.clientConfig.caBundle === bundle, 'caBundle not set');
        return m;
      },
      15_000,
      'caBundle',
    );
    const ca = new X509Certificate(Buffer.from(mwc.webhooks[0]?.clientConfig.caBundle ?? '', 'base64'));
    const serving = new X509Certificate(Buffer.from(secret.data['tls.crt'] ?? '', 'base64'));
    expect(serving.checkIssued(ca)).toBe(true);
    expect(serving.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it('injects the sidecar into selected pods, called by the API server', async () => {
    // The API server picks the caBundle up asynchronously; until then failurePolicy Ignore admits
    // pods unchanged, so retry with fresh pods.
    const pod = await eventually(
      async () => {
        const p = await create(INJECT_NS, { app: 'web' });
        check(injected(p), 'not injected yet');
        return p;
      },
      30_000,
      'first injected pod',
    );
    // The API server is 1.34: `auto` gives a native sidecar, after smc-init, which the API server
    // accepts as an init container with restartPolicy Always.
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['app']);
    expect(pod.spec.initContainers?.map((c) => c.name)).toEqual(['smc-init', 'smc-sidecar']);
    const sidecar = pod.spec.initContainers?.[1];
    expect(sidecar?.image).toBe('registry.invalid/smc-sidecar:test');
    expect(sidecar?.restartPolicy).toBe('Always');
    expect(sidecar?.startupProbe?.httpGet.port).toBe(15121);
    const init = pod.spec.initContainers?.find((c) => c.name === 'smc-init');
    expect(init?.restartPolicy).toBeUndefined();
    expect(init?.command).toEqual(['smc', 'intercept', 'install']);
    expect(init?.securityContext?.privileged).toBe(false);
    expect(init?.securityContext?.capabilities?.add).toEqual(['NET_ADMIN']);
    expect(pod.spec.volumes?.map((v) => v.name)).toContain('smc-directory');
    expect(JSON.parse(pod.metadata.annotations?.['smc.dev/status'] ?? '{}')).toEqual({
      policy: 'web',
      tenant: 'blue',
      mode: 'Prefer',
    });
  });

  it('injects a plain container for a pod that asks with smc.dev/sidecar-mode', async () => {
    const pod = await create(
      INJECT_NS,
      { app: 'web' },
      { annotations: { 'smc.dev/sidecar-mode': 'container' } },
    );
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['app', 'smc-sidecar']);
    expect(pod.spec.initContainers?.map((c) => c.name)).toEqual(['smc-init']);
  });

  it("gives the sidecar the policy's limits, in bytes", async () => {
    // The webhook reads policies from the operator's cache: retry until it has this one.
    const pod = await eventually(
      async () => {
        const p = await create(INJECT_NS, { app: 'limited' });
        check(injected(p), 'not injected yet');
        return p;
      },
      30_000,
      'pod of the limited policy',
    );
    const sidecar = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].find(
      (c) => c.name === 'smc-sidecar',
    );
    const env = Object.fromEntries((sidecar?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      SMC_POLICY: 'limited',
      SMC_MAX_CONNECTIONS: '64',
      SMC_RMB_SIZE: '65536',
      SMC_MAX_REGISTERED_MEMORY: '500000000',
    });
    // A policy without limits leaves the sidecar's defaults.
    const plain = await create(INJECT_NS, { app: 'web' });
    const plainSidecar = plain.spec.initContainers?.find((c) => c.name === 'smc-sidecar');
    expect(plainSidecar?.env?.map((e) => e.name)).not.toContain('SMC_MAX_REGISTERED_MEMORY');
  });

  it('respects opt-in, opt-out, selection and existing sidecars', async () => {
    expect(
      injected(await create(INJECT_NS, { app: 'web' }, { annotations: { 'smc.dev/inject': 'false' } })),
    ).toBe(false);
    expect(injected(await create(INJECT_NS, { app: 'db' }))).toBe(false); // no policy selects it
    expect(injected(await create(PLAIN_NS, { app: 'web' }))).toBe(false); // namespace not opted in
    expect(injected(await create(PLAIN_NS, { app: 'web', 'smc.dev/inject': 'true' }))).toBe(true); // pod opted in
    const pre = await create(INJECT_NS, { app: 'web' }, { sidecar: true }); // already has the sidecar
    expect(pre.spec.containers.filter((c) => c.name === 'smc-sidecar')).toHaveLength(1);
    expect(pre.spec.initContainers ?? []).toHaveLength(0);
    const count = await (op?.metrics.webhookDuration.get() ?? Promise.resolve({ values: [] }));
    const injectedCount = count.values.find(
      (v) =>
        v.metricName === 'smc_operator_webhook_duration_seconds_count' && v.labels['outcome'] === 'injected',
    );
    expect(injectedCount?.value ?? 0).toBeGreaterThanOrEqual(2);
  });

  it('warns the creating client and records a NotInjected Event when an opted-in pod is left alone', async () => {
    // The webhook is live (previous test): the warning arrives in the POST's response headers.
    const lone = await createWithWarnings(INJECT_NS, { app: 'db' });
    expect(lone.pod.spec?.containers.map((c) => c.name)).toEqual(['app']);
    expect(lone.warnings).toEqual(['smc-operator: not injected: no SmcPolicy selects the pod']);
    const name = lone.pod.metadata?.name ?? '';
    const events = await eventually(
      async () => {
        const ev = (await podEvents(INJECT_NS, name)).filter((e) => e.reason === 'NotInjected');
        check(ev.length > 0, 'no NotInjected event yet');
        return ev;
      },
      15_000,
      'NotInjected event',
    );
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'Warning',
      note: 'no SmcPolicy selects the pod',
      reportingController: 'smc.dev/operator',
      regarding: { kind: 'Pod', name, uid: lone.pod.metadata?.uid },
    });

    const off = await createWithWarnings(INJECT_NS, { app: 'off' });
    expect(off.warnings).toEqual(['smc-operator: not injected: SmcPolicy off is Disabled']);
    await eventually(
      async () => {
        const ev = await podEvents(INJECT_NS, off.pod.metadata?.name ?? '');
        check(
          ev.some((e) => e.reason === 'NotInjected' && e.note === 'SmcPolicy off is Disabled'),
          'no event yet',
        );
      },
      15_000,
      'Disabled event',
    );

    // Overlapping policies: injected under the oldest, and said so.
    const both = await createWithWarnings(INJECT_NS, { app: 'both' });
    expect(both.pod.spec?.initContainers?.map((c) => c.name)).toEqual(['smc-init', 'smc-sidecar']);
    expect(JSON.parse(both.pod.metadata?.annotations?.['smc.dev/status'] ?? '{}')).toMatchObject({
      policy: 'conflict-a',
    });
    expect(both.warnings).toEqual([
      'smc-operator: conflict: SmcPolicies conflict-a, conflict-b select the pod; conflict-a applies (oldest)',
    ]);

    // Quiet where nothing went wrong: not opted in, opted out, injected.
    const quiet = [
      await createWithWarnings(PLAIN_NS, { app: 'db' }),
      await createWithWarnings(INJECT_NS, { app: 'db' }, { 'smc.dev/inject': 'false' }),
      await createWithWarnings(INJECT_NS, { app: 'web' }),
    ];
    for (const q of quiet) expect(q.warnings).toEqual([]);
    // The Event of the first pod is there by now; give the leader a moment for the quiet ones.
    await new Promise((r) => setTimeout(r, 1_000));
    for (const q of quiet) {
      const ns = q.pod.metadata?.namespace ?? '';
      expect(await podEvents(ns, q.pod.metadata?.name ?? '')).toEqual([]);
    }
    // Once per pod: still one Event for the first pod after its later updates.
    expect((await podEvents(INJECT_NS, name)).filter((e) => e.reason === 'NotInjected')).toHaveLength(1);
  });

  it('prints the Ready condition as a column of kubectl get smcpolicies', async () => {
    const ready = await eventually(
      async () => {
        const c = condition(await getPolicy(admin, INJECT_NS, 'web'), 'Ready');
        check(c !== undefined, 'no Ready condition yet');
        return c?.status ?? '';
      },
      15_000,
      'Ready condition',
    );
    const table = await getTable(cp.kubeConfig, resourcePath(Resources.smcpolicies, INJECT_NS));
    const names = table.columnDefinitions.map((c) => c.name);
    expect(names).toEqual(['Name', 'Tenant', 'Mode', 'Matched', 'Ready', 'Status', 'Age']);
    const row = table.rows.find((r) => r.object.metadata.name === 'web');
    expect(row?.cells[names.indexOf('Status')]).toBe(ready);
    expect(row?.cells[names.indexOf('Tenant')]).toBe('blue');
    // The Disabled policy is Ready=True by definition (nothing to wait for).
    await eventually(
      async () => {
        const t = await getTable(cp.kubeConfig, resourcePath(Resources.smcpolicies, INJECT_NS));
        check(
          t.rows.find((r) => r.object.metadata.name === 'off')?.cells[names.indexOf('Status')] === 'True',
          'off',
        );
      },
      15_000,
      'Disabled policy Ready=True',
    );
  });

  it('rotates the serving certificate before it expires and keeps injecting', async () => {
    const path = resourcePath(Resources.secrets, OPERATOR_NS, 'smc-operator-webhook-tls');
    const first = (await admin.request('GET', path, SecretView)).data['tls.crt'];
    const firstSerial = await peerCertificate(port);
    await eventually(
      async () => {
        const now = (await admin.request('GET', path, SecretView)).data['tls.crt'];
        check(now !== first, 'not rotated yet');
      },
      30_000,
      'rotation',
    );
    await eventually(
      async () => check((await peerCertificate(port)) !== firstSerial, 'old certificate served'),
      10_000,
      'reload',
    );
    expect(injected(await create(INJECT_NS, { app: 'web' }))).toBe(true);
  });
});
