import { z } from 'zod';
import {
  DIRECTORY_MOUNT_PATH,
  DIRECTORY_VOLUME_NAME,
  directoryConfigMapName,
  directoryFileName,
} from '../api/directory.js';
import { quantityValue } from '../api/quantity.js';
import type { SidecarPorts, SidecarTimeouts } from '../api/sidecar.js';
import type { SmcPolicy } from '../api/smcpolicy.js';
import { INIT_CONTAINER, REDIRECT_CONTAINER, SIDECAR_CONTAINER, SMC_PORT_NAME } from '../policy/pod.js';
import { candidatePolicies } from '../policy/resolve.js';

export const NAMESPACE_INJECTION_LABEL = 'smc.dev/injection';
export const POD_INJECT_LABEL = 'smc.dev/inject';
export const POD_INJECT_ANNOTATION = 'smc.dev/inject';
export const STATUS_ANNOTATION = 'smc.dev/status';
/** A pod's choice of sidecar mode (`native`, `container`, or `auto` = the operator's), like Istio's `sidecar.istio.io/nativeSidecar`. */
export const SIDECAR_MODE_ANNOTATION = 'smc.dev/sidecar-mode';
/** Per pod: `all` or `peers`, overriding the operator's --sidecar-intercept-redirect. */
export const REDIRECT_ANNOTATION = 'smc.dev/redirect';

/**
 * `native`: an init container with `restartPolicy: Always` (Kubernetes 1.29+), started (its
 * startupProbe passed) before the application containers, stopped after them, and not keeping a
 * Job's pod from completing. `container`: one more regular container, for older clusters.
 */
export const SIDECAR_MODES = ['native', 'container'] as const;
export type SidecarMode = (typeof SIDECAR_MODES)[number];

/** The pod as the webhook sees it in an AdmissionReview (more fields are kept than in the cache). */
export const AdmissionPodSchema = z.object({
  metadata: z
    .object({
      name: z.string().optional(),
      generateName: z.string().optional(),
      namespace: z.string().optional(),
      labels: z.record(z.string(), z.string()).nullish(),
      annotations: z.record(z.string(), z.string()).nullish(),
    })
    .default({}),
  spec: z.object({
    containers: z.array(z.object({ name: z.string() }).passthrough()).default([]),
    initContainers: z.array(z.object({ name: z.string() }).passthrough()).nullish(),
    volumes: z.array(z.object({ name: z.string() }).passthrough()).nullish(),
  }),
});
export type AdmissionPod = z.infer<typeof AdmissionPodSchema>;

export interface InjectionSettings {
  readonly sidecarImage: string;
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  readonly directoryShards: number;
  /** The cluster's name in the tenants' User EIDs (sidecar SMC_CLUSTER). */
  readonly cluster: string;
  /**
   * Extended resource that maps the node's RDMA devices into the sidecar (the node agent's device
   * plugin, `smc.dev/rdma`, or another plugin's); null when the cluster gives device access
   * another way.
   */
  readonly rdmaResource: string | null;
  /** How the sidecar is injected when the pod does not say (the operator resolves `auto` at start). */
  readonly sidecarMode: SidecarMode;
  /**
   * Whether the API server runs native sidecars (1.29 or later); undefined when not known. A pod
   * that asks for `native` on an older server is still given it, with a warning.
   */
  readonly nativeSidecarsSupported?: boolean | undefined;
  /** The sidecar's ports (SMC_PORT_*, container ports, probes, the interception rules). */
  readonly ports: SidecarPorts;
  /** The sidecar's uid and gid, exempt from the interception rules. */
  readonly sidecarUid: number;
  /** More uids the rules leave alone outbound: another proxy's, e.g. Istio's 1337 (docs/istio.md). */
  readonly excludeOutboundUids: readonly number[];
  /** Redirect inbound TCP to the sidecar (off next to Istio's sidecar, docs/istio.md). */
  readonly interceptInbound: boolean;
  /**
   * `peers`: the rules redirect outbound TCP only to directory peers the sidecar may upgrade with,
   * and skip inbound TCP from peers it may not; an `smc-redirect` container keeps those sets.
   * `all` (the default): every connection passes the sidecar.
   */
  readonly interceptRedirect?: 'all' | 'peers' | undefined;
  /** The sidecar's handshake timeouts; the sidecar's own defaults when absent. */
  readonly timeouts?: SidecarTimeouts | undefined;
  /** The sidecar's bound on handshakes in flight (limits.maxConcurrentHandshakes); its default when absent. */
  readonly maxConcurrentHandshakes?: number | undefined;
  /**
   * The operator's directory signing public keys (base64): the sidecar accepts only directory
   * shards signed with one of them for its own namespace (SMC_DIRECTORY_PUBLIC_KEYS). A pod's env
   * cannot be changed after creation, so a namespace user cannot take this trust away from it.
   */
  readonly directoryPublicKeys?: readonly string[] | undefined;
}

