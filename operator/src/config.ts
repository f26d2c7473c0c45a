import os from 'node:os';
import { z } from 'zod';
import { flagTable, parseFlags, type FlagSpec, type FlagValues } from '../../sidecar/src/args.js';
import { SIDECAR_DEFAULT_PORTS, SIDECAR_DEFAULT_UID } from './api/sidecar.js';
import { ConfigError } from './errors.js';

/** "150ms", "15s", "2m", "720h" (or a bare number of milliseconds) -> milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(s.trim());
  if (!m) throw new Error(`invalid duration "${s}"`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms'] ?? 1;
  return n * unit;
}

const duration = z.string().transform((s, ctx) => {
  try {
    return parseDuration(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const port = z.coerce.number().int().min(0).max(65535);
const sidecarPort = z.coerce.number().int().min(1).max(65535);
/** Not 0: the sidecar runs with runAsNonRoot. */
const uid = z.coerce.number().int().min(1).max(0xfffffffe);
const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

/**
 * Every flag, its environment variable and default. Flags win over the environment.
 * The environment variable of `--some-flag` is SMC_OPERATOR_SOME_FLAG unless named here.
 */
export const FLAGS = {
  kubeconfig: {
    env: 'KUBECONFIG',
    default: '',
    help: 'kubeconfig file; empty = in-cluster config (or ~/.kube/config)',
  },
  namespace: {
    env: 'POD_NAMESPACE',
    default: 'smc-system',
    help: 'namespace of the operator (Lease, webhook Secret)',
  },
  identity: { env: 'POD_NAME', default: os.hostname(), help: 'leader election identity' },
  'sidecar-image': {
    env: 'SIDECAR_IMAGE',
    default: '',
    help: 'image of smc-init and smc-sidecar (required with the webhook)',
  },
  'sidecar-image-pull-policy': {
    default: 'IfNotPresent',
    help: 'imagePullPolicy of the injected containers',
  },
  cluster: {
    default: 'cluster.local',
    help: "this cluster's name in the tenants' User EIDs (SMC_CLUSTER of the injected sidecars); a kernel SMC-R peer of a tenant sets that tenant's UEID of this cluster",
  },
  'rdma-resource': {
    default: 'smc.dev/rdma',
    help: "extended resource the injected sidecar requests for the node's RDMA devices (the node agent's device plugin or another RDMA device plugin's); \"\" = none",
  },
  'sidecar-mode': {
    default: 'auto',
    help: 'native: the sidecar is an init container with restartPolicy Always (Kubernetes 1.29+); container: a plain container; auto: native when the API server is 1.29 or later. A pod may choose with the smc.dev/sidecar-mode annotation',
  },
  'sidecar-uid': {
    default: String(SIDECAR_DEFAULT_UID),
    help: "uid and gid of the injected sidecar, exempt from the interception rules (not Istio's 1337)",
  },
  'sidecar-port-outbound': {
    default: String(SIDECAR_DEFAULT_PORTS.outbound),
    help: "the sidecar's listener for the pod's redirected outgoing TCP",
  },
  'sidecar-port-inbound': {
    default: String(SIDECAR_DEFAULT_PORTS.inbound),
    help: "the sidecar's listener for redirected incoming TCP",
  },
  'sidecar-port-smc': {
    default: String(SIDECAR_DEFAULT_PORTS.smc),
    help: "the sidecar's SMC port, which peers' sidecars connect to (published in the directory)",
  },
  'sidecar-port-metrics': {
    default: String(SIDECAR_DEFAULT_PORTS.metrics),
    help: "the sidecar's /metrics port",
  },
  'sidecar-port-health': {
    default: String(SIDECAR_DEFAULT_PORTS.health),
    help: "the sidecar's /healthz/live and /healthz/ready port (its probes)",
  },
  'sidecar-port-admin': {
    default: String(SIDECAR_DEFAULT_PORTS.admin),
    help: "the sidecar's loopback-only admin port (GET /connections, kubectl smc connections)",
  },
  'sidecar-exclude-outbound-uids': {
    default: '',
    help: "uids whose outbound TCP the injected rules leave alone, comma-separated: another proxy's, e.g. 1337 for Istio's Envoy (docs/istio.md)",
  },
  'sidecar-clc-timeout': {
    default: '6s',
    help: "the sidecar's whole CLC exchange, preamble to Confirm, before it falls back to TCP (the kernel's CLC wait is 6 s); more on slow or emulated nodes",
  },
  'sidecar-link-setup-timeout': {
    default: '5s',
    help: "the sidecar's link setup and LLC exchanges (CONFIRM LINK, CONFIRM RKEY) before it falls back (the kernel's first LLC wait is 5 s)",
  },
  'sidecar-max-concurrent-handshakes': {
    default: '16',
    help: "the sidecar's CLC exchanges and link set-ups in flight; a connection beyond it falls back to TCP at once (handshake-overload) instead of waiting into a timeout",
  },
  'sidecar-intercept-inbound': {
    default: 'true',
    help: "redirect the pod's inbound TCP to the sidecar (false next to Istio's sidecar, docs/istio.md)",
  },
  'sidecar-intercept-redirect': {
    default: 'all',
    help: "which outbound TCP the rules redirect to the sidecar: all, or peers (only directory peers it may upgrade with, kept by an smc-redirect container with NET_ADMIN; the rest leaves at plain TCP's cost)",
  },
  'bind-address': { default: '0.0.0.0', help: 'address the metrics, health and webhook servers listen on' },
  'metrics-port': { default: '8080', help: 'Prometheus /metrics port (0 = off)' },
  'health-port': { default: '8081', help: '/healthz and /readyz port (0 = off)' },
  webhook: { default: 'true', help: 'serve the mutating webhook and manage its certificate' },
  'webhook-port': { default: '9443', help: 'webhook HTTPS port (path /mutate-v1-pod)' },
  'webhook-secret-name': {
    default: 'smc-operator-webhook-tls',
    help: 'Secret holding the webhook CA and serving certificate',
  },
  'webhook-config-name': {
    default: 'smc-operator',
    help: 'MutatingWebhookConfiguration whose caBundle is kept current ("" = none)',
  },
  'webhook-service-name': {
    default: 'smc-operator-webhook',
    help: 'Service in front of the webhook (names put in the certificate)',
  },
  'webhook-extra-hosts': { default: '', help: 'more DNS names / IPs for the certificate, comma-separated' },
  'webhook-cert-dir': {
    default: '',
    help: 'serve tls.crt and tls.key from this directory (e.g. a Secret issued by cert-manager), reloaded when they change; the operator then neither writes the webhook Secret nor patches the caBundle ("" = issue and rotate its own certificate)',
  },
  'ca-validity': { default: '87600h', help: 'validity of the self-signed webhook CA' },
  'cert-validity': { default: '8760h', help: 'validity of the webhook serving certificate' },
  'cert-rotate-before': { default: '720h', help: 're-issue a certificate when less than this remains' },
  'cert-check-interval': { default: '1h', help: 'longest time between certificate checks' },
  'leader-elect': { default: 'true', help: 'use the Lease for leader election' },
  'lease-name': { default: 'smc-operator-leader', help: 'name of the coordination.k8s.io/v1 Lease' },
  'lease-duration': { default: '15s', help: 'lease duration' },
  'shutdown-delay': {
    default: '5s',
    help: 'after SIGTERM: not ready and leadership released at once, the webhook still answered for this long (endpoints drop the pod meanwhile), then stop',
  },
  'renew-deadline': { default: '10s', help: 'leader steps down when it could not renew for this long' },
  'retry-period': { default: '2s', help: 'interval of acquire / renew attempts' },
  workers: { default: '4', help: 'concurrent reconciles' },
  'directory-shards': { default: '4', help: 'directory ConfigMaps per namespace (smc-directory-0..N-1)' },
  'directory-key-secret-name': {
    default: 'smc-operator-directory-key',
    help: 'Secret in --namespace holding the Ed25519 key that signs the directory (created when missing)',
  },
  'directory-debounce': {
    default: '50ms',
    help: 'delay before publishing the directory after a change (batches bursts)',
  },
  'queue-base-delay': { default: '5ms', help: 'first retry delay of a failed key (doubles per failure)' },
  'queue-max-delay': { default: '1000s', help: 'longest retry delay of a failed key' },
  'queue-qps': { default: '10', help: 'overall retry rate limit (token bucket rate)' },
  'queue-burst': { default: '100', help: 'overall retry rate limit (token bucket size)' },
  'log-level': { env: 'LOG_LEVEL', default: 'info', help: 'pino log level' },
} as const satisfies Record<string, { env?: string; default: string; help: string }>;

