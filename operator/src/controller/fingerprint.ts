import type { Pod } from '../api/core.js';
import type { SmcPolicy } from '../api/smcpolicy.js';
import { podInjected, sidecarReady } from '../policy/pod.js';

/**
 * What about a pod matters to policies and the directory. Pod updates whose fingerprint did not
 * change (kubelet heartbeats, unrelated status fields, annotations) are dropped before the queue.
 */
export function podFingerprint(pod: Pod): string {
  const labels = Object.entries(pod.metadata.labels ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return [
    labels,
    pod.status?.podIP ?? '',
    (pod.status?.podIPs ?? []).map((p) => p.ip).join(','),
    pod.status?.phase ?? '',
    pod.spec.nodeName ?? '',
    podInjected(pod) ? 'i' : '',
    sidecarReady(pod) ? 'r' : '',
    pod.metadata.deletionTimestamp ? 'd' : '',
  ].join('|');
}

/** What about a policy matters to reconciliation (status-only updates, e.g. our own writes, do not). */
export function policyFingerprint(p: SmcPolicy): string {
  return [
    p.metadata.generation ?? '',
    p.metadata.creationTimestamp ?? '',
    p.metadata.deletionTimestamp ?? '',
    (p.metadata.finalizers ?? []).join(','),
    JSON.stringify(p.spec),
  ].join('|');
}