/**
 * Why a pod is not injected. `no-policy` and `disabled` concern a pod that opted in: its owner
 * must act (add or fix a policy), so they are reported (admission warning, pod Event); the others
 * are the intended outcome and stay quiet.
 */
export type SkipKind = 'opted-out' | 'not-opted-in' | 'already-injected' | 'no-policy' | 'disabled';

/** The skips a user must hear about. */
export const REPORTED_SKIPS: ReadonlySet<SkipKind> = new Set<SkipKind>(['no-policy', 'disabled']);

export type InjectionDecision =
  | {
      readonly inject: true;
      readonly policy: SmcPolicy;
      /** Set when more than one policy selects the pod (the oldest still applies). */
      readonly conflict?: string;
    }
  | {
      readonly inject: false;
      readonly skip: SkipKind;
      readonly reason: string;
      readonly conflict?: string;
    };

/** What the decision reads of a pod: the AdmissionReview's pod or a cached one. */
export interface InjectionSubject {
  readonly metadata: {
    readonly name?: string | undefined;
    readonly labels?: Readonly<Record<string, string>> | null | undefined;
    readonly annotations?: Readonly<Record<string, string>> | null | undefined;
  };
  readonly spec: {
    readonly containers: readonly { readonly name: string }[];
    readonly initContainers?: readonly { readonly name: string }[] | null | undefined;
  };
}

/** Policy names listed in a conflict reason before the rest is counted (warnings are short). */
const CONFLICT_NAMES_SHOWN = 3;

/**
 * `conflict: SmcPolicies a, b select the pod; a applies (oldest)`: names in precedence order, the
 * first being the one in force.
 */
export function conflictReason(names: readonly string[]): string {
  const shown = names.slice(0, CONFLICT_NAMES_SHOWN).join(', ');
  const more = names.length > CONFLICT_NAMES_SHOWN ? ` and ${names.length - CONFLICT_NAMES_SHOWN} more` : '';
  return `conflict: SmcPolicies ${shown}${more} select the pod; ${names[0] ?? ''} applies (oldest)`;
}

/**
 * Whether (and under which policy) a pod gets the sidecar. Pure: all inputs are given.
 *
 * Overlapping policies: the oldest (then by name, `comparePolicies`) applies, exactly as the
 * controller resolves them for status and directory, so the injected sidecar and the published
 * endpoint never disagree. The overlap is not silent: `conflict` names every selecting policy,
 * and the younger ones report `Conflicted=True`.
 */