export type FlagName = keyof typeof FLAGS;

/** The flags of the sidecar's ports, by role (operator/src/api/sidecar.ts). */
export const SIDECAR_PORT_FLAGS = [
  'sidecar-port-outbound',
  'sidecar-port-inbound',
  'sidecar-port-smc',
  'sidecar-port-metrics',
  'sidecar-port-health',
  'sidecar-port-admin',
] as const satisfies readonly FlagName[];

export function envName(flag: FlagName): string {
  const f: { readonly env?: string; readonly default: string } = FLAGS[flag];
  return f.env ?? `SMC_OPERATOR_${flag.toUpperCase().replace(/-/g, '_')}`;
}

const ConfigSchema = z
  .object({
    kubeconfig: z.string(),
    namespace: z.string().min(1),
    identity: z.string().min(1),
    'sidecar-image': z.string(),
    'sidecar-image-pull-policy': z.enum(['Always', 'IfNotPresent', 'Never']),
    cluster: z.string().min(1).max(253),
    'rdma-resource': z
      .string()
      .regex(/^$|^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, {
        message: 'must be an extended resource name such as smc.dev/rdma, or empty',
      }),
    'sidecar-mode': z.enum(['auto', 'native', 'container']),
    'sidecar-uid': uid,
    'sidecar-port-outbound': sidecarPort,
    'sidecar-port-inbound': sidecarPort,
    'sidecar-port-smc': sidecarPort,
    'sidecar-port-metrics': sidecarPort,
    'sidecar-port-health': sidecarPort,
    'sidecar-port-admin': sidecarPort,
    'sidecar-exclude-outbound-uids': list
      .transform((xs) => xs.map(Number))
      .pipe(z.array(z.number().int().min(0).max(0xfffffffe))),
    'sidecar-intercept-inbound': bool,
    'sidecar-intercept-redirect': z.enum(['all', 'peers']),
    'sidecar-clc-timeout': duration,
    'sidecar-link-setup-timeout': duration,
    'sidecar-max-concurrent-handshakes': z.coerce.number().int().min(1).max(65_535),
    'bind-address': z.string().min(1),
    'metrics-port': port,
    'health-port': port,
    webhook: bool,
    'webhook-port': port,
    'webhook-secret-name': z.string().min(1),
    'webhook-config-name': z.string(),
    'webhook-service-name': z.string().min(1),
    'webhook-extra-hosts': list,
    'webhook-cert-dir': z.string(),
    'ca-validity': duration,
    'cert-validity': duration,
    'cert-rotate-before': duration,
    'cert-check-interval': duration,
    'leader-elect': bool,
    'lease-name': z.string().min(1),
    'lease-duration': duration,
    'shutdown-delay': duration,
    'renew-deadline': duration,
    'retry-period': duration,
    workers: z.coerce.number().int().min(1).max(64),
    'directory-shards': z.coerce.number().int().min(1).max(64),
    'directory-key-secret-name': z.string().min(1),
    'directory-debounce': duration,
    'queue-base-delay': duration,
    'queue-max-delay': duration,
    'queue-qps': z.coerce.number().positive(),
    'queue-burst': z.coerce.number().int().min(1),
    'log-level': z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  })
  .refine((c) => !c.webhook || c['sidecar-image'] !== '', {
    message: '--sidecar-image (SIDECAR_IMAGE) is required when the webhook is enabled',
  })
  .refine((c) => new Set(SIDECAR_PORT_FLAGS.map((f) => c[f])).size === SIDECAR_PORT_FLAGS.length, {
    message: 'the --sidecar-port-* ports must be distinct',
  })
  .refine((c) => c['renew-deadline'] < c['lease-duration'], {
    message: '--renew-deadline must be shorter than --lease-duration',
  })
  .refine((c) => c['cert-rotate-before'] * 2 < c['ca-validity'], {
    message: '--cert-rotate-before must be less than half of --ca-validity',
  })
  .refine((c) => c['cert-rotate-before'] < c['cert-validity'], {
    message: '--cert-rotate-before must be shorter than --cert-validity',
  });
