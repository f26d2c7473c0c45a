/**
 * `smc-sidecar node-agent`: the per-node DaemonSet process. Publishes the node's RDMA devices and
 * VLAN netdevs as the cluster-scoped SmcNode named after the node (NODE_NAME).
 *
 *   node dist/sidecar/src/main.js node-agent [--log-level=info] [--rescan-interval=60]
 *     [--inventory-source=sysfs|native] [--metrics-port=15090] [--health-port=15021]
 */
import { realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { createLogger } from '../log.js';
import { createHealthServer, createMetricsServer, createNodeAgentMetrics, startLoop } from './agent.js';
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

const port = z.coerce.number().int().min(1).max(65535);

export const NodeAgentOptionsSchema = z.object({
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  rescanIntervalSeconds: z.coerce.number().int().min(5).max(86_400).default(60),
  inventorySource: z.enum(['sysfs', 'native']).default('sysfs'),
  metricsPort: port.default(15090),
  healthPort: port.default(15021),
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
};

/** Parses `--flag=value` / `--flag value` arguments and NODE_NAME; throws a ZodError or Error on bad input. */
export function parseNodeAgentArgs(argv: readonly string[], env: NodeJS.ProcessEnv): NodeAgentOptions {
  const raw: Record<string, string> = {};
  if (env['NODE_NAME']) raw['nodeName'] = env['NODE_NAME'];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const key = m ? FLAGS[m[1] ?? ''] : undefined;
    if (!m || key === undefined) throw new Error(`node-agent: unknown argument ${arg}`);
    const value = m[2] ?? argv[++i];
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

/** Runs the node agent until SIGTERM/SIGINT. Resolves with the process exit code. */
export async function runNodeAgent(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const opts = parseNodeAgentArgs(argv, env);
  const log = createLogger(opts.logLevel, 'smc-node-agent');
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const metrics = createNodeAgentMetrics();
  const intervalMs = opts.rescanIntervalSeconds * 1000;
  const loop = startLoop(
    {
      nodeName: opts.nodeName,
      rdma: await inventorySource(opts.inventorySource),
      vlans: new ProcVlanSource(),
      store: new KubeSmcNodeStore(kc),
      log,
      metrics,
    },
    intervalMs,
  );
  const health = createHealthServer(loop, intervalMs).listen(opts.healthPort);
  const metricsServer = createMetricsServer(metrics.registry).listen(opts.metricsPort);
  log.info(
    { node: opts.nodeName, source: opts.inventorySource, intervalSeconds: opts.rescanIntervalSeconds },
    'node agent started',
  );
  const stop = (signal: string) => {
    log.info({ signal }, 'node agent stopping');
    loop.stop();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await loop.done;
  health.close();
  metricsServer.close();
  return 0;
}