export function decideInjection(
  pod: InjectionSubject,
  namespace: string,
  namespaceLabels: Readonly<Record<string, string>> | null | undefined,
  policies: Iterable<SmcPolicy>,
): InjectionDecision {
  const annotations = pod.metadata.annotations ?? {};
  const labels = pod.metadata.labels ?? {};
  if (annotations[POD_INJECT_ANNOTATION] === 'false')
    return { inject: false, skip: 'opted-out', reason: 'opted out by annotation' };
  // The chart's objectSelector keeps such pods from the webhook; the controller sees them too.
  if (labels[POD_INJECT_LABEL] === 'false')
    return { inject: false, skip: 'opted-out', reason: 'opted out by label' };
  const optedIn =
    namespaceLabels?.[NAMESPACE_INJECTION_LABEL] === 'enabled' || labels[POD_INJECT_LABEL] === 'true';
  if (!optedIn) return { inject: false, skip: 'not-opted-in', reason: 'not opted in' };
  if (alreadyInjected(pod)) return { inject: false, skip: 'already-injected', reason: 'already injected' };
  const candidates = candidatePolicies(
    { metadata: { name: pod.metadata.name ?? '', namespace, labels }, spec: { containers: [] } },
    policies,
  );
  const policy = candidates[0];
  if (!policy) return { inject: false, skip: 'no-policy', reason: 'no SmcPolicy selects the pod' };
  const conflict =
    candidates.length > 1 ? { conflict: conflictReason(candidates.map((p) => p.metadata.name)) } : {};
  if (policy.spec.mode === 'Disabled')
    return {
      inject: false,
      skip: 'disabled',
      reason: `SmcPolicy ${policy.metadata.name} is Disabled`,
      ...conflict,
    };
  return { inject: true, policy, ...conflict };
}

/**
 * Why a pod that opted in is not injected, when its owner must act; undefined when it is
 * injected or is not meant to be. The webhook's warning and the controller's pod Event both come
 * from here, so they say the same thing.
 */
export function notInjectedReason(
  pod: InjectionSubject,
  namespace: string,
  namespaceLabels: Readonly<Record<string, string>> | null | undefined,
  policies: Iterable<SmcPolicy>,
): string | undefined {
  return reportedReason(decideInjection(pod, namespace, namespaceLabels, policies));
}

/** The reason of a decision that must be reported, if any. */
export function reportedReason(d: InjectionDecision): string | undefined {
  return !d.inject && REPORTED_SKIPS.has(d.skip) ? d.reason : undefined;
}

/** Kubernetes truncates longer admission warnings (and kubectl prints them on one line). */
export const MAX_WARNING_LENGTH = 120;
const WARNING_PREFIX = 'smc-operator: ';

/** One admission warning: prefixed, control characters replaced, at most 120 characters. */
export function admissionWarning(text: string): string {
  // Policy names are DNS subdomains, but keep the header value safe whatever comes in.
  // eslint-disable-next-line no-control-regex
  const clean = `${WARNING_PREFIX}${text}`.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  return clean.length <= MAX_WARNING_LENGTH ? clean : `${clean.slice(0, MAX_WARNING_LENGTH - 3)}...`;
}

/** The admission warnings of a decision: why an opted-in pod is not injected, and any conflict. */
export function admissionWarnings(d: InjectionDecision): string[] {
  const out: string[] = [];
  const reason = reportedReason(d);
  if (reason !== undefined) out.push(admissionWarning(`not injected: ${reason}`));
  if (d.conflict !== undefined) out.push(admissionWarning(d.conflict));
  return out;
}

export function alreadyInjected(pod: InjectionSubject): boolean {
  const init = pod.spec.initContainers ?? [];
  return (
    pod.spec.containers.some((c) => c.name === SIDECAR_CONTAINER) ||
    init.some((c) => c.name === INIT_CONTAINER || c.name === SIDECAR_CONTAINER)
  );
}

/** The sidecar mode of a pod: its annotation, else the operator's; and a warning for the creator. */
export function podSidecarMode(
  pod: InjectionSubject,
  s: InjectionSettings,
): { readonly mode: SidecarMode; readonly warning?: string } {
  const raw = pod.metadata.annotations?.[SIDECAR_MODE_ANNOTATION]?.trim();
  if (raw === undefined || raw === '' || raw === 'auto') return { mode: s.sidecarMode };
  const mode = SIDECAR_MODES.find((m) => m === raw);
  if (mode === undefined)
    return {
      mode: s.sidecarMode,
      warning: `${SIDECAR_MODE_ANNOTATION} "${raw}" is not native, container or auto; ${s.sidecarMode} used`,
    };
  if (mode === 'native' && s.nativeSidecarsSupported === false)
    return {
      mode,
      warning: `${SIDECAR_MODE_ANNOTATION}=native needs Kubernetes 1.29+: the pod may never start`,
    };
  return { mode };
}

