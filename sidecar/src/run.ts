import type { SidecarPorts } from '../../operator/src/api/sidecar.js';
import type { Server, Socket } from 'node:net';
import { maxRegisteredMemory, type SidecarConfig } from './config/schema.js';
import { identityFromConfig, type ProxyContext, ueidsFromConfig } from './context.js';
import { directoryWatcherFor } from './directory/watcher.js';
import { ConntrackOriginalDstResolver } from './intercept/conntrack-original-dst.js';
import { NativeOriginalDstResolver } from './intercept/native-original-dst.js';
import type { OriginalDstResolver } from './intercept/original-dst.js';
import type { Logger } from './log.js';
import { loadNative } from './native-loader.js';
import { MemoryReducer } from './ops/memory-reducer.js';
import { NativeRelays } from './relay/native-relay.js';
import { installResetOnExit } from './relay/reset-on-exit.js';
import { startAdminServer } from './ops/admin.js';
import { ConnectionRegistry } from './ops/connections.js';
import { HealthState } from './ops/health.js';
import { startHealthServer, startMetricsServer } from './ops/http.js';
import { SidecarMetrics } from './ops/metrics.js';
import { handleInbound } from './relay/inbound.js';
import { nativeSynInspector, type SynInspector } from './smc/syn-inspector.js';
import { newConnectionId } from './relay/ids.js';
import { closeServer, listen } from './relay/listener.js';
import { handleOutbound } from './relay/outbound.js';
import type { LinkGroupManager } from './smc/link-group-manager.js';
import { serveSmcConnection } from './smc/server-session.js';
import { SmcBudget } from './smc/smc-budget.js';
import { openRdmaDevice } from './smc/rdma-device.js';
import { UnavailableLinkGroupManager } from './smc/unavailable-link-group-manager.js';
import { VerbsLinkGroupManager } from './smc/verbs-link-group-manager.js';

/** Replaceable parts, for tests and for the RDMA layer as it lands. */
export interface RunDeps {
  originalDst?: OriginalDstResolver;
  links?: LinkGroupManager;
  /** Tells kernel SMC-R clients on the inbound listener (policy.kernelPeers). */
  syn?: SynInspector;
  /** Address the listeners bind; "::" (all, dual stack) by default. */
  host?: string;
}

export interface RunningSidecar {
  ctx: ProxyContext;
  health: HealthState;
  /** Bound ports (equal to the configured ones unless those were 0). */
  ports: { outbound: number; inbound: number; smc: number; metrics: number; health: number; admin: number };
  stop(): Promise<void>;
}

function port(server: Server): number {
  const a = server.address();
  return a !== null && typeof a !== 'string' ? a.port : 0;
}

async function defaultParts(
  cfg: SidecarConfig,
  log: Logger,
  onRdmaError: (kind: string) => void,
): Promise<{
  originalDst: OriginalDstResolver;
  links: LinkGroupManager;
  syn?: SynInspector;
  relays?: NativeRelays;
  trimMemory?: () => void;
}> {
  const native = await loadNative();
  if (!native.ok) {
    log.warn(
      { err: native.error },
      'verbs addon not loadable: original destinations come from conntrack, every connection relays over TCP',
    );
    return {
      originalDst: new ConntrackOriginalDstResolver(),
      links: new UnavailableLinkGroupManager(`verbs addon not loadable: ${native.error.message}`),
    };
  }
  const originalDst = new NativeOriginalDstResolver(native.getOriginalDst);
  // Plain TCP is carried in native code (splice), not through JavaScript streams.
  const relays = new NativeRelays(native.module);
  const trimMemory = (): void => void native.module.trimMemory();
  // Carried sockets reset, rather than end, if this process dies (relay/reset-on-exit.ts).
  installResetOnExit((fd, seconds) => native.module.setLinger(fd, seconds));
  try {
    const device = openRdmaDevice(native.module, cfg.rdma);
    const links = new VerbsLinkGroupManager({
      device,
      config: cfg,
      log: log.child({ component: 'links' }),
      dataPath: cfg.rdma.dataPath,
      onRdmaError,
    });
    log.info(
      {
        device: device.context.name,
        gid: device.gidText,
        mtu: device.mtu,
        smcR: links.available(),
        dataPath: links.dataPath,
      },
      'RDMA device open',
    );
    const syn = cfg.policy.kernelPeers ? nativeSynInspector(native.module, log) : undefined;
    return { originalDst, links, relays, trimMemory, ...(syn === undefined ? {} : { syn }) };
  } catch (err) {
    log.warn({ err, device: cfg.rdma.device }, 'RDMA device not usable: every connection relays over TCP');
    const why = err instanceof Error ? err.message : String(err);
    return { originalDst, links: new UnavailableLinkGroupManager(why), relays, trimMemory };
  }
}

