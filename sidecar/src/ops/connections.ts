import { canonicalIp, formatSocketAddress } from '../net/ip.js';
import type { FallbackReason } from '../policy/reasons.js';
import { declineCodeInfo } from '../protocol/clc/decline-codes.js';
import type { Direction } from '../relay/pipe.js';
import type { ConnectionOutcome, DataPath } from './metrics.js';

/**
 * The live connections of this sidecar (`GET /connections` on the admin port, `smc connections`):
 * every connection a listener accepts is registered at once and leaves the registry when its
 * handler is done; the last few closed ones stay in a ring so that a short connection can still
 * be looked at. Pure: the handlers update the fields where they count the metrics.
 */

/** Seen from this pod: `outbound` was opened by the local application, `inbound` came from the network. */
export type ConnectionDirection = 'outbound' | 'inbound';
/** The listener that accepted it: the outbound or inbound redirect, or the SMC port (a peer sidecar). */
export type ConnectionListener = 'outbound' | 'inbound' | 'smc';
/**
 * What carries the bytes: `pending` until the policy decided, `handshake` while CLC runs, then
 * `SMCR` or `TCP`; `none` for a declined (reset) connection.
 */
export type ConnectionMode = 'pending' | 'handshake' | 'SMCR' | 'TCP' | 'none';
export type ByteSink = (direction: Direction, n: number) => void;

/** The CLC Decline that ended the handshake (ours or the peer's), when there was one. */
export interface DeclineInfo {
  code: number;
  origin: 'local' | 'peer';
}

/** Closed connections kept for `GET /connections` by default. */
export const DEFAULT_CLOSED_KEPT = 64;

function endpointText(address: string | undefined, port: number | undefined): string | null {
  if (address === undefined || port === undefined) return null;
  try {
    return formatSocketAddress({ address: canonicalIp(address), port });
  } catch {
    return formatSocketAddress({ address, port });
  }
}

/**
 * One connection: plain fields, written by its handler. The byte counters are updated from the
 * relay's per-chunk callback (see {@link counter}): additions only, no allocation.
 */
export class TrackedConnection {
  /** Our end: the application's socket (outbound) or the address:port it was reached at (inbound). */
  local: string | null = null;
  /** The other end: where the application was going (outbound) or who connected (inbound). */
  peer: string | null = null;
  mode: ConnectionMode = 'pending';
  /** The label values of smc_connections_total, once decided. */
  outcome: ConnectionOutcome | null = null;
  reason: FallbackReason | 'none' | null = null;
  decline: DeclineInfo | null = null;
  /** A note for what the labels do not say (e.g. the peer sidecar asked for a plain relay). */
  detail: string | null = null;
  /** On SMC-R: the link the connection runs on (the logs' `link`) and its SMC connection id (`smcConn`). */
  linkId: string | null = null;
  smcConn: string | null = null;
  rdmaTx = 0;
  rdmaRx = 0;
  tcpTx = 0;
  tcpRx = 0;
  closedAt: number | null = null;

  constructor(
    /** The id every log line of the connection carries (`conn`). */
    readonly id: string,
    readonly direction: ConnectionDirection,
    readonly listener: ConnectionListener,
    /** Epoch milliseconds. */
    readonly startedAt: number,
  ) {}

  setLocal(address: string | undefined, port: number | undefined): void {
    this.local = endpointText(address, port);
  }

  setPeer(address: string | undefined, port: number | undefined): void {
    this.peer = endpointText(address, port);
  }

  /** The CLC handshake (with the link setup it drives) starts. */
  handshake(): void {
    this.mode = 'handshake';
  }

  upgraded(link: { linkId: string; id: string }): void {
    this.mode = 'SMCR';
    this.outcome = 'upgraded';
    this.reason = 'none';
    this.linkId = link.linkId;
    this.smcConn = link.id;
  }

  /** Carried over TCP; `reason` null when this side does not know it (the peer sidecar chose). */
  fallback(
    reason: FallbackReason | null,
    decline: DeclineInfo | null = null,
    detail: string | null = null,
  ): void {
    this.mode = 'TCP';
    this.outcome = 'fallback';
    this.reason = reason;
    this.decline = decline;
    this.detail = detail;
  }

  /** Refused: the connection is reset; `reason` null when no label applies (`detail` says why). */
  declined(
    reason: FallbackReason | null,
    decline: DeclineInfo | null = null,
    detail: string | null = null,
  ): void {
    this.mode = 'none';
    this.outcome = 'declined';
    this.reason = reason;
    this.decline = decline;
    this.detail = detail;
  }

  /**
   * A relay's byte callback that counts into this connection and then calls `sink` (the metrics'
   * counter of the same path). Made once per connection and path.
   */
  counter(path: DataPath, sink: ByteSink): ByteSink {
    if (path === 'rdma') {
      return (direction, n) => {
        if (direction === 'tx') this.rdmaTx += n;
        else this.rdmaRx += n;
        sink(direction, n);
      };
    }
    return (direction, n) => {
      if (direction === 'tx') this.tcpTx += n;
      else this.tcpRx += n;
      sink(direction, n);
    };
  }
}