/** What a pod's outbound rules redirect: its annotation, else the operator's; and a warning for the creator. */
export function podRedirect(
  pod: InjectionSubject,
  s: InjectionSettings,
): { readonly redirect: 'all' | 'peers'; readonly warning?: string } {
  const fallback = s.interceptRedirect ?? 'all';
  const raw = pod.metadata.annotations?.[REDIRECT_ANNOTATION]?.trim();
  if (raw === undefined || raw === '') return { redirect: fallback };
  if (raw === 'all' || raw === 'peers') return { redirect: raw };
  return {
    redirect: fallback,
    warning: `${REDIRECT_ANNOTATION} "${raw}" is not all or peers; ${fallback} used`,
  };
}

export interface JsonPatchOp {
  readonly op: 'add' | 'replace' | 'remove';
  readonly path: string;
  readonly value?: unknown;
}

/** RFC 6901 escaping of one path segment. */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The sidecar's ports as its environment (sidecar/src/config/env.ts), in both injected containers. */
export function portEnv(ports: SidecarPorts): { name: string; value: string }[] {
  return [
    { name: 'SMC_PORT_OUTBOUND', value: String(ports.outbound) },
    { name: 'SMC_PORT_INBOUND', value: String(ports.inbound) },
    { name: 'SMC_PORT_SMC', value: String(ports.smc) },
    { name: 'SMC_PORT_METRICS', value: String(ports.metrics) },
    { name: 'SMC_PORT_HEALTH', value: String(ports.health) },
    // Also read by `smc connections` (kubectl smc connections) in the sidecar container.
    { name: 'SMC_PORT_ADMIN', value: String(ports.admin) },
  ];
}

/** The containers that load nftables rules: uid 0 (nft needs it) with NET_ADMIN and nothing else. */
const NET_ADMIN_ONLY = {
  privileged: false,
  allowPrivilegeEscalation: false,
  runAsUser: 0,
  runAsNonRoot: false,
  capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
} as const;

export function initContainer(s: InjectionSettings, policy: SmcPolicy): Record<string, unknown> {
  // The rules redirect to the outbound and inbound ports and never redirect the others inbound.
  const env = [
    ...portEnv(s.ports),
    { name: 'SMC_SIDECAR_UID', value: String(s.sidecarUid) },
    // The sidecar's configuration is validated whole, also for installing the rules.
    { name: 'SMC_TENANT', value: policy.spec.tenant },
  ];
  if (s.excludeOutboundUids.length > 0)
    env.push({ name: 'SMC_EXCLUDE_OUTBOUND_UIDS', value: s.excludeOutboundUids.join(',') });
  if (!s.interceptInbound) env.push({ name: 'SMC_INTERCEPT_INBOUND', value: 'false' });
  if (s.interceptRedirect === 'peers') env.push({ name: 'SMC_INTERCEPT_REDIRECT', value: 'peers' });
  return {
    name: INIT_CONTAINER,
    image: s.sidecarImage,
    imagePullPolicy: s.imagePullPolicy,
    command: ['smc', 'intercept', 'install'],
    env,
    securityContext: NET_ADMIN_ONLY,
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
  };
}

/**
 * The sidecar container. `native`: for `initContainers`, with `restartPolicy: Always` and a
 * startupProbe, so the kubelet starts the application containers only once the sidecar's
 * listeners are up and its directory is read (GET /healthz/ready).
 */
