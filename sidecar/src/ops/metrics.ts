import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ALL_FALLBACK_REASONS, type FallbackReason } from '../policy/reasons.js';
import { type Direction, SIDECAR_RESET_CAUSES, type SidecarResetCause } from '../relay/pipe.js';
import type { LinkGroupStats } from '../smc/link-group-manager.js';
import { DIRECTORY_REJECT_REASONS, type DirectoryRejectReason } from '../directory/verify.js';

/**
 * Connection outcomes (label `outcome` of smc_connections_total):
 *  - upgraded: the data flows over SMC-R;
 *  - fallback: the data flows over plain TCP (`reason` says why);
 *  - declined: the connection was refused (reset) instead of carried: Require
 *    mode with a failed upgrade, the connection limit, an unknown destination.
 */
export type ConnectionOutcome = 'upgraded' | 'fallback' | 'declined';
export type DataPath = 'rdma' | 'tcp';

/** RDMA error kinds raised by the link and data path (work completion statuses come on top). */
export const RDMA_ERROR_KINDS = [
  'link-error',
  'llc-malformed',
  'post-send',
  'cdc-protocol',
  'pump-start',
  'cdc-bad-token',
  // Hostile input: a peer RMBE above limits.maxPeerRmbSize (declined), a CONFIRM RKEY beyond the
  // link group's 255 RMBs (answered negative), an LLC request type we do not serve (ignored).
  'peer-rmb-too-large',
  'llc-rkey-refused',
  'llc-unsupported',
  // A peer sidecar's preamble naming one of our own ports or an excluded one (reset).
  'preamble-port',
] as const;

/** The metric names are fixed: the Grafana dashboard queries them. */
export const METRIC_NAMES = {
  connections: 'smc_connections_total',
  bytes: 'smc_bytes_total',
  linkGroups: 'smc_link_groups',
  links: 'smc_links',
  rdmaErrors: 'smc_rdma_errors_total',
  handshakeDuration: 'smc_handshake_duration_seconds',
  dataPath: 'smc_data_path_info',
  directoryRejected: 'smc_directory_rejected_total',
  appResets: 'smc_app_resets_total',
  registeredMemory: 'smc_registered_memory_bytes',
  rmbs: 'smc_rmbs',
} as const;

export class SidecarMetrics {
  readonly registry = new Registry();
  private readonly connections: Counter<'outcome' | 'reason'>;
  private readonly bytes: Counter<'path' | 'direction'>;
  private readonly rdmaErrors: Counter<'kind'>;
  private readonly handshake: Histogram;
  private readonly dataPathInfo: Gauge<'path' | 'requested'>;
  private readonly directoryRejections: Counter<'reason'>;
  private readonly appResets: Counter<'reason'>;

