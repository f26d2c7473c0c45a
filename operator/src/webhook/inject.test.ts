import { describe, expect, it } from 'vitest';
import { applyPatch } from '../testing/jsonpatch.js';
import { policy } from '../testing/fixtures.js';
import {
  AdmissionPodSchema,
  STATUS_ANNOTATION,
  alreadyInjected,
  decideInjection,
  escapePointer,
  injectionPatch,
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
    expect(decideInjection(podOf(basePod), 'ns', {}, [p])).toEqual({ inject: false, reason: 'not opted in' });
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
    expect(d).toEqual({ inject: false, reason: 'already injected' });
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
    expect(skipped.response).toEqual({ uid: 'u1', allowed: true });
    const broken = admit(review({ spec: 'nonsense' }), ctx, settings);
    expect(broken.response.allowed).toBe(true);
    expect(broken.outcome).toBe('invalid');
  });
  it('rejects a body that is not an AdmissionReview', () => {
    expect(() => admit({ hello: 1 }, ctx, settings)).toThrow(/AdmissionReview/);
  });
});