export function sidecarContainer(
  s: InjectionSettings,
  policy: SmcPolicy,
  mode: SidecarMode = 'container',
): Record<string, unknown> {
  const fieldEnv = (name: string, fieldPath: string): Record<string, unknown> => ({
    name,
    valueFrom: { fieldRef: { fieldPath } },
  });
  const env: Record<string, unknown>[] = [
    fieldEnv('POD_NAME', 'metadata.name'),
    fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('POD_IP', 'status.podIP'),
    fieldEnv('NODE_NAME', 'spec.nodeName'),
    { name: 'SMC_POLICY', value: policy.metadata.name },
    { name: 'SMC_TENANT', value: policy.spec.tenant },
    { name: 'SMC_CLUSTER', value: s.cluster },
    { name: 'SMC_MODE', value: policy.spec.mode },
    { name: 'SMC_ALLOWED_PEER_TENANTS', value: (policy.spec.allowedPeerTenants ?? []).join(',') },
    { name: 'SMC_DIRECTORY', value: DIRECTORY_MOUNT_PATH },
    { name: 'SMC_RDMA_DEVICE', value: policyDevices(policy) },
    // The node's address picks the GID (as the kernel's SMC-Rv2 follows the route's netdev): the
    // pod cannot see the node's netdevs, and GID indexes differ between nodes.
    fieldEnv('SMC_GID_ADDRESS', 'status.hostIP'),
    ...portEnv(s.ports),
  ];
  env.push(...partitionEnv(policy));
  env.push(...policyLimitsEnv(policy));
  if (s.timeouts !== undefined) {
    env.push({ name: 'SMC_CLC_TIMEOUT_MS', value: String(s.timeouts.clcHandshakeMs) });
    env.push({ name: 'SMC_LINK_SETUP_TIMEOUT_MS', value: String(s.timeouts.linkSetupMs) });
  }
  if (s.maxConcurrentHandshakes !== undefined)
    env.push({ name: 'SMC_MAX_CONCURRENT_HANDSHAKES', value: String(s.maxConcurrentHandshakes) });
  if (s.directoryPublicKeys && s.directoryPublicKeys.length > 0)
    env.push({ name: 'SMC_DIRECTORY_PUBLIC_KEYS', value: s.directoryPublicKeys.join(',') });
  const ready = { path: '/healthz/ready', port: s.ports.health };
  return {
    name: SIDECAR_CONTAINER,
    image: s.sidecarImage,
    imagePullPolicy: s.imagePullPolicy,
    ...(mode === 'native' ? { restartPolicy: 'Always' } : {}),
    command: ['smc', 'sidecar'],
    env,
    ports: [
      { name: SMC_PORT_NAME, containerPort: s.ports.smc, protocol: 'TCP' },
      { name: 'smc-metrics', containerPort: s.ports.metrics, protocol: 'TCP' },
      { name: 'smc-health', containerPort: s.ports.health, protocol: 'TCP' },
    ],
    // Up to 10 minutes for a slow node to start it (as Istio's native sidecar probe); the next
    // init container, then the application containers, start once it passes.
    ...(mode === 'native'
      ? { startupProbe: { httpGet: ready, periodSeconds: 1, timeoutSeconds: 3, failureThreshold: 600 } }
      : {}),
    readinessProbe: { httpGet: ready, periodSeconds: 5, failureThreshold: 3 },
    // The interception rules exempt this UID, so the sidecar's own connections are never redirected.
    securityContext: {
      runAsUser: s.sidecarUid,
      runAsGroup: s.sidecarUid,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      seccompProfile: { type: 'RuntimeDefault' },
      // No IPC_LOCK: a non-root uid gets no effective capabilities under CRI (no ambient set), so
      // memory registration rests on the runtime's RLIMIT_MEMLOCK (docs/install.md).
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: [{ name: DIRECTORY_VOLUME_NAME, mountPath: DIRECTORY_MOUNT_PATH, readOnly: true }],
    resources: sidecarResources(s.rdmaResource),
  };
}

/** The policy's VLAN and PKey (the first of each), which the sidecar matches against its peers'. */
function partitionEnv(policy: SmcPolicy): { name: string; value: string }[] {
  const env: { name: string; value: string }[] = [];
  const vlan = policy.spec.vlans?.[0];
  if (vlan !== undefined) env.push({ name: 'SMC_VLAN', value: String(vlan) });
  const pkey = policy.spec.pkeys?.[0];
  if (pkey !== undefined) env.push({ name: 'SMC_PKEY', value: pkey.toLowerCase() });
  return env;
}

/**
 * `smc-redirect` (`interception.redirect: peers`): keeps the rules' sets of redirected peers in
 * step with the directory (`smc intercept sync`). It reads the directory as the sidecar does
 * (the same mount, the same signature keys and namespace) and decides with the same policy; it
 * holds NET_ADMIN only, serves nothing, and has no RDMA device. `native`: an init container with
 * `restartPolicy: Always` (no probe: until its first sync nothing is redirected outbound, so
 * connections leave over plain TCP, as a fallback would).
 */
export function redirectContainer(
  s: InjectionSettings,
  policy: SmcPolicy,
  mode: SidecarMode = 'container',
): Record<string, unknown> {
  const env: Record<string, unknown>[] = [
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'SMC_TENANT', value: policy.spec.tenant },
    { name: 'SMC_CLUSTER', value: s.cluster },
    { name: 'SMC_MODE', value: policy.spec.mode },
    { name: 'SMC_ALLOWED_PEER_TENANTS', value: (policy.spec.allowedPeerTenants ?? []).join(',') },
    { name: 'SMC_DIRECTORY', value: DIRECTORY_MOUNT_PATH },
    { name: 'SMC_INTERCEPT_REDIRECT', value: 'peers' },
    ...partitionEnv(policy),
    ...portEnv(s.ports),
  ];
  if (s.directoryPublicKeys && s.directoryPublicKeys.length > 0)
    env.push({ name: 'SMC_DIRECTORY_PUBLIC_KEYS', value: s.directoryPublicKeys.join(',') });
  return {
    name: REDIRECT_CONTAINER,
    image: s.sidecarImage,
    imagePullPolicy: s.imagePullPolicy,
    ...(mode === 'native' ? { restartPolicy: 'Always' } : {}),
    command: ['smc', 'intercept', 'sync'],
    env,
    securityContext: {
      ...NET_ADMIN_ONLY,
      readOnlyRootFilesystem: true,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [{ name: DIRECTORY_VOLUME_NAME, mountPath: DIRECTORY_MOUNT_PATH, readOnly: true }],
    resources: { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '128Mi' } },
  };
}

