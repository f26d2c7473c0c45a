// The chart with webhook.certManager.enabled, installed into a real API server, and the operator
// run with exactly the RBAC that install grants its ServiceAccount. cert-manager itself does not
// run here: its CRDs are stood in for by schema-less ones (so the chart's Issuers and Certificates
// are stored as rendered), and the test does what cert-manager's three parts would do: issue the
// serving certificate (the operator's own certs.ts makes it), write it where the kubelet mounts
// the Secret (a ..data symlink swapped by rename), and copy the CA into the webhook
// configuration's caBundle (the cainjector). The API server then calls the operator over TLS for
// pod creations; failurePolicy is the chart's Fail, so an untrusted certificate fails the create.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1ResourceAttributes,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Operator } from '../../operator/src/controller/operator.js';
import { createCa, issueServingCert, type KeyPairPem } from '../../operator/src/webhook/certs.js';
import { startControlPlane, type ControlPlane } from './harness/control-plane.js';
import {
  OPERATOR_NS,
  adminClient,
  createNamespace,
  ensure,
  eventually,
  freePort,
  testLogger,
  testOptions,
} from './operator/helpers.js';

const CHART = fileURLToPath(new URL('../../charts/smc-operator', import.meta.url));
const RELEASE = 'smc-operator';
const APPS = 'apps';
const OPERATOR_SA = `system:serviceaccount:${OPERATOR_NS}:smc-operator`;
const SA_GROUPS = ['system:serviceaccounts', `system:serviceaccounts:${OPERATOR_NS}`, 'system:authenticated'];
const SERVICE_HOSTS = [
  'smc-operator-webhook.smc-system.svc',
  'smc-operator-webhook',
  'smc-operator-webhook.smc-system',
  'smc-operator-webhook.smc-system.svc.cluster.local',
];

