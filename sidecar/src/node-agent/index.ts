/**
 * `smc-sidecar node-agent`: the per-node DaemonSet process. Publishes the node's RDMA devices and
 * VLAN netdevs as the cluster-scoped SmcNode named after the node (NODE_NAME).
 *
 *   smc node-agent [--log-level=info] [--rescan-interval=60] [--inventory-source=sysfs|native]
 *     [--metrics-port=15090] [--health-port=15021] [--device-plugin] [--resource-name=smc.dev/rdma]
 *     [--resource-slots=1000] [--device-plugin-dir=/var/lib/kubelet/device-plugins/]
 *
 * (NODE_AGENT_USAGE, `smc node-agent --help`, lists them.)
 *
 * With --device-plugin it also serves the kubelet's device-plugin API (device-plugin/), so pods
 * requesting the resource get the node's RoCE device nodes.
 */
import { realpath } from 'node:fs/promises';
import type { Server } from 'node:http';
import { basename } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { flagTable, parseFlags, printUsage, type FlagSpec, type FlagValues } from '../args.js';
import { createLogger } from '../log.js';
import { createHealthServer, createMetricsServer, createNodeAgentMetrics, startLoop } from './agent.js';
import {
  DEFAULT_DEVICE_PLUGIN_DIR,
  DEFAULT_RESOURCE_NAME,
  DEFAULT_RESOURCE_SLOTS,
  SOCKET_NAME,
} from './device-plugin/defaults.js';
import type { RdmaDevicePlugin } from './device-plugin/plugin.js';
import type { RdmaInventorySource } from './inventory.js';
import { NativeInventorySource } from './native-source.js';
import { KubeSmcNodeStore } from './publisher.js';
import { DEFAULT_SYSFS_PATHS, ProcVlanSource, SysfsInventorySource } from './sysfs.js';

export type {
  InventoryDevice,
  InventoryGid,
  InventoryPort,
  NodeInventory,
  RdmaInventorySource,
} from './inventory.js';
export type { VlanNetdev, VlanSource } from './inventory.js';
export { buildSmcNode, inventoryToContent, sameContent } from './mapping.js';
export type { SmcNodeObject, SmcNodeStatus } from './mapping.js';
export { publishSmcNode, KubeSmcNodeStore } from './publisher.js';
export type { SmcNodeStore, PublishOutcome } from './publisher.js';
export { SysfsInventorySource, ProcVlanSource } from './sysfs.js';
export { NativeInventorySource } from './native-source.js';
export { scanOnce, startLoop } from './agent.js';

/** 0 listens on an ephemeral port (tests). */
const port = z.coerce.number().int().min(0).max(65535);

/** sockaddr_un.sun_path holds 107 bytes and a NUL. */
const MAX_SOCKET_PATH = 107;