/**
 * The policy's `limits` as the sidecar's environment, in bytes; a limit the policy leaves out keeps
 * the sidecar's default. A pod's env is fixed at creation, so a changed policy applies to new pods.
 */
export function policyLimitsEnv(policy: SmcPolicy): { name: string; value: string }[] {
  const limits = policy.spec.limits;
  if (limits === null || limits === undefined) return [];
  const env: { name: string; value: string }[] = [];
  if (limits.maxConnections !== undefined)
    env.push({ name: 'SMC_MAX_CONNECTIONS', value: String(limits.maxConnections) });
  const rmbSize = limits.rmbSize === undefined ? null : quantityValue(limits.rmbSize);
  if (rmbSize !== null) env.push({ name: 'SMC_RMB_SIZE', value: String(rmbSize) });
  const memory = limits.maxRegisteredMemory === undefined ? null : quantityValue(limits.maxRegisteredMemory);
  if (memory !== null) env.push({ name: 'SMC_MAX_REGISTERED_MEMORY', value: String(memory) });
  return env;
}

/** The device names a policy pins (in its order), or `auto`: whatever the pod was given. */
export function policyDevices(policy: SmcPolicy): string {
  const names = (policy.spec.devices ?? []).flatMap((d) =>
    d.deviceName === undefined ? [] : [d.deviceName],
  );
  return names.length > 0 ? [...new Set(names)].join(',') : 'auto';
}

function sidecarResources(rdmaResource: string | null): Record<string, unknown> {
  // An extended resource must be requested as a limit (the request defaults to it).
  const rdma = rdmaResource === null ? {} : { [rdmaResource]: '1' };
  return { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '512Mi', ...rdma } };
}

