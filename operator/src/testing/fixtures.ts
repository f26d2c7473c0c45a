import type { Pod } from '../api/core.js';
import type { SmcPolicy, SmcPolicySpec } from '../api/smcpolicy.js';
import type { Clock } from '../controller/clock.js';

/** Test helpers for pure logic: object builders and a manual clock. */

export function policy(
  name: string,
  spec: Partial<SmcPolicySpec> & { tenant?: string },
  meta: { namespace?: string; created?: string; generation?: number; deleting?: boolean } = {},
): SmcPolicy {
  return {
    metadata: {
      name,
      namespace: meta.namespace ?? 'ns',
      uid: `uid-${name}`,
      generation: meta.generation ?? 1,
      creationTimestamp: meta.created ?? '2026-01-01T00:00:00Z',
      deletionTimestamp: meta.deleting ? '2026-01-02T00:00:00Z' : undefined,
    },
    spec: { tenant: 't', mode: 'Prefer', ...spec },
  };
}

export function pod(
  name: string,
  labels: Record<string, string>,
  o: {
    namespace?: string;
    injected?: boolean;
    ready?: boolean;
    ip?: string;
    /** status.podIPs (the API server lists podIP first; tests may not). */
    ips?: string[];
    node?: string;
    phase?: string;
    deleting?: boolean;
  } = {},
): Pod {
  const injected = o.injected ?? true;
  return {
    metadata: {
      name,
      namespace: o.namespace ?? 'ns',
      labels,
      deletionTimestamp: o.deleting ? '2026-01-02T00:00:00Z' : undefined,
    },
    spec: {
      nodeName: o.node ?? 'node-1',
      containers: [{ name: 'app' }, ...(injected ? [{ name: 'smc-sidecar' }] : [])],
    },
    status: {
      phase: o.phase ?? 'Running',
      podIP: o.ip,
      ...(o.ips === undefined ? {} : { podIPs: o.ips.map((ip) => ({ ip })) }),
      containerStatuses: injected
        ? [{ name: 'smc-sidecar', ready: o.ready ?? false, state: o.ready ? { running: {} } : {} }]
        : [],
    },
  };
}

/** A clock whose time moves only when told; timers fire in order. */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  get pending(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= until && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = until;
  }
}

/** The value, or a test failure when it is missing. */
export function must<T>(v: T | null | undefined, what = 'value'): T {
  if (v === null || v === undefined) throw new Error(`${what} is missing`);
  return v;
}