  constructor(linkStats: () => LinkGroupStats, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.connections = new Counter({
      name: METRIC_NAMES.connections,
      help: 'Proxied TCP connections by outcome (upgraded, fallback, declined) and reason',
      labelNames: ['outcome', 'reason'],
      registers,
    });
    this.bytes = new Counter({
      name: METRIC_NAMES.bytes,
      help: 'Application bytes carried, by path (rdma, tcp) and direction (tx from the local app, rx to it)',
      labelNames: ['path', 'direction'],
      registers,
    });
    new Gauge({
      name: METRIC_NAMES.linkGroups,
      help: 'SMC-R link groups of this sidecar',
      registers,
      collect() {
        this.set(linkStats().linkGroups);
      },
    });
    new Gauge({
      name: METRIC_NAMES.links,
      help: 'SMC-R links (RC queue pairs) of this sidecar',
      registers,
      collect() {
        this.set(linkStats().links);
      },
    });
    new Gauge({
      name: METRIC_NAMES.registeredMemory,
      help: 'Bytes registered with the RDMA device by live link groups: RMBs, their staging rings, LLC rings',
      registers,
      collect() {
        this.set(linkStats().registeredBytes);
      },
    });
    new Gauge({
      name: METRIC_NAMES.rmbs,
      help: 'RMBs of live link groups: in-use (held by a connection), pooled (kept for the next connection of the group), retiring (DELETE RKEY sent, deregistered once the peer answers)',
      labelNames: ['state'],
      registers,
      collect() {
        const st = linkStats();
        this.set({ state: 'in-use' }, st.rmbsInUse);
        this.set({ state: 'pooled' }, st.rmbsPooled);
        this.set({ state: 'retiring' }, st.rmbsRetiring);
      },
    });
    this.rdmaErrors = new Counter({
      name: METRIC_NAMES.rdmaErrors,
      help: 'RDMA errors by kind (link setup, work completion errors, ...)',
      labelNames: ['kind'],
      registers,
    });
    this.handshake = new Histogram({
      name: METRIC_NAMES.handshakeDuration,
      help: 'Duration of the CLC handshake, preamble to SMC-R or fallback',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 6, 10],
      registers,
    });
    this.dataPathInfo = new Gauge({
      name: METRIC_NAMES.dataPath,
      help: 'The SMC-R data path in use (native pump, js, link-only, none) and the configured rdma.dataPath',
      labelNames: ['path', 'requested'],
      registers,
    });
    this.directoryRejections = new Counter({
      name: METRIC_NAMES.directoryRejected,
      help: 'Directory shard files refused (bad or missing signature, another namespace, older than the accepted one, malformed), by reason; the previous version stays in use',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of DIRECTORY_REJECT_REASONS) this.directoryRejections.inc({ reason }, 0);
    this.appResets = new Counter({
      name: METRIC_NAMES.appResets,
      help: 'Application connections the sidecar itself reset, by reason: a declined connection (its decline reason) or, after the upgrade, peer-gone, link-failed, cdc-protocol, pump-start',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of [...ALL_FALLBACK_REASONS, ...SIDECAR_RESET_CAUSES])
      this.appResets.inc({ reason }, 0);
    // Series start at 0: a rate of fallbacks, declines or errors is then 0, not absent, until the
    // first one (bounded: one series per reason and kind).
    for (const path of ['rdma', 'tcp'] as const) {
      for (const direction of ['tx', 'rx'] as const) this.bytes.inc({ path, direction }, 0);
    }
    this.connections.inc({ outcome: 'upgraded', reason: 'none' }, 0);
    for (const reason of ALL_FALLBACK_REASONS) {
      this.connections.inc({ outcome: 'fallback', reason }, 0);
      this.connections.inc({ outcome: 'declined', reason }, 0);
    }
    for (const kind of RDMA_ERROR_KINDS) this.rdmaErrors.inc({ kind }, 0);
    // The event loop delay histogram samples once a second, not every 10 ms (prom-client's
    // default): its timer alone kept an idle sidecar at ~1% of a host CPU (~7% of a TCG vCPU).
    if (opts.defaultMetrics === true)
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 1000 });
  }

  connection(outcome: ConnectionOutcome, reason: FallbackReason | 'none'): void {
    this.connections.inc({ outcome, reason });
    // A declined connection is one the sidecar reset instead of carrying.
    if (outcome === 'declined') this.appResets.inc({ reason });
  }

  /** An upgraded connection the sidecar reset after the commit point. */
  appReset(cause: SidecarResetCause): void {
    this.appResets.inc({ reason: cause });
  }

  byteCounter(path: DataPath): (direction: Direction, n: number) => void {
    return (direction, n) => this.bytes.inc({ path, direction }, n);
  }

  /** Records which data path carries SMC-R connections (e.g. `js` when `auto` found no native pump). */
  dataPath(path: string, requested: string): void {
    this.dataPathInfo.reset();
    this.dataPathInfo.set({ path, requested }, 1);
  }

  rdmaError(kind: string): void {
    this.rdmaErrors.inc({ kind });
  }

  directoryRejected(reason: DirectoryRejectReason): void {
    this.directoryRejections.inc({ reason });
  }

  handshakeSeconds(seconds: number): void {
    this.handshake.observe(seconds);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
