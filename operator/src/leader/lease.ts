import type { Logger } from 'pino';
import { LeaseSchema, type Lease } from '../api/core.js';
import { sleep } from '../controller/clock.js';
import { errorMessage, isApiError } from '../errors.js';
import type { KubeClient } from '../kube/client.js';
import { Resources, resourcePath } from '../kube/resources.js';

export interface LeaderElectionOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  /** How long a lease is valid without renewal (non-leaders wait this long after the last change). */
  readonly leaseDurationMs: number;
  /** The leader gives up if it could not renew for this long (must be < leaseDurationMs). */
  readonly renewDeadlineMs: number;
  /** Interval between acquire/renew attempts. */
  readonly retryPeriodMs: number;
}

export interface LeaderCallbacks {
  /** Called when this replica becomes leader; `signal` aborts when leadership ends. */
  onStartedLeading(signal: AbortSignal): void;
  onStoppedLeading(): void;
  onNewLeader?(identity: string): void;
}

/** Formats a Date as metav1.MicroTime (RFC 3339 with microseconds). */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Decides whether a candidate may take the lease, from its local observation of the lease record. */
export function leaseAvailable(
  lease: Lease,
  identity: string,
  observedAtMs: number,
  nowMs: number,
  leaseDurationMs: number,
): boolean {
  const holder = lease.spec?.holderIdentity ?? '';
  if (holder === '' || holder === identity) return true;
  const dur = (lease.spec?.leaseDurationSeconds ?? 0) * 1000 || leaseDurationMs;
  return observedAtMs + dur <= nowMs;
}

/**
 * Leader election over a coordination.k8s.io/v1 Lease, as client-go does it: updates are
 * optimistic (resourceVersion), expiry is judged by how long the record has been unchanged as
 * seen locally (no reliance on synchronised clocks), a leader that cannot renew within
 * renewDeadline steps down before any other replica can consider the lease expired, and the
 * lease is released (holder cleared) on orderly shutdown.
 */
export class LeaderElector {
  private observed: { record: string; at: number } | undefined;
  private leading = false;
  private lastLeader = '';
  private leaderAbort: AbortController | undefined;
  transitions = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: LeaderElectionOptions,
    private readonly cb: LeaderCallbacks,
    private readonly log: Logger,
  ) {
    if (opts.renewDeadlineMs >= opts.leaseDurationMs) {
      throw new Error('renewDeadline must be shorter than leaseDuration');
    }
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get path(): string {
    return resourcePath(Resources.leases, this.opts.namespace, this.opts.name);
  }

  /** When false, stopping leaves the lease to expire (what a crash looks like to the others). */
  releaseOnStop = true;

  /** Campaigns, leads and re-campaigns until `signal` aborts; then releases the lease if held. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      // Acquire.
      while (!signal.aborted && !(await this.tryAcquireOrRenew())) {
        await sleep(this.jitter(this.opts.retryPeriodMs), signal);
      }
      if (signal.aborted) break;
      this.leading = true;
      this.leaderAbort = new AbortController();
      this.log.info({ lease: this.opts.name, identity: this.opts.identity }, 'became leader');
      this.cb.onStartedLeading(this.leaderAbort.signal);
      // Renew.
      let lastRenew = performance.now();
      while (!signal.aborted) {
        await sleep(this.opts.retryPeriodMs, signal);
        if (signal.aborted) break;
        if (await this.tryAcquireOrRenew()) {
          lastRenew = performance.now();
        } else if (performance.now() - lastRenew >= this.opts.renewDeadlineMs) {
          this.log.error({ lease: this.opts.name }, 'failed to renew the lease in time; stepping down');
          break;
        }
      }
      this.stepDown();
      if (signal.aborted) break;
    }
    if (this.releaseOnStop) await this.release();
  }

  private stepDown(): void {
    if (!this.leading) return;
    this.leading = false;
    this.leaderAbort?.abort();
    this.leaderAbort = undefined;
    this.cb.onStoppedLeading();
  }

  private jitter(ms: number): number {
    return ms * (1 + Math.random() * 0.2);
  }

  private observe(lease: Lease): void {
    const record = JSON.stringify([lease.spec?.holderIdentity ?? '', lease.spec?.renewTime ?? '']);
    if (!this.observed || this.observed.record !== record) {
      this.observed = { record, at: performance.now() };
    }
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== this.lastLeader) {
      this.lastLeader = holder;
      if (holder) this.cb.onNewLeader?.(holder);
    }
  }

  /** One attempt; true when this replica holds the lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const durationSeconds = Math.max(1, Math.ceil(this.opts.leaseDurationMs / 1000));
    let lease: Lease;
    try {
      lease = await this.client.request('GET', this.path, LeaseSchema, {
        timeoutMs: this.opts.renewDeadlineMs,
      });
    } catch (e) {
      if (!isApiError(e, 404)) {
        this.log.warn({ err: errorMessage(e) }, 'reading the lease failed');
        return false;
      }
      try {
        const created = await this.client.request(
          'POST',
          resourcePath(Resources.leases, this.opts.namespace),
          LeaseSchema,
          {
            body: {
              apiVersion: 'coordination.k8s.io/v1',
              kind: 'Lease',
              metadata: { name: this.opts.name, namespace: this.opts.namespace },
              spec: {
                holderIdentity: this.opts.identity,
                leaseDurationSeconds: durationSeconds,
                acquireTime: microTime(now),
                renewTime: microTime(now),
                leaseTransitions: 0,
              },
            },
            timeoutMs: this.opts.renewDeadlineMs,
          },
        );
        this.observe(created);
        return true;
      } catch (e2) {
        this.log.debug({ err: errorMessage(e2) }, 'creating the lease failed');
        return false;
      }
    }
    this.observe(lease);
    const observedAt = this.observed?.at ?? performance.now();
    if (
      !leaseAvailable(lease, this.opts.identity, observedAt, performance.now(), this.opts.leaseDurationMs)
    ) {
      return false;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const takeover = holder !== this.opts.identity;
    const spec = {
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: durationSeconds,
      acquireTime: takeover ? microTime(now) : (lease.spec?.acquireTime ?? microTime(now)),
      renewTime: microTime(now),
      leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + (takeover && holder !== '' ? 1 : 0),
    };
    try {
      const updated = await this.client.request('PUT', this.path, LeaseSchema, {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { ...lease.metadata, resourceVersion: lease.metadata.resourceVersion },
          spec,
        },
        timeoutMs: this.opts.renewDeadlineMs,
      });
      this.observe(updated);
      if (takeover) this.transitions++;
      return true;
    } catch (e) {
      this.log.debug({ err: errorMessage(e) }, 'updating the lease failed');
      return false;
    }
  }

  /** Gives the lease up so another replica can take over without waiting for expiry. */
  async release(): Promise<void> {
    if (this.leading) this.stepDown();
    try {
      const lease = await this.client.request('GET', this.path, LeaseSchema, { timeoutMs: 5_000 });
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      await this.client.request('PUT', this.path, LeaseSchema, {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: lease.metadata,
          spec: {
            ...lease.spec,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            renewTime: microTime(new Date()),
          },
        },
        timeoutMs: 5_000,
      });
      this.log.info({ lease: this.opts.name }, 'released the lease');
    } catch (e) {
      this.log.warn({ err: errorMessage(e) }, 'releasing the lease failed');
    }
  }
}