/** `run`: the listeners, the directory watcher, metrics and health; resolves once everything is bound. */
export async function runSidecar(
  cfg: SidecarConfig,
  log: Logger,
  deps: RunDeps = {},
): Promise<RunningSidecar> {
  let metrics: SidecarMetrics | null = null;
  const defaults =
    deps.originalDst !== undefined && deps.links !== undefined
      ? null
      : await defaultParts(cfg, log, (kind) => metrics?.rdmaError(kind));
  const originalDst = deps.originalDst ?? defaults?.originalDst;
  const links = deps.links ?? defaults?.links;
  const syn = deps.syn ?? defaults?.syn;
  if (originalDst === undefined || links === undefined) throw new Error('unreachable: parts not resolved');
  const host = deps.host ?? '::';

  const health = new HealthState();
  health.register('directory');
  health.register('listeners');
  metrics = new SidecarMetrics(() => links.stats(), { defaultMetrics: true });
  metrics.dataPath(links.available() ? (links.dataPath ?? 'none') : 'none', cfg.rdma.dataPath);
  const watcher = directoryWatcherFor(cfg, log);
  watcher.on('rejected', (r) => metrics?.directoryRejected(r.reason));
  let boundPorts: SidecarPorts = cfg.ports;
  const ctx: ProxyContext = {
    ownPorts: () => boundPorts,
    config: cfg,
    identity: identityFromConfig(cfg),
    ueids: ueidsFromConfig(cfg),
    directory: () => watcher.directory,
    originalDst,
    links,
    ...(syn === undefined ? {} : { syn }),
    metrics,
    connections: new ConnectionRegistry(),
    ...(defaults?.relays === undefined ? {} : { relay: defaults.relays.relay }),
    budget: new SmcBudget({
      maxConnections: cfg.limits.maxConnections,
      maxRegisteredMemory: maxRegisteredMemory(cfg.limits),
      rmbSize: cfg.limits.rmbSize,
      maxHandshakes: cfg.limits.maxConcurrentHandshakes,
    }),
    log,
  };
  watcher.on('change', () => health.set('directory', true));
  const reducer =
    defaults?.trimMemory === undefined
      ? null
      : new MemoryReducer(
          () => ctx.connections.openedTotal,
          defaults.trimMemory,
          log.child({ component: 'memory' }),
        );
  await watcher.start();
  health.set('directory', watcher.ready);

  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const onError = (what: string) => (err: unknown) => log.error({ err }, `${what} handler failed`);
  try {
    const outbound = await listen({ port: cfg.ports.outbound, host }, (s) => {
      track(s);
      handleOutbound(ctx, s).catch(onError('outbound'));
    });
    servers.push(outbound);
    const inbound = await listen({ port: cfg.ports.inbound, host }, (s) => {
      track(s);
      handleInbound(ctx, s).catch(onError('inbound'));
    });
    servers.push(inbound);
    if (ctx.syn !== undefined) {
      ctx.syn.watch(inbound);
      log.info('kernel SMC-R peers accepted on the inbound listener (their SYN carries the SMC option)');
    }
    const smc = await listen({ port: cfg.ports.smc, host }, (s) => {
      track(s);
      s.on('error', (err) => log.debug({ err }, 'SMC port socket error'));
      serveSmcConnection(ctx, s, newConnectionId()).catch(onError('SMC'));
    });
    servers.push(smc);
    const metricsServer = await startMetricsServer(metrics, cfg.ports.metrics, log, host);
    servers.push(metricsServer);
    const healthServer = await startHealthServer(health, cfg.ports.health, host);
    servers.push(healthServer);
    // Loopback only, whatever `host` the others bind.
    const adminServers = await startAdminServer(ctx.connections, cfg.ports.admin, log);
    servers.push(...adminServers);
    health.set('listeners', true);
    const ports = {
      outbound: port(outbound),
      inbound: port(inbound),
      smc: port(smc),
      metrics: port(metricsServer),
      health: port(healthServer),
      admin: adminServers[0] === undefined ? 0 : port(adminServers[0]),
    };
    boundPorts = ports;
    log.info(
      {
        ports,
        tenant: cfg.tenant,
        mode: cfg.policy.mode,
        rdma: links.available(),
        originalDst: originalDst.name,
        limits: ctx.budget.limits,
      },
      'sidecar running',
    );
    if (ctx.budget.limits.maxRegisteredMemory < ctx.budget.limits.rmbSize)
      log.warn(
        { limits: ctx.budget.limits },
        'limits.maxRegisteredMemory is below limits.rmbSize: every SMC-R connection falls back to TCP',
      );
    return {
      ctx,
      health,
      ports,
      async stop() {
        health.drain();
        watcher.stop();
        reducer?.stop();
        for (const s of sockets) s.destroy();
        defaults?.relays?.abortAll();
        await Promise.all(servers.map(closeServer));
        try {
          await links.close();
        } catch (err) {
          log.warn({ err }, 'releasing RDMA resources failed');
        }
      },
    };
  } catch (err) {
    watcher.stop();
    reducer?.stop();
    await Promise.all(servers.map(closeServer));
    throw err;
  }
}
