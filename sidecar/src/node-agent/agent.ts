/**
 * The node agent's loop: scan the RDMA devices and VLAN netdevs, map them to the node's SmcNode,
 * publish it when its content changed, sleep, repeat. Also serves /healthz, /readyz (health port)
 * and /metrics (metrics port).
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import type { NodeInventory, RdmaInventorySource, VlanSource } from './inventory.js';
import { buildSmcNode } from './mapping.js';
import { publishSmcNode, type PublishOutcome, type SmcNodeStore } from './publisher.js';

export interface NodeAgentMetrics {
  readonly registry: Registry;
  readonly scans: Counter<'result'>;
  readonly writes: Counter<'kind'>;
  readonly devices: Gauge;
  readonly ports: Gauge<'state'>;
  readonly lastSuccess: Gauge;
}

export function createNodeAgentMetrics(registry = new Registry()): NodeAgentMetrics {
  const metrics: NodeAgentMetrics = {
    registry,
    scans: new Counter({
      name: 'smc_node_agent_scans_total',
      help: 'Inventory scans by result (ok, error).',
      labelNames: ['result'],
      registers: [registry],
    }),
    writes: new Counter({
      name: 'smc_node_agent_smcnode_writes_total',
      help: 'Writes to the SmcNode by kind (create, labels, status).',
      labelNames: ['kind'],
      registers: [registry],
    }),
    devices: new Gauge({
      name: 'smc_node_agent_rdma_devices',
      help: 'RDMA devices found on the node.',
      registers: [registry],
    }),
    ports: new Gauge({
      name: 'smc_node_agent_rdma_ports',
      help: 'RDMA ports on the node by state.',
      labelNames: ['state'],
      registers: [registry],
    }),
    lastSuccess: new Gauge({
      name: 'smc_node_agent_last_success_timestamp_seconds',
      help: 'Unix time of the last scan that was published (or found unchanged).',
      registers: [registry],
    }),
  };
  // Series start at 0: an error rate (a failing SmcNode publish) is then 0, not absent, until the
  // first error, and an agent whose SmcNode never changes still shows its writes.
  for (const result of ['ok', 'error']) metrics.scans.inc({ result }, 0);
  for (const kind of ['create', 'labels', 'status']) metrics.writes.inc({ kind }, 0);
  return metrics;
}

export interface NodeAgentDeps {
  readonly nodeName: string;
  readonly rdma: RdmaInventorySource;
  readonly vlans: VlanSource;
  readonly store: SmcNodeStore;
  readonly log: Logger;
  readonly metrics: NodeAgentMetrics;
  readonly now?: () => Date;
  /** Gets every scan's inventory before it is published (the device plugin); its errors are logged only. */
  readonly onInventory?: (inventory: NodeInventory) => Promise<void>;
}

/** Reads the whole inventory once. */
export async function scanInventory(rdma: RdmaInventorySource, vlans: VlanSource): Promise<NodeInventory> {
  const [devices, vlanNetdevs] = await Promise.all([rdma.listDevices(), vlans.listVlans()]);
  return { devices, vlans: vlanNetdevs };
}

/** One scan + publish; errors are logged and counted, and rethrown to the caller. */
export async function scanOnce(deps: NodeAgentDeps): Promise<PublishOutcome> {
  const { log, metrics } = deps;
  try {
    const inventory = await scanInventory(deps.rdma, deps.vlans);
    if (deps.onInventory) {
      // Before publishing: an unreachable API server must not hold back the kubelet's view.
      await deps
        .onInventory(inventory)
        .catch((err: unknown) => log.error({ err }, 'inventory consumer failed'));
    }
    const desired = buildSmcNode(deps.nodeName, inventory, (deps.now ?? (() => new Date()))());
    const outcome = await publishSmcNode(deps.store, desired);
    metrics.scans.inc({ result: 'ok' });
    for (const w of outcome.writes) metrics.writes.inc({ kind: w });
    const devices = desired.status?.devices ?? [];
    metrics.devices.set(devices.length);
    metrics.ports.reset();
    for (const d of devices) for (const p of d.ports) metrics.ports.inc({ state: p.state });
    metrics.lastSuccess.set(Date.now() / 1000);
    const summary = {
      node: deps.nodeName,
      source: deps.rdma.kind,
      devices: devices.map((d) => d.name),
      vlans: desired.status?.vlanNetdevs.length ?? 0,
      result: outcome.result,
    };
    if (outcome.result === 'unchanged') log.debug(summary, 'smcnode unchanged');
    else log.info({ ...summary, writes: outcome.writes }, `smcnode ${outcome.result}`);
    return outcome;
  } catch (err) {
    metrics.scans.inc({ result: 'error' });
    log.error({ err, node: deps.nodeName }, 'scan or publish failed');
    throw err;
  }
}

export interface LoopHandle {
  /** Resolves when the loop has stopped. */
  readonly done: Promise<void>;
  stop(): void;
  /** True once one scan has been published. */
  ready(): boolean;
  /** Milliseconds since the last scan attempt finished (or since start). */
  sinceLastAttemptMs(): number;
}

/** Scans every `intervalMs` until stopped; a failing scan is retried at the next tick. */
export function startLoop(deps: NodeAgentDeps, intervalMs: number): LoopHandle {
  let stopped = false;
  let ready = false;
  let lastAttempt = Date.now();
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const done = (async () => {
    while (!stopped) {
      try {
        await scanOnce(deps);
        ready = true;
      } catch {
        // already logged and counted
      }
      lastAttempt = Date.now();
      if (stopped) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, intervalMs);
      });
    }
  })();
  return {
    done,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      wake?.();
    },
    ready: () => ready,
    sinceLastAttemptMs: () => Date.now() - lastAttempt,
  };
}

/** /healthz: the loop ran recently; /readyz: a scan has been published. */
export function createHealthServer(loop: LoopHandle, intervalMs: number): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    let ok: boolean;
    if (path === '/healthz') ok = loop.sinceLastAttemptMs() < Math.max(3 * intervalMs, 60_000);
    else if (path === '/readyz') ok = loop.ready();
    else {
      res.writeHead(404).end('not found\n');
      return;
    }
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ok\n');
  });
}

export function createMetricsServer(registry: Registry): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(`${String(err)}\n`),
    );
  });
}
