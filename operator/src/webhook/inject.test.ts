import { describe, expect, it } from 'vitest';
import { applyPatch } from '../testing/jsonpatch.js';
import { policy } from '../testing/fixtures.js';
import {
  AdmissionPodSchema,
  MAX_WARNING_LENGTH,
  STATUS_ANNOTATION,
  admissionWarning,
  admissionWarnings,
  alreadyInjected,
  conflictReason,
  decideInjection,
  escapePointer,
  injectionPatch,
  notInjectedReason,
  type AdmissionPod,
} from './inject.js';
import { admit } from './server.js';

const settings = {
  sidecarImage: 'smc:1',
  imagePullPolicy: 'IfNotPresent' as const,
  directoryShards: 2,
  cluster: 'east.example',
  rdmaResource: 'smc.dev/rdma',
};
const enabledNs = { 'smc.dev/injection': 'enabled' };

function podOf(raw: unknown): AdmissionPod {
  return AdmissionPodSchema.parse(raw);
}

const basePod = {
  metadata: { generateName: 'web-', namespace: 'ns', labels: { app: 'web' } },
  spec: { containers: [{ name: 'app', image: 'nginx' }] },
};

describe('decideInjection', () => {
  const p = policy('p', { tenant: 'blue', podSelector: { matchLabels: { app: 'web' } } });
  it('injects opted-in pods selected by a policy', () => {
    const d = decideInjection(podOf(basePod), 'ns', enabledNs, [p]);
    expect(d.inject).toBe(true);
  });
  it('needs the namespace label or the pod label', () => {
    expect(decideInjection(podOf(basePod), 'ns', {}, [p])).toEqual({
      inject: false,
      skip: 'not-opted-in',
      reason: 'not opted in',
    });
    const labelled = {
      ...basePod,
      metadata: { ...basePod.metadata, labels: { app: 'web', 'smc.dev/inject': 'true' } },
    };
    expect(decideInjection(podOf(labelled), 'ns', {}, [p]).inject).toBe(true);
  });
  it('honours the opt-out annotation', () => {
    const out = { ...basePod, metadata: { ...basePod.metadata, annotations: { 'smc.dev/inject': 'false' } } };
    expect(decideInjection(podOf(out), 'ns', enabledNs, [p]).inject).toBe(false);
  });
  it('skips pods no policy selects, and Disabled policies', () => {
    const other = { ...basePod, metadata: { ...basePod.metadata, labels: { app: 'db' } } };
    expect(decideInjection(podOf(other), 'ns', enabledNs, [p]).inject).toBe(false);
    const off = policy('off', { mode: 'Disabled' }, { created: '2020-01-01T00:00:00Z' });
    expect(decideInjection(podOf(basePod), 'ns', enabledNs, [p, off])).toMatchObject({ inject: false });
  });
  it('uses the deterministic winner among overlapping policies', () => {
    const older = policy('older', { tenant: 'red' }, { created: '2020-01-01T00:00:00Z' });
    const d = decideInjection(podOf(basePod), 'ns', enabledNs, [p, older]);
    expect(d.inject && d.policy.metadata.name).toBe('older');
  });
  it('names every selecting policy in a conflict, in precedence order', () => {
    const older = policy('older', { tenant: 'red' }, { created: '2020-01-01T00:00:00Z' });
    const same = policy('a-same-age', { tenant: 'red' }); // same creation time as p: the name decides
    for (const order of [
      [p, older, same],
      [same, p, older],
    ]) {
      const d = decideInjection(podOf(basePod), 'ns', enabledNs, order);
      expect(d).toMatchObject({
        inject: true,
        conflict: 'conflict: SmcPolicies older, a-same-age, p select the pod; older applies (oldest)',
      });
    }
    expect(decideInjection(podOf(basePod), 'ns', enabledNs, [p])).not.toHaveProperty('conflict');
    // A deleted policy no longer takes part, so it conflicts with nobody.
    const going = policy('going', {}, { created: '2019-01-01T00:00:00Z', deleting: true });
    expect(decideInjection(podOf(basePod), 'ns', enabledNs, [p, going])).not.toHaveProperty('conflict');
  });
  it('keeps a conflict reason short with many policies', () => {
    expect(conflictReason(['a', 'b', 'c', 'd', 'e'])).toBe(
      'conflict: SmcPolicies a, b, c and 2 more select the pod; a applies (oldest)',
    );
  });
  it('honours the opt-out label (the chart never sends such pods; the controller sees them)', () => {
    const out = {
      ...basePod,
      metadata: { ...basePod.metadata, labels: { app: 'web', 'smc.dev/inject': 'false' } },
    };
    expect(decideInjection(podOf(out), 'ns', enabledNs, [p])).toMatchObject({
      inject: false,
      skip: 'opted-out',
    });
  });
});