/** cert-manager.io/v1 kinds as schema-less CRDs: enough for helm to create the chart's objects. */
function standInCrd(kind: string, plural: string, scope: 'Namespaced' | 'Cluster'): unknown {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.cert-manager.io` },
    spec: {
      group: 'cert-manager.io',
      scope,
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  };
}

/** The operator's mounted Secret volume, written and renewed as the kubelet does it. */
class SecretVolume {
  private n = 0;
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }
  write(pair: KeyPairPem): void {
    const ts = `..data-${this.n++}`;
    mkdirSync(join(this.dir, ts));
    writeFileSync(join(this.dir, ts, 'tls.crt'), pair.certPem);
    writeFileSync(join(this.dir, ts, 'tls.key'), pair.keyPem, { mode: 0o440 });
    symlinkSync(ts, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const f of ['tls.crt', 'tls.key']) {
      try {
        symlinkSync(join('..data', f), join(this.dir, f));
      } catch {
        // already points into ..data
      }
    }
    if (this.n > 1) rmSync(join(this.dir, `..data-${this.n - 2}`), { recursive: true, force: true });
  }
}

/** What cert-manager's CA Issuer would issue for the chart's Certificate (plus 127.0.0.1 here). */
function issue(ca: KeyPairPem): KeyPairPem {
  const now = Date.now();
  return issueServingCert(ca, [...SERVICE_HOSTS, '127.0.0.1'], {
    commonName: SERVICE_HOSTS[0] ?? '',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
  });
}

function newCa(name: string): KeyPairPem {
  const now = Date.now();
  return createCa({
    commonName: name,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
  });
}

function servedSerial(port: number): Promise<string> {
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

/** The texts of `Warning: 299 - "..."` headers. */
function warningsOf(header: string | undefined): string[] {
  return [...(header ?? '').matchAll(/299 - "((?:[^"\\]|\\.)*)"/g)].map((m) =>
    (m[1] ?? '').replace(/\\(.)/g, '$1'),
  );
}

const CertificateView = z.object({
  spec: z.object({
    secretName: z.string(),
    dnsNames: z.array(z.string()).optional(),
    isCA: z.boolean().optional(),
    issuerRef: z.object({ name: z.string(), kind: z.string(), group: z.string() }),
  }),
});

describe('chart with webhook.certManager.enabled in a real API server', () => {
  let cp: ControlPlane;
  let dir = '';
  let op: Operator | undefined;
  let port = 0;
  let volume: SecretVolume;
  let ca: KeyPairPem;
  let installNotes = '';
  let n = 0;

  async function can(attrs: V1ResourceAttributes): Promise<boolean> {
    const review = await cp.kubeConfig.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: { user: OPERATOR_SA, groups: SA_GROUPS, resourceAttributes: attrs },
      },
    });
    return review.status?.allowed === true;
  }

  /** What the cainjector does: every webhook's caBundle = the CA of the Certificate's Secret. */
  async function injectCa(ca: KeyPairPem, url?: string): Promise<void> {
    const adm = cp.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    const mwc = await adm.readMutatingWebhookConfiguration({ name: RELEASE });
    const bundle = Buffer.from(ca.certPem).toString('base64');
    const ops = (mwc.webhooks ?? []).flatMap((w, i) => [
      { op: 'test', path: `/webhooks/${i}/name`, value: w.name },
      url
        ? // No Service endpoints without kubelets: point the API server at the operator directly.
          { op: 'replace', path: `/webhooks/${i}/clientConfig`, value: { url, caBundle: bundle } }
        : { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle },
    ]);
    await adm.patchMutatingWebhookConfiguration(
      { name: RELEASE, body: ops },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
  }

  /** Creates an opted-in pod; its admission warnings show the operator answered it. */
  async function createOptedInPod(): Promise<{ pod: V1Pod; warnings: string[] }> {
    const r = await cp.kubeConfig.makeApiClient(CoreV1Api).createNamespacedPodWithHttpInfo({
      namespace: APPS,
      body: {
        metadata: { name: `pod-${++n}`, labels: { 'smc.dev/inject': 'true', app: 'no-policy' } },
        spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
      },
    });
    return { pod: r.data, warnings: warningsOf(r.headers['warning']) };
  }

  beforeAll(async () => {
    cp = await startControlPlane();
    const admin = adminClient(cp.kubeConfig);
    for (const [kind, plural, scope] of [
      ['Certificate', 'certificates', 'Namespaced'],
      ['Issuer', 'issuers', 'Namespaced'],
      ['ClusterIssuer', 'clusterissuers', 'Cluster'],
    ] as const) {
      await ensure(
        admin,
        '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
        standInCrd(kind, plural, scope),
      );
    }
    await eventually(
      () =>
        cp.kubeConfig.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
          group: 'cert-manager.io',
          version: 'v1',
          namespace: 'default',
          plural: 'certificates',
        }),
      30_000,
      'cert-manager stand-in CRDs',
    );
    await createNamespace(admin, OPERATOR_NS);
    await createNamespace(admin, APPS);
    admin.close();
    installNotes = (
      await cp.helm(
        [
          'install',
          RELEASE,
          CHART,
          '--namespace',
          OPERATOR_NS,
          '--wait=false',
          '--set',
          'webhook.certManager.enabled=true',
          '--set',
          'nodeAgent.enabled=false',
        ],
        { timeoutMs: 180_000 },
      )
    ).stdout;
    dir = mkdtempSync(join(tmpdir(), 'smc-chart-cm-'));
    volume = new SecretVolume(join(dir, 'webhook-tls'));
    port = await freePort();
  });

  afterAll(async () => {
    await op?.stop();
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('creates the CA chain, the Certificate for the Service names, and the inject-ca-from annotation', async () => {
    const co = cp.kubeConfig.makeApiClient(CustomObjectsApi);
    const get = async (plural: string, name: string): Promise<unknown> =>
      co.getNamespacedCustomObject({
        group: 'cert-manager.io',
        version: 'v1',
        namespace: OPERATOR_NS,
        plural,
        name,
      });
    const serving = CertificateView.parse(await get('certificates', 'smc-operator-webhook'));
    expect(serving.spec.secretName).toBe('smc-operator-webhook-tls');
    expect(serving.spec.dnsNames).toEqual(SERVICE_HOSTS);
    expect(serving.spec.issuerRef).toEqual({
      name: 'smc-operator-webhook-ca',
      kind: 'Issuer',
      group: 'cert-manager.io',
    });
    expect(CertificateView.parse(await get('certificates', 'smc-operator-webhook-ca')).spec.isCA).toBe(true);
    await get('issuers', 'smc-operator-webhook-ca');
    await get('issuers', 'smc-operator-webhook-ca-selfsigned');
    const mwc = await cp.kubeConfig
      .makeApiClient(AdmissionregistrationV1Api)
      .readMutatingWebhookConfiguration({ name: RELEASE });
    expect(mwc.metadata?.annotations?.['cert-manager.io/inject-ca-from']).toBe(
      `${OPERATOR_NS}/smc-operator-webhook`,
    );
    // The CRDs came from the chart's templates, marked to outlive the release.
    const crd = await cp.kubeConfig
      .makeApiClient(ApiextensionsV1Api)
      .readCustomResourceDefinition({ name: 'smcpolicies.smc.dev' });
    expect(crd.metadata?.annotations?.['helm.sh/resource-policy']).toBe('keep');
    expect(crd.metadata?.annotations?.['meta.helm.sh/release-name']).toBe(RELEASE);
    expect(installNotes).toContain('The webhook certificate comes from cert-manager');
    expect(installNotes).toContain('CRDs are part of the release (helm upgrade updates them) and are kept');
  });

  it('the operator ServiceAccount may not touch the webhook Secret or the webhook configuration', async () => {
    const denied: V1ResourceAttributes[] = [
      { verb: 'get', resource: 'secrets', namespace: OPERATOR_NS, name: 'smc-operator-webhook-tls' },
      { verb: 'update', resource: 'secrets', namespace: OPERATOR_NS, name: 'smc-operator-webhook-tls' },
      { verb: 'patch', resource: 'secrets', namespace: OPERATOR_NS, name: 'smc-operator-webhook-tls' },
      { verb: 'get', resource: 'secrets', namespace: OPERATOR_NS, name: 'smc-operator-webhook-ca' },
      {
        verb: 'get',
        group: 'admissionregistration.k8s.io',
        resource: 'mutatingwebhookconfigurations',
        name: RELEASE,
      },
      {
        verb: 'patch',
        group: 'admissionregistration.k8s.io',
        resource: 'mutatingwebhookconfigurations',
        name: RELEASE,
      },
    ];
    for (const attrs of denied) expect(await can(attrs), JSON.stringify(attrs)).toBe(false);
    const allowed: V1ResourceAttributes[] = [
      {
        verb: 'update',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: OPERATOR_NS,
        name: 'smc-operator-leader',
      },
      { verb: 'watch', resource: 'pods' },
      { verb: 'list', group: 'smc.dev', resource: 'smcpolicies' },
    ];
    for (const attrs of allowed) expect(await can(attrs), JSON.stringify(attrs)).toBe(true);
  });

  it('the operator, with only those rights, serves the mounted certificate once it appears', async () => {
    const sa = await cp.serviceAccountKubeConfig(OPERATOR_NS, 'smc-operator');
    const base = testOptions('cm-a');
    op = new Operator(
      sa.kubeConfig,
      testOptions('cm-a', {
        healthPort: 0,
        webhook: {
          ...base.webhook,
          enabled: true,
          port,
          certDir: volume.dir,
          configName: RELEASE,
          secretName: 'smc-operator-webhook-tls',
          // The poll is the fallback; the directory watch must carry the renewals below.
          checkIntervalMs: 600_000,
        },
      }),
      testLogger('cm-a'),
    );
    await op.start();
    // cert-manager has not issued yet (the kubelet would hold the pod in ContainerCreating).
    expect(op.webhook.listening).toBe(false);
    ca = newCa('smc-operator-webhook-ca');
    const first = issue(ca);
    volume.write(first);
    await injectCa(ca, `https://127.0.0.1:${port}/mutate-v1-pod`);
    const serial = new X509Certificate(first.certPem).serialNumber;
    await eventually(
      async () => {
        expect(await servedSerial(port)).toBe(serial);
      },
      15_000,
      'the mounted certificate served',
    );
    // The API server trusted the injected CA and got the operator's answer (no policy: a warning).
    // It reads webhook configurations from a cache: retry until it has the patched one.
    const { warnings } = await eventually(createOptedInPod, 15_000, 'a pod admitted by the webhook');
    expect(
      warnings.some((w) => w.startsWith('smc-operator: not injected')),
      warnings.join('; '),
    ).toBe(true);
    // The operator wrote no Secret of its own.
    await expect(
      cp.kubeConfig
        .makeApiClient(CoreV1Api)
        .readNamespacedSecret({ name: 'smc-operator-webhook-tls', namespace: OPERATOR_NS }),
    ).rejects.toMatchObject({ code: 404 });
  });

  it('a renewal, and a renewal under a new CA, are served without a restart', async () => {
    // Renewed by the same CA: cainjector has nothing to do, the operator reloads the files.
    const renewed = issue(ca);
    volume.write(renewed);
    await eventually(
      async () => {
        expect(await servedSerial(port)).toBe(new X509Certificate(renewed.certPem).serialNumber);
      },
      15_000,
      'the renewed certificate served',
    );
    expect((await createOptedInPod()).warnings.length).toBeGreaterThan(0);

    // A new CA: the cainjector swaps the caBundle, the kubelet swaps the files.
    const ca2 = newCa('smc-operator-webhook-ca-2');
    const next = issue(ca2);
    await injectCa(ca2);
    volume.write(next);
    await eventually(
      async () => {
        expect(await servedSerial(port)).toBe(new X509Certificate(next.certPem).serialNumber);
        expect((await createOptedInPod()).warnings.length).toBeGreaterThan(0);
      },
      15_000,
      'the certificate of the new CA served and trusted',
    );
  });
});