export const NodeAgentOptionsSchema = z.object({
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  rescanIntervalSeconds: z.coerce.number().int().min(5).max(86_400).default(60),
  inventorySource: z.enum(['sysfs', 'native']).default('sysfs'),
  metricsPort: port.default(15090),
  healthPort: port.default(15021),
  devicePlugin: z.boolean().default(false),
  /** An extended resource name: a domain prefix and a name (Kubernetes qualified name rules). */
  resourceName: z
    .string()
    .max(253)
    .regex(
      /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
      'resource name must look like smc.dev/rdma',
    )
    .refine((n) => !/(^|\.)kubernetes\.io\//.test(n), 'kubernetes.io resource names are reserved')
    .default(DEFAULT_RESOURCE_NAME),
  devicePluginDir: z
    .string()
    .startsWith('/', 'device-plugin dir must be an absolute path')
    .refine(
      (d) => Buffer.byteLength(d.replace(/\/*$/, '/')) + SOCKET_NAME.length <= MAX_SOCKET_PATH,
      'device-plugin dir too long for a unix socket path',
    )
    .default(DEFAULT_DEVICE_PLUGIN_DIR),
  /** Pods that can hold the resource at once; 10000 keeps ListAndWatch well under gRPC's 4 MiB. */
  resourceSlots: z.coerce.number().int().min(1).max(10_000).default(DEFAULT_RESOURCE_SLOTS),
  nodeName: z
    .string()
    .min(1, 'required: set NODE_NAME from spec.nodeName, or --node-name')
    .max(253)
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a DNS subdomain'),
});
export type NodeAgentOptions = z.infer<typeof NodeAgentOptionsSchema>;

/**
 * The node agent's flags: the option each sets, the name of its value in the usage, and its help.
 * NODE_NAME comes from the environment.
 */
export const NODE_AGENT_FLAGS = {
  'log-level': {
    type: 'string',
    key: 'logLevel',
    value: 'LEVEL',
    help: 'trace, debug, info (default), warn, error, fatal or silent',
  },
  'rescan-interval': {
    type: 'string',
    key: 'rescanIntervalSeconds',
    value: 'SECONDS',
    help: 'between two scans, 5-86400 (default 60)',
  },
  'inventory-source': {
    type: 'string',
    key: 'inventorySource',
    value: 'SOURCE',
    help: 'sysfs (default) or native (the verbs addon)',
  },
  'metrics-port': {
    type: 'string',
    key: 'metricsPort',
    value: 'PORT',
    help: 'of /metrics (default 15090; 0: any free port)',
  },
  'health-port': {
    type: 'string',
    key: 'healthPort',
    value: 'PORT',
    help: 'of /healthz and /readyz (default 15021; 0: any free port)',
  },
  'node-name': { type: 'string', key: 'nodeName', value: 'NAME', help: 'the node (default $NODE_NAME)' },
  'device-plugin': {
    type: 'switch',
    key: 'devicePlugin',
    value: '',
    help: "also serve the kubelet's device-plugin API for the node's RDMA devices",
  },
  'resource-name': {
    type: 'string',
    key: 'resourceName',
    value: 'NAME',
    help: `of the extended resource (default ${DEFAULT_RESOURCE_NAME})`,
  },
  'device-plugin-dir': {
    type: 'string',
    key: 'devicePluginDir',
    value: 'DIR',
    help: `of the kubelet's device-plugin sockets (default ${DEFAULT_DEVICE_PLUGIN_DIR})`,
  },
  'resource-slots': {
    type: 'string',
    key: 'resourceSlots',
    value: 'N',
    help: `pods that can hold the resource at once, 1-10000 (default ${DEFAULT_RESOURCE_SLOTS})`,
  },
} as const satisfies Record<string, FlagSpec & { key: keyof NodeAgentOptions; value: string; help: string }>;

export const NODE_AGENT_USAGE = `usage: smc node-agent [flags]
  Publishes this node's RDMA devices and VLAN netdevs as the SmcNode named after the node, and
  serves /metrics, /healthz and /readyz (with --device-plugin also the kubelet's device plugin).
${flagTable(
  Object.entries(NODE_AGENT_FLAGS).map(([name, f]) => [
    f.type === 'switch' ? `--${name}[=BOOL]` : `--${name} ${f.value}`,
    f.help,
  ]),
)}Environment: NODE_NAME (required unless --node-name), KUBECONFIG (default: the in-cluster config).
`;

/** The flag a NodeAgentOptions key comes from (or NODE_NAME), for messages. */
export function nodeAgentFlagOf(key: PropertyKey): string {
  if (key === 'nodeName') return 'NODE_NAME';
  const flag = Object.entries(NODE_AGENT_FLAGS).find(([, f]) => f.key === key)?.[0];
  return flag === undefined ? String(key) : `--${flag}`;
}

/** The options from the flags given and NODE_NAME; throws a ZodError on bad values. */
export function nodeAgentOptions(
  flags: FlagValues<typeof NODE_AGENT_FLAGS>,
  env: NodeJS.ProcessEnv,
): NodeAgentOptions {
  const raw: Record<string, string | boolean> = { nodeName: env['NODE_NAME'] ?? '' };
  for (const [name, f] of Object.entries(NODE_AGENT_FLAGS)) {
    const value = flags[name as keyof typeof NODE_AGENT_FLAGS];
    if (value !== undefined) raw[f.key] = value;
  }
  return NodeAgentOptionsSchema.parse(raw);
}

/**
 * Parses `--flag=value` / `--flag value` arguments (sidecar/src/args.ts) and NODE_NAME; throws a
 * UsageError or a ZodError on bad input. `--help` is runNodeAgent's.
 */
export function parseNodeAgentArgs(argv: readonly string[], env: NodeJS.ProcessEnv): NodeAgentOptions {
  return nodeAgentOptions(parseFlags(argv, NODE_AGENT_FLAGS).flags, env);
}

async function pciAddressFromSysfs(device: string): Promise<string | null> {
  try {
    return basename(await realpath(`${DEFAULT_SYSFS_PATHS.infiniband}/${device}/device`));
  } catch {
    return null;
  }
}

async function inventorySource(kind: NodeAgentOptions['inventorySource']): Promise<RdmaInventorySource> {
  if (kind === 'sysfs') return new SysfsInventorySource();
  // Loaded only here: importing the addon fails on machines where it is not built.
  const native = await import('../../../native/index.js');
  return new NativeInventorySource(
    { listDevices: () => native.listDevices(), openContext: (name) => native.openDevice(name) },
    pciAddressFromSysfs,
  );
}

async function createDevicePlugin(
  opts: NodeAgentOptions,
  log: Logger,
  registry: Registry,
): Promise<RdmaDevicePlugin | null> {
  if (!opts.devicePlugin) return null;
  // Loaded only here: gRPC stays out of agents that do not serve the kubelet.
  const { RdmaDevicePlugin } = await import('./device-plugin/plugin.js');
  return new RdmaDevicePlugin({
    resourceName: opts.resourceName,
    pluginDir: opts.devicePluginDir,
    slots: opts.resourceSlots,
    log,
    registry,
  });
}

export interface RunNodeAgentHooks {
  /** Stops the agent (in addition to SIGTERM / SIGINT). */
  readonly signal?: AbortSignal;
  /** Called once the health and metrics servers listen. */
  readonly onListening?: (ports: { health: number; metrics: number }) => void;
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
    });
  });
}