describe('notInjectedReason', () => {
  const p = policy('p', { tenant: 'blue', podSelector: { matchLabels: { app: 'web' } } });
  const withLabels = (labels: Record<string, string>, annotations?: Record<string, string>) =>
    podOf({ ...basePod, metadata: { ...basePod.metadata, labels, ...(annotations ? { annotations } : {}) } });
  it('explains an opted-in pod that no policy selects', () => {
    expect(notInjectedReason(withLabels({ app: 'db' }), 'ns', enabledNs, [p])).toBe(
      'no SmcPolicy selects the pod',
    );
    expect(notInjectedReason(podOf(basePod), 'ns', enabledNs, [])).toBe('no SmcPolicy selects the pod');
    // Opted in by the pod label instead of the namespace.
    expect(notInjectedReason(withLabels({ app: 'db', 'smc.dev/inject': 'true' }), 'ns', {}, [p])).toBe(
      'no SmcPolicy selects the pod',
    );
  });
  it('explains a Disabled policy in force', () => {
    const off = policy('off', { mode: 'Disabled' });
    expect(notInjectedReason(podOf(basePod), 'ns', enabledNs, [off])).toBe('SmcPolicy off is Disabled');
  });
  it('says nothing when the pod is injected or was not meant to be', () => {
    expect(notInjectedReason(podOf(basePod), 'ns', enabledNs, [p])).toBeUndefined(); // injected
    expect(notInjectedReason(withLabels({ app: 'db' }), 'ns', {}, [p])).toBeUndefined(); // not opted in
    expect(
      notInjectedReason(withLabels({ app: 'db' }), 'ns', { 'smc.dev/injection': 'disabled' }, []),
    ).toBeUndefined();
    expect(
      notInjectedReason(withLabels({ app: 'db' }, { 'smc.dev/inject': 'false' }), 'ns', enabledNs, []),
    ).toBeUndefined(); // opted out by annotation
    expect(notInjectedReason(withLabels({ 'smc.dev/inject': 'false' }), 'ns', enabledNs, [])).toBeUndefined();
    const pre = { ...basePod, spec: { containers: [{ name: 'app' }, { name: 'smc-sidecar' }] } };
    expect(notInjectedReason(podOf(pre), 'ns', enabledNs, [])).toBeUndefined(); // already injected
  });
});

describe('admissionWarning', () => {
  it('prefixes, replaces control characters and keeps to 120 characters', () => {
    expect(admissionWarning('not injected: x')).toBe('smc-operator: not injected: x');
    expect(admissionWarning('a\nb\u0007c\u007f')).toBe('smc-operator: a b c ');
    const long = admissionWarning(`not injected: SmcPolicy ${'x'.repeat(253)} is Disabled`);
    expect(long).toHaveLength(MAX_WARNING_LENGTH);
    expect(long.endsWith('...')).toBe(true);
  });
  it('warns for no policy, Disabled and conflicts; not for the quiet skips', () => {
    const p = policy('p', { tenant: 'blue' });
    const q = policy('q', { tenant: 'red' });
    const off = policy('off', { mode: 'Disabled' }, { created: '2020-01-01T00:00:00Z' });
    const warn = (
      ns: Record<string, string>,
      policies: ReturnType<typeof policy>[],
      raw: unknown = basePod,
    ) => admissionWarnings(decideInjection(podOf(raw), 'ns', ns, policies));
    expect(warn(enabledNs, [])).toEqual(['smc-operator: not injected: no SmcPolicy selects the pod']);
    expect(warn(enabledNs, [off, p])).toEqual([
      'smc-operator: not injected: SmcPolicy off is Disabled',
      'smc-operator: conflict: SmcPolicies off, p select the pod; off applies (oldest)',
    ]);
    expect(warn(enabledNs, [q, p])).toEqual([
      'smc-operator: conflict: SmcPolicies p, q select the pod; p applies (oldest)',
    ]);
    expect(warn(enabledNs, [p])).toEqual([]);
    expect(warn({}, [])).toEqual([]);
    const optedOut = {
      ...basePod,
      metadata: { ...basePod.metadata, annotations: { 'smc.dev/inject': 'false' } },
    };
    expect(warn(enabledNs, [], optedOut)).toEqual([]);
    const pre = { ...basePod, spec: { containers: [{ name: 'app' }, { name: 'smc-sidecar' }] } };
    expect(warn(enabledNs, [], pre)).toEqual([]);
  });
});