/** One connection as `GET /connections` reports it. */
export interface ConnectionInfo {
  id: string;
  direction: ConnectionDirection;
  listener: ConnectionListener;
  local: string | null;
  peer: string | null;
  mode: ConnectionMode;
  outcome: ConnectionOutcome | null;
  reason: string | null;
  decline: { code: number; hex: string; name: string | null; origin: 'local' | 'peer' } | null;
  detail: string | null;
  bytes: { rdma: { tx: number; rx: number }; tcp: { tx: number; rx: number } };
  link: { id: string; smcConn: string | null } | null;
  startedAt: string;
  /** Live: time since the accept; closed: how long the connection lasted. */
  ageMs: number;
  closed: boolean;
  closedAt: string | null;
}

export interface ConnectionsReport {
  generatedAt: string;
  /** Live connections (all of them are listed). */
  live: number;
  /** Closed connections listed (the most recent, at most `closedCapacity`). */
  closed: number;
  closedCapacity: number;
  /** Live ones oldest first, then closed ones most recently closed first. */
  connections: ConnectionInfo[];
}

export function declineHex(code: number): string {
  return `0x${(code >>> 0).toString(16).padStart(8, '0')}`;
}

function info(c: TrackedConnection, now: number): ConnectionInfo {
  return {
    id: c.id,
    direction: c.direction,
    listener: c.listener,
    local: c.local,
    peer: c.peer,
    mode: c.mode,
    outcome: c.outcome,
    reason: c.reason,
    decline:
      c.decline === null
        ? null
        : {
            code: c.decline.code,
            hex: declineHex(c.decline.code),
            name: declineCodeInfo(c.decline.code)?.name ?? null,
            origin: c.decline.origin,
          },
    detail: c.detail,
    bytes: { rdma: { tx: c.rdmaTx, rx: c.rdmaRx }, tcp: { tx: c.tcpTx, rx: c.tcpRx } },
    link: c.linkId === null ? null : { id: c.linkId, smcConn: c.smcConn },
    startedAt: new Date(c.startedAt).toISOString(),
    ageMs: Math.max(0, (c.closedAt ?? now) - c.startedAt),
    closed: c.closedAt !== null,
    closedAt: c.closedAt === null ? null : new Date(c.closedAt).toISOString(),
  };
}

export interface ConnectionRegistryOptions {
  /** Closed connections kept (a ring); 0 keeps none. */
  closedCapacity?: number;
  /** Epoch milliseconds; injected for tests. */
  now?: () => number;
}

/** The live connections and a fixed ring of the last closed ones. */
export class ConnectionRegistry {
  private readonly live = new Set<TrackedConnection>();
  private readonly ring: (TrackedConnection | undefined)[];
  private next = 0;
  private kept = 0;
  private opened = 0;
  private readonly now: () => number;

  constructor(opts: ConnectionRegistryOptions = {}) {
    const capacity = opts.closedCapacity ?? DEFAULT_CLOSED_KEPT;
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError('closedCapacity must be >= 0');
    this.ring = new Array<TrackedConnection | undefined>(capacity);
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.live.size;
  }

  /** Connections registered since the start (a running total). */
  get openedTotal(): number {
    return this.opened;
  }

  get closedCapacity(): number {
    return this.ring.length;
  }

  /** Registers a connection at accept time. */
  open(id: string, direction: ConnectionDirection, listener: ConnectionListener): TrackedConnection {
    const c = new TrackedConnection(id, direction, listener, this.now());
    this.live.add(c);
    this.opened++;
    return c;
  }

  /** The connection is done (both directions closed, or reset): into the ring of closed ones. Idempotent. */
  close(c: TrackedConnection): void {
    if (!this.live.delete(c)) return;
    c.closedAt = this.now();
    if (this.ring.length === 0) return;
    this.ring[this.next] = c;
    this.next = (this.next + 1) % this.ring.length;
    this.kept = Math.min(this.kept + 1, this.ring.length);
  }

  /** Live connections, oldest first. */
  liveConnections(): TrackedConnection[] {
    return [...this.live];
  }

  /** Closed connections kept, most recently closed first. */
  closedConnections(): TrackedConnection[] {
    const out: TrackedConnection[] = [];
    for (let i = 1; i <= this.kept; i++) {
      const c = this.ring[(this.next - i + this.ring.length) % this.ring.length];
      if (c !== undefined) out.push(c);
    }
    return out;
  }

  report(): ConnectionsReport {
    const now = this.now();
    const live = this.liveConnections();
    const closed = this.closedConnections();
    return {
      generatedAt: new Date(now).toISOString(),
      live: live.length,
      closed: closed.length,
      closedCapacity: this.ring.length,
      connections: [...live, ...closed].map((c) => info(c, now)),
    };
  }
}
