import type { Pod } from '../api/core.js';
import type { SmcPolicy } from '../api/smcpolicy.js';
import { podInjected, podLive } from '../policy/pod.js';
import { decideInjection, reportedReason } from '../webhook/inject.js';

/** Event reason on a pod that opted in but runs without the sidecar. */
export const NOT_INJECTED_REASON = 'NotInjected';

/**
 * Why a cached pod that opted in runs without the sidecar, or undefined when it has the sidecar,
 * did not opt in, opted out, or is finished. Pure. For the reasons the webhook gives, the text is
 * the webhook's (`notInjectedReason`); a pod the webhook would have injected but did not (created
 * before its policy or opt-in, or while no webhook answered under failurePolicy Ignore) gets its
 * own reason, since only the controller can see that case.
 */
export function podNotInjectedReason(
  pod: Pod,
  namespaceLabels: Readonly<Record<string, string>> | null | undefined,
  policies: Iterable<SmcPolicy>,
): string | undefined {
  if (!podLive(pod) || podInjected(pod)) return undefined;
  const d = decideInjection(pod, pod.metadata.namespace ?? '', namespaceLabels, policies);
  if (!d.inject) return reportedReason(d);
  return `SmcPolicy ${d.policy.metadata.name} selects the pod but the webhook did not inject it; recreate the pod`;
}

export interface NotInjectedSources {
  namespaceLabels(ns: string): Readonly<Record<string, string>> | null | undefined;
  policies(ns: string): Iterable<SmcPolicy>;
}

export interface NotInjectedOptions {
  /**
   * Pods created longer ago are not reported: a new leader rescans every pod, and re-reporting
   * old ones on each failover would flood the namespace (Events expire after an hour anyway).
   */
  readonly maxAgeMs: number;
  /** Upper bound of remembered UIDs; the oldest are forgotten first. */
  readonly maxTracked: number;
  /** Namespaces the webhook never sees (the operator's own): nothing to explain there. */
  readonly skipNamespaces: readonly string[];
}

export const DEFAULT_NOT_INJECTED_OPTIONS: NotInjectedOptions = {
  maxAgeMs: 3_600_000,
  maxTracked: 50_000,
  skipNamespaces: [],
};

/** Emits the Event (fire and forget; the recorder logs failures). */
export type NotInjectedEmitter = (pod: Pod, reason: string) => void;

/**
 * Reports each pod that opted in but runs without the sidecar once (per UID), as a Warning Event
 * `NotInjected` on the pod: admission warnings reach only the client that created the pod, and
 * a controller (Deployment, Job) does not show them to anyone. The caller gates on leadership.
 */
export class NotInjectedReporter {
  /** UIDs already reported; insertion-ordered, so the oldest are evicted first at the bound. */
  private readonly reported = new Set<string>();

  constructor(
    private readonly sources: NotInjectedSources,
    private readonly emit: NotInjectedEmitter,
    private readonly opts: NotInjectedOptions = DEFAULT_NOT_INJECTED_OPTIONS,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.reported.size;
  }

  /** Looks at a pod (added, changed, or found by a new leader); returns the reason if it reported now. */
  observe(pod: Pod): string | undefined {
    const id = podId(pod);
    if (this.reported.has(id)) return undefined;
    const ns = pod.metadata.namespace ?? '';
    if (this.opts.skipNamespaces.includes(ns)) return undefined;
    if (this.tooOld(pod)) return undefined;
    const reason = podNotInjectedReason(pod, this.sources.namespaceLabels(ns), this.sources.policies(ns));
    if (reason === undefined) return undefined;
    this.reported.add(id);
    while (this.reported.size > this.opts.maxTracked) {
      const oldest = this.reported.values().next();
      if (oldest.done) break;
      this.reported.delete(oldest.value);
    }
    this.emit(pod, reason);
    return reason;
  }

  /** The pod is gone: its UID will not come back. */
  forget(pod: Pod): void {
    this.reported.delete(podId(pod));
  }

  /** Drops UIDs of pods no longer present (deletes missed while the watch was down). */
  retainOnly(pods: Iterable<Pod>): void {
    const live = new Set<string>();
    for (const p of pods) live.add(podId(p));
    for (const id of this.reported) if (!live.has(id)) this.reported.delete(id);
  }

  private tooOld(pod: Pod): boolean {
    const created = Date.parse(pod.metadata.creationTimestamp ?? '');
    return !Number.isNaN(created) && this.now() - created > this.opts.maxAgeMs;
  }
}

/** The UID; namespace/name for objects without one (tests, never the API server). */
function podId(pod: Pod): string {
  return pod.metadata.uid ?? `${pod.metadata.namespace ?? ''}/${pod.metadata.name}`;
}