export type Config = z.infer<typeof ConfigSchema>;

/**
 * The flags as the shared parser (sidecar/src/args.ts) reads them: a flag whose default is "true"
 * or "false" is a switch (`--webhook`, `--webhook=false`), every other one takes a value.
 */
export const OPERATOR_FLAG_SPECS = Object.fromEntries(
  Object.entries(FLAGS).map(([name, f]) => [
    name,
    { type: f.default === 'true' || f.default === 'false' ? 'switch' : 'string' },
  ]),
) as Record<FlagName, FlagSpec>;

/** The flags given (see {@link OPERATOR_FLAG_SPECS}) over the environment over the defaults. */
export function configFromFlags(
  flags: FlagValues<typeof OPERATOR_FLAG_SPECS>,
  env: Readonly<Record<string, string | undefined>>,
): Config {
  const raw: Record<string, string> = {};
  for (const name of Object.keys(FLAGS) as FlagName[]) {
    const given = flags[name];
    raw[name] = given === undefined ? (env[envName(name)] ?? FLAGS[name].default) : String(given);
  }
  const r = ConfigSchema.safeParse(raw);
  if (!r.success) {
    throw new ConfigError(
      r.error.issues.map((i) => `${i.path.length ? `--${i.path.join('.')}: ` : ''}${i.message}`).join('; '),
    );
  }
  return r.data;
}

/**
 * Parses `--flag=value` / `--flag value` arguments over the environment over the defaults. Throws
 * UsageError (unknown flag, missing value) or ConfigError (invalid value); `--help` is main's.
 */
export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Config {
  return configFromFlags(parseFlags(argv, OPERATOR_FLAG_SPECS).flags, env);
}

/** The names the webhook certificate must cover. */
export function webhookHosts(c: Config): string[] {
  const svc = c['webhook-service-name'];
  const ns = c.namespace;
  return [
    `${svc}.${ns}.svc`,
    svc,
    `${svc}.${ns}`,
    `${svc}.${ns}.svc.cluster.local`,
    ...c['webhook-extra-hosts'],
  ];
}

export function usage(): string {
  return flagTable(
    (Object.keys(FLAGS) as FlagName[]).map((name) => {
      const f = FLAGS[name];
      const value = OPERATOR_FLAG_SPECS[name].type === 'switch' ? '[=BOOL]' : ' VALUE';
      return [`--${name}${value}`, `${f.help} (env ${envName(name)}, default "${f.default}")`];
    }),
  );
}