describe('injectionPatch', () => {
  const p = policy('p', { tenant: 'blue', vlans: [100], pkeys: ['0x8001'], allowedPeerTenants: ['red'] });

  it('adds init container, sidecar, directory volume and status annotation to a bare pod', () => {
    const pod = podOf(basePod);
    const ops = injectionPatch(pod, p, settings);
    expect(ops.map((o) => `${o.op} ${o.path}`)).toEqual([
      'add /spec/initContainers',
      'add /spec/containers/-',
      'add /spec/volumes',
      'add /metadata/annotations',
    ]);
    const out = applyPatch(basePod, ops) as unknown as {
      metadata: { annotations: Record<string, string> };
      spec: {
        containers: {
          name: string;
          command: string[];
          env: { name: string; value?: string; valueFrom?: unknown }[];
          ports: { containerPort: number }[];
          resources: { limits: Record<string, string> };
          securityContext: Record<string, unknown>;
        }[];
        initContainers: {
          name: string;
          command: string[];
          env: { name: string; value?: string }[];
          securityContext: Record<string, unknown>;
        }[];
        volumes: {
          name: string;
          projected: { sources: { configMap: { name: string; optional: boolean } }[] };
        }[];
      };
    };
    expect(out.spec.containers.map((c) => c.name)).toEqual(['app', 'smc-sidecar']);
    const init = out.spec.initContainers[0];
    expect(init?.name).toBe('smc-init');
    expect(init?.command).toEqual(['smc', 'intercept', 'install']);
    expect(init?.securityContext).toMatchObject({ privileged: false, capabilities: { add: ['NET_ADMIN'] } });
    // `smc intercept install` validates the whole sidecar configuration, the tenant included.
    expect(init?.env).toContainEqual({ name: 'SMC_TENANT', value: 'blue' });
    const sidecar = out.spec.containers[1];
    expect(sidecar?.securityContext).toMatchObject({
      runAsUser: 1337,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
    });
    expect(sidecar?.ports.map((x) => x.containerPort)).toEqual([15100, 15090, 15021]);
    expect(sidecar?.command).toEqual(['smc', 'sidecar']);
    // The node's RDMA devices come through the extended resource, the GID from the node's address.
    expect(sidecar?.resources.limits).toEqual({ memory: '512Mi', 'smc.dev/rdma': '1' });
    expect(sidecar?.env).toEqual(
      expect.arrayContaining([
        { name: 'SMC_RDMA_DEVICE', value: 'auto' },
        { name: 'SMC_GID_ADDRESS', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
      ]),
    );
    expect(sidecar?.env).toEqual(
      expect.arrayContaining([
        { name: 'SMC_TENANT', value: 'blue' },
        // The cluster's name goes into the tenant's User EID (sidecar/src/eid/tenant.ts).
        { name: 'SMC_CLUSTER', value: 'east.example' },
        { name: 'SMC_VLAN', value: '100' },
        { name: 'SMC_PKEY', value: '0x8001' },
        { name: 'SMC_ALLOWED_PEER_TENANTS', value: 'red' },
      ]),
    );
    expect(out.spec.volumes[0]?.projected.sources.map((s) => s.configMap.name)).toEqual([
      'smc-directory-0',
      'smc-directory-1',
    ]);
    expect(out.spec.volumes[0]?.projected.sources.every((s) => s.configMap.optional)).toBe(true);
    expect(JSON.parse(out.metadata.annotations[STATUS_ANNOTATION] ?? '')).toEqual({
      policy: 'p',
      tenant: 'blue',
      mode: 'Prefer',
    });
  });

  it('pins the devices a policy names and leaves out the resource when none is configured', () => {
    const pinned = policy('pinned', {
      tenant: 'blue',
      devices: [{ deviceName: 'mlx5_1' }, { netdev: 'ens1' }, { deviceName: 'mlx5_0' }],
    });
    const ops = injectionPatch(podOf(basePod), pinned, { ...settings, rdmaResource: null });
    const sidecar = ops.find((o) => o.path === '/spec/containers/-')?.value as {
      env: { name: string; value?: string }[];
      resources: { limits: Record<string, string> };
    };
    expect(sidecar.env).toContainEqual({ name: 'SMC_RDMA_DEVICE', value: 'mlx5_1,mlx5_0' });
    expect(sidecar.resources.limits).toEqual({ memory: '512Mi' });
  });

  it('appends to existing lists and annotations', () => {
    const raw = {
      metadata: { name: 'x', annotations: { a: 'b' }, labels: {} },
      spec: {
        containers: [{ name: 'app' }],
        initContainers: [{ name: 'setup' }],
        volumes: [{ name: 'data', emptyDir: {} }],
      },
    };
    const ops = injectionPatch(podOf(raw), p, settings);
    expect(ops.map((o) => `${o.op} ${o.path}`)).toEqual([
      'add /spec/initContainers/-',
      'add /spec/containers/-',
      'add /spec/volumes/-',
      `add /metadata/annotations/${escapePointer(STATUS_ANNOTATION)}`,
    ]);
    const out = applyPatch(raw, ops);
    expect(out.spec.initContainers.map((c) => c.name)).toEqual(['setup', 'smc-init']);
    expect(out.spec.volumes.map((v) => v.name)).toEqual(['data', 'smc-directory']);
    expect(out.metadata.annotations).toMatchObject({ a: 'b' });
    expect(Object.keys(out.metadata.annotations)).toContain('smc.dev/status');
  });

  it('is idempotent: an injected pod is recognised and not injected again', () => {
    const once = applyPatch(basePod, injectionPatch(podOf(basePod), p, settings));
    expect(alreadyInjected(podOf(once))).toBe(true);
    const d = decideInjection(podOf(once), 'ns', enabledNs, [p]);
    expect(d).toEqual({ inject: false, skip: 'already-injected', reason: 'already injected' });
  });

  it('escapes JSON pointer segments', () => {
    expect(escapePointer('smc.dev/status')).toBe('smc.dev~1status');
    expect(escapePointer('a~b')).toBe('a~0b');
  });
});

describe('admit', () => {
  const p = policy('p', { tenant: 'blue' });
  const ctx = { namespaceLabels: () => enabledNs, policies: () => [p] };
  const review = (object: unknown, operation = 'CREATE') => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      operation,
      namespace: 'ns',
      object,
    },
  });
  it('answers with a base64 JSONPatch for an injected pod', () => {
    const r = admit(review(basePod), ctx, settings);
    expect(r.outcome).toBe('injected');
    expect(r.response).toMatchObject({ uid: 'u1', allowed: true, patchType: 'JSONPatch' });
    const ops = JSON.parse(Buffer.from(r.response.patch ?? '', 'base64').toString()) as unknown[];
    expect(ops).toHaveLength(4);
  });
  it('allows without a patch when not injecting, and never denies', () => {
    expect(admit(review(basePod, 'UPDATE'), ctx, settings).response).toEqual({ uid: 'u1', allowed: true });
    const skipped = admit(review(basePod), { ...ctx, policies: () => [] }, settings);
    expect(skipped.outcome).toBe('skipped');
    expect(skipped.response).toEqual({
      uid: 'u1',
      allowed: true,
      warnings: ['smc-operator: not injected: no SmcPolicy selects the pod'],
    });
    const notOptedIn = admit(review(basePod), { ...ctx, namespaceLabels: () => ({}) }, settings);
    expect(notOptedIn).toMatchObject({ outcome: 'skipped', response: { uid: 'u1', allowed: true } });
    expect(notOptedIn.response.warnings).toBeUndefined();
    const broken = admit(review({ spec: 'nonsense' }), ctx, settings);
    expect(broken.response.allowed).toBe(true);
    expect(broken.outcome).toBe('invalid');
  });
  it('warns about a Disabled policy and about conflicts, also when injecting', () => {
    const off = admit(
      review(basePod),
      { ...ctx, policies: () => [policy('off', { mode: 'Disabled' })] },
      settings,
    );
    expect(off.outcome).toBe('skipped');
    expect(off.response.warnings).toEqual(['smc-operator: not injected: SmcPolicy off is Disabled']);
    const older = policy('older', { tenant: 'red' }, { created: '2020-01-01T00:00:00Z' });
    const both = admit(review(basePod), { ...ctx, policies: () => [p, older] }, settings);
    expect(both.outcome).toBe('injected');
    expect(both.response.patchType).toBe('JSONPatch');
    expect(both.response.warnings).toEqual([
      'smc-operator: conflict: SmcPolicies older, p select the pod; older applies (oldest)',
    ]);
    expect(admit(review(basePod), ctx, settings).response.warnings).toBeUndefined();
  });
  it('rejects a body that is not an AdmissionReview', () => {
    expect(() => admit({ hello: 1 }, ctx, settings)).toThrow(/AdmissionReview/);
  });
});
