import { describe, expect, it } from 'vitest';
import { ISTIO_PORTS, ISTIO_PROXY_UID, SIDECAR_DEFAULT_PORTS, SIDECAR_DEFAULT_UID } from '../api/sidecar.js';
import { loadConfig } from '../../../sidecar/src/config/load.js';
import { maxRegisteredMemory, SidecarConfigSchema } from '../../../sidecar/src/config/schema.js';
import { applyPatch } from '../testing/jsonpatch.js';
import { policy } from '../testing/fixtures.js';
import {
  AdmissionPodSchema,
  MAX_WARNING_LENGTH,
  SIDECAR_MODE_ANNOTATION,
  STATUS_ANNOTATION,
  admissionWarning,
  admissionWarnings,
  alreadyInjected,
  conflictReason,
  decideInjection,
  escapePointer,
  injectionPatch,
  metricsLabels,
  POD_POLICY_LABEL,
  POD_TENANT_LABEL,
  notInjectedReason,
  podRedirect,
  podSidecarMode,
  policyLimitsEnv,
  type AdmissionPod,
  type InjectionSettings,
} from './inject.js';
import { admit } from './server.js';

const settings: InjectionSettings = {
  sidecarImage: 'smc:1',
  imagePullPolicy: 'IfNotPresent',
  directoryShards: 2,
  cluster: 'east.example',
  rdmaResource: 'smc.dev/rdma',
  sidecarMode: 'container',
  ports: SIDECAR_DEFAULT_PORTS,
  sidecarUid: SIDECAR_DEFAULT_UID,
  excludeOutboundUids: [],
  interceptInbound: true,
};
const native: InjectionSettings = { ...settings, sidecarMode: 'native', nativeSidecarsSupported: true };
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
      'add /metadata/labels',
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
      runAsUser: 7609,
      runAsGroup: 7609,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
    });
    expect(sidecar?.ports.map((x) => x.containerPort)).toEqual([15100, 15190, 15121]);
    // A plain container has no restartPolicy of its own and no startupProbe.
    expect(sidecar).not.toHaveProperty('restartPolicy');
    expect(sidecar).not.toHaveProperty('startupProbe');
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

  it('labels the pod with its tenant and policy (for the metrics), keeping its own labels', () => {
    const out = applyPatch(basePod, injectionPatch(podOf(basePod), p, settings)) as unknown as {
      metadata: { labels: Record<string, string> };
    };
    expect(out.metadata.labels).toEqual({ app: 'web', 'smc.dev/tenant': 'blue', 'smc.dev/policy': 'p' });
    // Without labels; and a policy name too long for a label value is left out, not refused.
    const long = policy('x'.repeat(64), { tenant: 'red' });
    const bare = { metadata: { name: 'b' }, spec: { containers: [{ name: 'app' }] } };
    const ops = injectionPatch(podOf(bare), long, settings);
    expect(ops.find((o) => o.path === '/metadata/labels')?.value).toEqual({ 'smc.dev/tenant': 'red' });
    expect(metricsLabels(policy('p', { tenant: 'blue' }))).toEqual({
      [POD_TENANT_LABEL]: 'blue',
      [POD_POLICY_LABEL]: 'p',
    });
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
      'add /metadata/labels',
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

type Container = {
  name: string;
  restartPolicy?: string;
  command: string[];
  env: { name: string; value?: string; valueFrom?: unknown }[];
  ports: { name: string; containerPort: number }[];
  startupProbe?: { httpGet: { path: string; port: number }; periodSeconds: number; failureThreshold: number };
  readinessProbe: { httpGet: { path: string; port: number } };
  securityContext: { runAsUser: number; runAsGroup: number };
  volumeMounts?: unknown[];
  resources?: unknown;
};
type Injected = { spec: { containers: Container[]; initContainers: Container[] } };

function injectedPod(raw: unknown, s: InjectionSettings): Injected {
  return applyPatch(
    raw,
    injectionPatch(podOf(raw), policy('p', { tenant: 'blue' }), s),
  ) as unknown as Injected;
}

function envOf(c: Container | undefined): Record<string, string | undefined> {
  return Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
}

describe('sidecar modes', () => {
  it('native: smc-init then the sidecar as an init container with restartPolicy Always', () => {
    const ops = injectionPatch(podOf(basePod), policy('p', { tenant: 'blue' }), native);
    expect(ops.map((o) => `${o.op} ${o.path}`)).toEqual([
      'add /spec/initContainers',
      'add /spec/volumes',
      'add /metadata/annotations',
      'add /metadata/labels',
    ]);
    const out = injectedPod(basePod, native);
    expect(out.spec.containers.map((c) => c.name)).toEqual(['app']);
    expect(out.spec.initContainers.map((c) => c.name)).toEqual(['smc-init', 'smc-sidecar']);
    const [init, sidecar] = out.spec.initContainers;
    // smc-init runs to completion; only the sidecar restarts (and outlives the app containers).
    expect(init).not.toHaveProperty('restartPolicy');
    expect(sidecar?.restartPolicy).toBe('Always');
    expect(sidecar?.command).toEqual(['smc', 'sidecar']);
    // The kubelet starts the next container only once this passes: the app finds the sidecar up.
    expect(sidecar?.startupProbe).toMatchObject({
      httpGet: { path: '/healthz/ready', port: 15121 },
      periodSeconds: 1,
    });
    expect(sidecar?.readinessProbe.httpGet).toEqual({ path: '/healthz/ready', port: 15121 });
    expect(sidecar?.ports.find((p) => p.name === 'smc-clc')?.containerPort).toBe(15100);
    expect(sidecar?.securityContext).toMatchObject({ runAsUser: 7609, runAsGroup: 7609 });
  });

  it('redirect peers: an smc-redirect container with NET_ADMIN only keeps the sets, in both modes', () => {
    const keys = ['a2V5LWEtMzItYnl0ZXMtbG9uZy0tLS0tLS0tLS0tLS0=' as const];
    for (const [s, where] of [
      [{ ...settings, interceptRedirect: 'peers' as const, directoryPublicKeys: keys }, 'containers'],
      [{ ...native, interceptRedirect: 'peers' as const, directoryPublicKeys: keys }, 'initContainers'],
    ] as const) {
      const out = injectedPod(basePod, s);
      const init = out.spec.initContainers.find((c) => c.name === 'smc-init');
      expect(envOf(init)['SMC_INTERCEPT_REDIRECT']).toBe('peers');
      const list = where === 'containers' ? out.spec.containers : out.spec.initContainers;
      const redirect = list.find((c) => c.name === 'smc-redirect');
      expect(redirect?.command).toEqual(['smc', 'intercept', 'sync']);
      expect(redirect?.securityContext).toMatchObject({
        runAsUser: 0,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
      });
      expect(redirect).not.toHaveProperty('ports');
      expect(JSON.stringify(redirect?.resources)).not.toContain('rdma');
      if (where === 'initContainers') {
        // Before the sidecar, which the application containers wait for; no probe of its own.
        expect(out.spec.initContainers.map((c) => c.name)).toEqual([
          'smc-init',
          'smc-redirect',
          'smc-sidecar',
        ]);
        expect(redirect?.restartPolicy).toBe('Always');
        expect(redirect).not.toHaveProperty('startupProbe');
      } else {
        expect(out.spec.containers.map((c) => c.name)).toEqual(['app', 'smc-sidecar', 'smc-redirect']);
      }
      // It reads the directory and decides as the sidecar does: the same policy, keys and mount.
      const sidecar = [...out.spec.containers, ...out.spec.initContainers].find(
        (c) => c.name === 'smc-sidecar',
      );
      for (const name of [
        'SMC_TENANT',
        'SMC_MODE',
        'SMC_ALLOWED_PEER_TENANTS',
        'SMC_DIRECTORY',
        'SMC_DIRECTORY_PUBLIC_KEYS',
      ])
        expect(envOf(redirect)[name]).toBe(envOf(sidecar)[name]);
      expect(redirect?.volumeMounts).toEqual(sidecar?.volumeMounts);
      // Its configuration loads (the same schema as the sidecar's), as `smc intercept sync` reads it.
      const cfg = loadConfig({ env: { ...envOf(redirect), POD_NAMESPACE: 'ns' } as Record<string, string> });
      expect(cfg.intercept.redirect).toBe('peers');
      expect(cfg.directory.publicKeys).toEqual(keys);
    }
    // all (the default): no third container, no sets.
    const plain = injectedPod(basePod, settings);
    expect(plain.spec.containers.map((c) => c.name)).toEqual(['app', 'smc-sidecar']);
    expect(envOf(plain.spec.initContainers[0])).not.toHaveProperty('SMC_INTERCEPT_REDIRECT');
  });

  it('the smc.dev/redirect annotation overrides the operator, and a bad value is warned about', () => {
    const annotated = (value: string) => ({
      ...basePod,
      metadata: { ...basePod.metadata, annotations: { 'smc.dev/redirect': value } },
    });
    const names = (raw: unknown, s: InjectionSettings) =>
      injectedPod(raw, s).spec.containers.map((c) => c.name);
    expect(names(annotated('peers'), settings)).toEqual(['app', 'smc-sidecar', 'smc-redirect']);
    expect(names(annotated('all'), { ...settings, interceptRedirect: 'peers' })).toEqual([
      'app',
      'smc-sidecar',
    ]);
    expect(podRedirect(podOf(annotated('some')), settings)).toEqual({
      redirect: 'all',
      warning: 'smc.dev/redirect "some" is not all or peers; all used',
    });
    expect(podRedirect(podOf(basePod), { ...settings, interceptRedirect: 'peers' })).toEqual({
      redirect: 'peers',
    });
  });

  it("native: after the pod's own init containers, which run before any redirect", () => {
    const raw = {
      metadata: { name: 'x' },
      spec: { containers: [{ name: 'app' }], initContainers: [{ name: 'migrate' }, { name: 'seed' }] },
    };
    const ops = injectionPatch(podOf(raw), policy('p', { tenant: 'blue' }), native);
    expect(ops.slice(0, 2).map((o) => `${o.op} ${o.path}`)).toEqual([
      'add /spec/initContainers/-',
      'add /spec/initContainers/-',
    ]);
    const out = injectedPod(raw, native);
    expect(out.spec.initContainers.map((c) => c.name)).toEqual([
      'migrate',
      'seed',
      'smc-init',
      'smc-sidecar',
    ]);
    expect(out.spec.containers.map((c) => c.name)).toEqual(['app']);
  });

  it('recognises a native injection as already injected', () => {
    const once = injectedPod(basePod, native);
    expect(alreadyInjected(podOf(once))).toBe(true);
    const sidecarOnly = { ...basePod, spec: { ...basePod.spec, initContainers: [{ name: 'smc-sidecar' }] } };
    expect(alreadyInjected(podOf(sidecarOnly))).toBe(true);
  });

  it('the pod annotation overrides the operator: native, container or auto', () => {
    const annotated = (value: string) =>
      podOf({
        ...basePod,
        metadata: { ...basePod.metadata, annotations: { [SIDECAR_MODE_ANNOTATION]: value } },
      });
    expect(podSidecarMode(annotated('native'), settings)).toEqual({ mode: 'native' });
    expect(podSidecarMode(annotated('container'), native)).toEqual({ mode: 'container' });
    expect(podSidecarMode(annotated('auto'), native)).toEqual({ mode: 'native' });
    expect(podSidecarMode(annotated(' container '), native)).toEqual({ mode: 'container' });
    expect(podSidecarMode(podOf(basePod), native)).toEqual({ mode: 'native' });
    expect(podSidecarMode(podOf(basePod), settings)).toEqual({ mode: 'container' });
    expect(podSidecarMode(annotated('sidecar'), native)).toEqual({
      mode: 'native',
      warning: 'smc.dev/sidecar-mode "sidecar" is not native, container or auto; native used',
    });
    // Asked for on a server known to be older than 1.29: given, with a warning.
    const old = { ...settings, nativeSidecarsSupported: false };
    expect(podSidecarMode(annotated('native'), old)).toEqual({
      mode: 'native',
      warning: 'smc.dev/sidecar-mode=native needs Kubernetes 1.29+: the pod may never start',
    });
    const out = injectedPod(
      {
        ...basePod,
        metadata: { ...basePod.metadata, annotations: { [SIDECAR_MODE_ANNOTATION]: 'container' } },
      },
      native,
    );
    expect(out.spec.containers.map((c) => c.name)).toEqual(['app', 'smc-sidecar']);
    expect(out.spec.initContainers.map((c) => c.name)).toEqual(['smc-init']);
  });

  it('admit follows the annotation and passes its warning on', () => {
    const ctx = { namespaceLabels: () => enabledNs, policies: () => [policy('p', { tenant: 'blue' })] };
    const review = (annotations: Record<string, string>) => ({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u2',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'CREATE',
        namespace: 'ns',
        object: { ...basePod, metadata: { ...basePod.metadata, annotations } },
      },
    });
    const patchOf = (r: ReturnType<typeof admit>) =>
      JSON.parse(Buffer.from(r.response.patch ?? '', 'base64').toString()) as { path: string }[];
    const asContainer = admit(review({ [SIDECAR_MODE_ANNOTATION]: 'container' }), ctx, native);
    expect(patchOf(asContainer).map((o) => o.path)).toContain('/spec/containers/-');
    expect(asContainer.response.warnings).toBeUndefined();
    const bad = admit(review({ [SIDECAR_MODE_ANNOTATION]: 'yes' }), ctx, native);
    expect(patchOf(bad).map((o) => o.path)).not.toContain('/spec/containers/-');
    expect(bad.response.warnings).toEqual([
      'smc-operator: smc.dev/sidecar-mode "yes" is not native, container or auto; native used',
    ]);
  });
});

describe('ports and uid', () => {
  it('default clear of Istio: no port of Envoy or ztunnel, not its uid 1337', () => {
    for (const p of Object.values(SIDECAR_DEFAULT_PORTS)) expect(ISTIO_PORTS).not.toContain(p);
    expect(new Set(Object.values(SIDECAR_DEFAULT_PORTS)).size).toBe(6);
    expect(SIDECAR_DEFAULT_UID).not.toBe(ISTIO_PROXY_UID);
    // The sidecar's own defaults are the operator's: a sidecar run by hand matches an injected one.
    const cfg = SidecarConfigSchema.parse({ tenant: 't' });
    expect(cfg.ports).toEqual(SIDECAR_DEFAULT_PORTS);
    expect(cfg.intercept.sidecarUid).toBe(SIDECAR_DEFAULT_UID);
  });

  it('gives both containers the configured ports, and the sidecar the uid', () => {
    const ports = {
      outbound: 16001,
      inbound: 16006,
      smc: 16100,
      metrics: 16090,
      health: 16021,
      admin: 16000,
    };
    const custom: InjectionSettings = { ...native, ports, sidecarUid: 4242 };
    const out = injectedPod(basePod, custom);
    const [init, sidecar] = out.spec.initContainers;
    const portVars = {
      SMC_PORT_OUTBOUND: '16001',
      SMC_PORT_INBOUND: '16006',
      SMC_PORT_SMC: '16100',
      SMC_PORT_METRICS: '16090',
      SMC_PORT_HEALTH: '16021',
      SMC_PORT_ADMIN: '16000',
    };
    // smc-init's rules redirect to the listeners and leave the others alone inbound.
    expect(envOf(init)).toMatchObject({ ...portVars, SMC_SIDECAR_UID: '4242' });
    expect(envOf(init)).not.toHaveProperty('SMC_EXCLUDE_OUTBOUND_UIDS');
    expect(envOf(init)).not.toHaveProperty('SMC_INTERCEPT_INBOUND');
    // The sidecar listens there; `smc connections` in it finds the admin port in SMC_PORT_ADMIN.
    expect(envOf(sidecar)).toMatchObject(portVars);
    expect(sidecar?.ports.map((p) => [p.name, p.containerPort])).toEqual([
      ['smc-clc', 16100],
      ['smc-metrics', 16090],
      ['smc-health', 16021],
    ]);
    expect(sidecar?.startupProbe?.httpGet.port).toBe(16021);
    expect(sidecar?.readinessProbe.httpGet.port).toBe(16021);
    expect(sidecar?.securityContext).toMatchObject({ runAsUser: 4242, runAsGroup: 4242 });
  });

  it("next to Istio: Envoy's uid left alone outbound, no inbound redirect", () => {
    const out = injectedPod(basePod, { ...settings, excludeOutboundUids: [1337], interceptInbound: false });
    expect(envOf(out.spec.initContainers[0])).toMatchObject({
      SMC_EXCLUDE_OUTBOUND_UIDS: '1337',
      SMC_INTERCEPT_INBOUND: 'false',
    });
    // The sidecar's own configuration does not need them.
    expect(envOf(out.spec.containers[1])).not.toHaveProperty('SMC_EXCLUDE_OUTBOUND_UIDS');
  });

  it("passes the handshake timeouts to the sidecar, and leaves the sidecar's defaults when unset", () => {
    const slow = injectedPod(basePod, {
      ...settings,
      timeouts: { clcHandshakeMs: 30_000, linkSetupMs: 20_000 },
    });
    expect(envOf(slow.spec.containers[1])).toMatchObject({
      SMC_CLC_TIMEOUT_MS: '30000',
      SMC_LINK_SETUP_TIMEOUT_MS: '20000',
    });
    expect(envOf(injectedPod(basePod, settings).spec.containers[1])).not.toHaveProperty('SMC_CLC_TIMEOUT_MS');
  });

  it('passes the bound on handshakes in flight to the sidecar', () => {
    const busy = injectedPod(basePod, { ...settings, maxConcurrentHandshakes: 256 });
    expect(envOf(busy.spec.containers[1])).toMatchObject({ SMC_MAX_CONCURRENT_HANDSHAKES: '256' });
    expect(envOf(injectedPod(basePod, settings).spec.containers[1])).not.toHaveProperty(
      'SMC_MAX_CONCURRENT_HANDSHAKES',
    );
  });
});

describe('policy limits', () => {
  const limited = policy('limited', {
    tenant: 'blue',
    limits: { maxConnections: 64, rmbSize: '64Ki', maxRegisteredMemory: '16Mi' },
  });

  function containers(p: ReturnType<typeof policy>): Container[] {
    const out = applyPatch(basePod, injectionPatch(podOf(basePod), p, settings)) as unknown as Injected;
    return [...out.spec.initContainers, ...out.spec.containers];
  }

  it('gives the sidecar maxConnections, rmbSize and maxRegisteredMemory in bytes', () => {
    const [init, , sidecar] = containers(limited);
    expect(sidecar?.name).toBe('smc-sidecar');
    expect(envOf(sidecar)).toMatchObject({
      SMC_MAX_CONNECTIONS: '64',
      SMC_RMB_SIZE: '65536',
      SMC_MAX_REGISTERED_MEMORY: String(16 * 1024 * 1024),
    });
    // The interception rules do not depend on them.
    expect(envOf(init)).not.toHaveProperty('SMC_MAX_CONNECTIONS');
  });

  it('are what the sidecar enforces: its configuration reads the injected values', () => {
    const env = Object.fromEntries(policyLimitsEnv(limited).map((e) => [e.name, e.value]));
    const cfg = loadConfig({ env: { SMC_TENANT: 'blue', ...env } });
    expect(cfg.limits).toMatchObject({ maxConnections: 64, rmbSize: 65536 });
    expect(maxRegisteredMemory(cfg.limits)).toBe(16 * 1024 * 1024);
  });

  it('reads every quantity form the CRD admits', () => {
    const env = (maxRegisteredMemory: string | number, rmbSize = '1Mi') =>
      policyLimitsEnv(policy('q', { limits: { maxRegisteredMemory, rmbSize } }));
    expect(env('1Gi')).toEqual([
      { name: 'SMC_RMB_SIZE', value: '1048576' },
      { name: 'SMC_MAX_REGISTERED_MEMORY', value: '1073741824' },
    ]);
    expect(env('500M')).toContainEqual({ name: 'SMC_MAX_REGISTERED_MEMORY', value: '500000000' });
    expect(env(268435456)).toContainEqual({ name: 'SMC_MAX_REGISTERED_MEMORY', value: '268435456' });
    expect(env('268435456', '16Ki')).toEqual([
      { name: 'SMC_RMB_SIZE', value: '16384' },
      { name: 'SMC_MAX_REGISTERED_MEMORY', value: '268435456' },
    ]);
  });

  it("leaves out what the policy does not set: the sidecar's defaults apply", () => {
    expect(policyLimitsEnv(policy('none', {}))).toEqual([]);
    expect(policyLimitsEnv(policy('null', { limits: null }))).toEqual([]);
    expect(policyLimitsEnv(policy('one', { limits: { maxConnections: 10 } }))).toEqual([
      { name: 'SMC_MAX_CONNECTIONS', value: '10' },
    ]);
    const names = (c: Container | undefined) => (c?.env ?? []).map((e) => e.name);
    expect(names(containers(policy('plain', { tenant: 'blue' }))[2])).not.toContain('SMC_RMB_SIZE');
    // Not a quantity (the API server's schema would not have let it in): not passed on.
    expect(policyLimitsEnv(policy('bad', { limits: { maxRegisteredMemory: 'lots' } }))).toEqual([]);
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
    expect(ops).toHaveLength(5);
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