export function directoryVolume(shards: number): Record<string, unknown> {
  return {
    name: DIRECTORY_VOLUME_NAME,
    projected: {
      sources: Array.from({ length: shards }, (_, i) => ({
        configMap: {
          name: directoryConfigMapName(i),
          optional: true,
          items: [{ key: directoryFileName(i), path: directoryFileName(i) }],
        },
      })),
    },
  };
}

export function statusAnnotation(policy: SmcPolicy): string {
  return JSON.stringify({ policy: policy.metadata.name, tenant: policy.spec.tenant, mode: policy.spec.mode });
}

/** Pod labels the webhook sets: the tenant and the SmcPolicy of the injected sidecar. */
export const POD_TENANT_LABEL = 'smc.dev/tenant';
export const POD_POLICY_LABEL = 'smc.dev/policy';

/**
 * The tenant and policy labels of an injected pod. A value that cannot be a label value (a policy
 * name longer than 63 characters) is left out rather than failing the admission.
 */
export function metricsLabels(policy: SmcPolicy): Record<string, string> {
  const out: Record<string, string> = {};
  const valid = (v: string): boolean =>
    v.length <= 63 && /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(v);
  if (valid(policy.spec.tenant)) out[POD_TENANT_LABEL] = policy.spec.tenant;
  if (valid(policy.metadata.name)) out[POD_POLICY_LABEL] = policy.metadata.name;
  return out;
}

/**
 * The JSONPatch that injects init container, sidecar, directory volume and status annotation.
 *
 * `smc-init` goes after the pod's own init containers, in both modes: they run before any
 * redirect, as without the sidecar (and as Istio does without its native sidecar). A native
 * sidecar follows `smc-init`, so the application containers start with both the rules and the
 * sidecar in place. Next to Istio, which places its own init containers, the rules' priority
 * rather than this order decides which proxy sees a connection first (docs/istio.md).
 */
export function injectionPatch(
  pod: AdmissionPod,
  policy: SmcPolicy,
  s: InjectionSettings,
  mode: SidecarMode = podSidecarMode(pod, s).mode,
): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  s = { ...s, interceptRedirect: podRedirect(pod, s).redirect };
  const sidecar = sidecarContainer(s, policy, mode);
  const redirect = s.interceptRedirect === 'peers' ? [redirectContainer(s, policy, mode)] : [];
  const inits = [initContainer(s, policy), ...(mode === 'native' ? [...redirect, sidecar] : [])];
  if (pod.spec.initContainers && pod.spec.initContainers.length > 0) {
    for (const c of inits) ops.push({ op: 'add', path: '/spec/initContainers/-', value: c });
  } else {
    ops.push({ op: 'add', path: '/spec/initContainers', value: inits });
  }
  if (mode === 'container')
    for (const c of [sidecar, ...redirect]) ops.push({ op: 'add', path: '/spec/containers/-', value: c });
  const hasVolume = (pod.spec.volumes ?? []).some((v) => v.name === DIRECTORY_VOLUME_NAME);
  if (!hasVolume) {
    if (pod.spec.volumes && pod.spec.volumes.length > 0) {
      ops.push({ op: 'add', path: '/spec/volumes/-', value: directoryVolume(s.directoryShards) });
    } else {
      ops.push({ op: 'add', path: '/spec/volumes', value: [directoryVolume(s.directoryShards)] });
    }
  }
  if (pod.metadata.annotations) {
    ops.push({
      op: 'add',
      path: `/metadata/annotations/${escapePointer(STATUS_ANNOTATION)}`,
      value: statusAnnotation(policy),
    });
  } else {
    ops.push({
      op: 'add',
      path: '/metadata/annotations',
      value: { [STATUS_ANNOTATION]: statusAnnotation(policy) },
    });
  }
  // The pod's labels with its tenant and policy: the chart's PodMonitor copies them onto the
  // sidecar's series (podTargetLabels), so the metrics can be sliced per tenant and per policy.
  ops.push({
    op: 'add',
    path: '/metadata/labels',
    value: { ...pod.metadata.labels, ...metricsLabels(policy) },
  });
  return ops;
}
