/**
 * `smc-sidecar node-agent`: the per-node DaemonSet process. Publishes the node's RDMA devices and
 * VLAN netdevs as the cluster-scoped SmcNode named after the node (NODE_NAME).
 *
 *   node dist/sidecar/src/main.js node-agent [--log-level=info] [--rescan-interval=60]
 *     [--inventory-source=sysfs|native] [--metrics-port=15090] [--health-port=15021]
 *     [--device-plugin] [--resource-name=smc.dev/rdma] [--resource-slots=1000]
 *     [--device-plugin-dir=/var/lib/kubelet/device-plugins/]
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
  devicePlugin: z.stringbool().default(false),
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
    .min(1, 'NODE_NAME is required (set it from spec.nodeName)')
    .max(253)
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'NODE_NAME must be a DNS subdomain'),
});
export type NodeAgentOptions = z.infer<typeof NodeAgentOptionsSchema>;

const FLAGS: Record<string, keyof NodeAgentOptions> = {
  'log-level': 'logLevel',
  'rescan-interval': 'rescanIntervalSeconds',
  'inventory-source': 'inventorySource',
  'metrics-port': 'metricsPort',
  'health-port': 'healthPort',
  'node-name': 'nodeName',
  'device-plugin': 'devicePlugin',
  'resource-name': 'resourceName',
  'device-plugin-dir': 'devicePluginDir',
  'resource-slots': 'resourceSlots',
};

/** Flags that mean true on their own (`--device-plugin`) and also take `=true` / `=false`. */
const SWITCHES: ReadonlySet<keyof NodeAgentOptions> = new Set(['devicePlugin']);

/** Parses `--flag=value` / `--flag value` arguments and NODE_NAME; throws a ZodError or Error on bad input. */
export function parseNodeAgentArgs(argv: readonly string[], env: NodeJS.ProcessEnv): NodeAgentOptions {
  const raw: Record<string, string> = {};
  raw['nodeName'] = env['NODE_NAME'] ?? '';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const key = m ? FLAGS[m[1] ?? ''] : undefined;
    if (!m || key === undefined) throw new Error(`node-agent: unknown argument ${arg}`);
    const value = m[2] ?? (SWITCHES.has(key) ? 'true' : argv[++i]);
    if (value === undefined) throw new Error(`node-agent: ${arg} needs a value`);
    raw[key] = value;
  }
  return NodeAgentOptionsSchema.parse(raw);
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
 * code. The API server is reached with KUBECONFIG from `env` when set, else the in-cluster config.
 */
export async function runNodeAgent(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  hooks: RunNodeAgentHooks = {},
): Promise<number> {
  const opts = parseNodeAgentArgs(argv, env);
  const log = createLogger(opts.logLevel, 'smc-node-agent');
  const kc = new KubeConfig();
  if (env['KUBECONFIG']) kc.loadFromFile(env['KUBECONFIG']);
  else kc.loadFromDefault();
  const metrics = createNodeAgentMetrics();
  const intervalMs = opts.rescanIntervalSeconds * 1000;
  const plugin = await createDevicePlugin(opts, log, metrics.registry);
  const loop = startLoop(
    {
      nodeName: opts.nodeName,
      rdma: await inventorySource(opts.inventorySource),
      vlans: new ProcVlanSource(),
      store: new KubeSmcNodeStore(kc),
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
  }
}