/**
 * Runs the node agent until SIGTERM/SIGINT (or `hooks.signal`). Resolves with the process exit
 * code (0 after printing the usage for --help); bad arguments throw UsageError or ZodError (main.ts
 * turns them into exit code 2). The API server is reached with KUBECONFIG from `env` when set, else the in-cluster config.
 */
export async function runNodeAgent(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  hooks: RunNodeAgentHooks = {},
): Promise<number> {
  const args = parseFlags(argv, NODE_AGENT_FLAGS);
  if (args.help) return printUsage(NODE_AGENT_USAGE);
  const opts = nodeAgentOptions(args.flags, env);
  const log = createLogger(opts.logLevel, 'smc-node-agent');
  const kc = new KubeConfig();
  if (env['KUBECONFIG']) kc.loadFromFile(env['KUBECONFIG']);
  else kc.loadFromDefault();
  const store = new KubeSmcNodeStore(kc);
  const metrics = createNodeAgentMetrics();
  const intervalMs = opts.rescanIntervalSeconds * 1000;
  const plugin = await createDevicePlugin(opts, log, metrics.registry);
  const loop = startLoop(
    {
      nodeName: opts.nodeName,
      rdma: await inventorySource(opts.inventorySource),
      vlans: new ProcVlanSource(),
      store,
      log,
      metrics,
      onInventory: plugin ? (inventory) => plugin.update(inventory.devices) : undefined,
    },
    intervalMs,
  );
  const health = createHealthServer(loop, intervalMs);
  const metricsServer = createMetricsServer(metrics.registry);
  const stop = (reason: string) => {
    log.info({ reason }, 'node agent stopping');
    loop.stop();
  };
  const onSignal = (signal: NodeJS.Signals) => stop(signal);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const onAbort = () => stop('aborted');
  if (hooks.signal?.aborted) stop('aborted');
  hooks.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const ports = {
      health: await listen(health, opts.healthPort),
      metrics: await listen(metricsServer, opts.metricsPort),
    };
    log.info(
      {
        node: opts.nodeName,
        source: opts.inventorySource,
        intervalSeconds: opts.rescanIntervalSeconds,
        ports,
        devicePlugin: opts.devicePlugin
          ? { resource: opts.resourceName, dir: opts.devicePluginDir, slots: opts.resourceSlots }
          : false,
      },
      'node agent started',
    );
    hooks.onListening?.(ports);
    await loop.done;
    return 0;
  } catch (err) {
    log.error({ err }, 'node agent failed');
    loop.stop();
    await loop.done;
    return 1;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    hooks.signal?.removeEventListener('abort', onAbort);
    health.close();
    metricsServer.close();
    await plugin?.stop();
    store.close();
  }
}
