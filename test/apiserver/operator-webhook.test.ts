// The mutating webhook called by the real API server: the operator creates its CA and serving
// certificate, stores them in a Secret, patches the MutatingWebhookConfiguration's caBundle, and
// the API server then sends pod creations to https://127.0.0.1:PORT/mutate-v1-pod. The serving
// certificate is given a short life here so a rotation happens during the test.
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
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
  createNamespace,
  eventually,
  freePort,
  installCrds,
  podBody,
  restrictedOperatorKubeConfig,
  smcPolicy,
  startOperator,
  testOptions,
} from './operator/helpers.js';

const INJECT_NS = 'inject-me';
const PLAIN_NS = 'plain';

const PodView = z.object({
  metadata: z.object({ name: z.string(), annotations: z.record(z.string(), z.string()).nullish() }),
  spec: z.object({
    containers: z.array(z.object({ name: z.string(), image: z.string().optional() })),
    initContainers: z
      .array(
        z.object({
          name: z.string(),
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

  const injected = (p: PodView): boolean => p.spec.containers.some((c) => c.name === 'smc-sidecar');

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
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['app', 'smc-sidecar']);
    expect(pod.spec.containers[1]?.image).toBe('registry.invalid/smc-sidecar:test');
    const init = pod.spec.initContainers?.find((c) => c.name === 'smc-init');
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
