import type { Pod } from '../api/core.js';
import { objectKey } from '../api/meta.js';
import type { SmcPolicy } from '../api/smcpolicy.js';
import { podLive } from './pod.js';
import { selectorMatches } from './selector.js';

/**
 * Deterministic precedence between overlapping policies: the oldest creationTimestamp wins, ties
 * broken by name. Returns < 0 when `a` wins over `b`.
 */
export function comparePolicies(a: SmcPolicy, b: SmcPolicy): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  // RFC 3339 timestamps in UTC with second precision compare correctly as strings; parse anyway so
  // offsets or fractional seconds cannot reorder them.
  const da = Date.parse(ta);
  const db = Date.parse(tb);
  if (!Number.isNaN(da) && !Number.isNaN(db) && da !== db) return da - db;
  if (Number.isNaN(da) !== Number.isNaN(db)) return Number.isNaN(da) ? 1 : -1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/** Whether a policy takes part in resolution (policies being deleted release their pods). */
export function policyActive(p: SmcPolicy): boolean {
  return !p.metadata.deletionTimestamp;
}

/** Policies of the pod's namespace selecting it, best first. `policies` must be of the pod's namespace. */
export function candidatePolicies(pod: Pod, policies: Iterable<SmcPolicy>): SmcPolicy[] {
  const out: SmcPolicy[] = [];
  for (const p of policies) {
    if (!policyActive(p)) continue;
    if (p.metadata.namespace !== pod.metadata.namespace) continue;
    if (selectorMatches(p.spec.podSelector, pod.metadata.labels)) out.push(p);
  }
  return out.sort(comparePolicies);
}

/** The policy in force for a pod, if any. */
export function effectivePolicy(pod: Pod, policies: Iterable<SmcPolicy>): SmcPolicy | undefined {
  let best: SmcPolicy | undefined;
  for (const p of policies) {
    if (!policyActive(p) || p.metadata.namespace !== pod.metadata.namespace) continue;
    if (!selectorMatches(p.spec.podSelector, pod.metadata.labels)) continue;
    if (!best || comparePolicies(p, best) < 0) best = p;
  }
  return best;
}

export interface PolicyResolution {
  /** Pods whose effective policy is this one. */
  readonly matched: Pod[];
  /** Pods this policy selects that an older policy wins. */
  shadowed: number;
  /** Keys of the policies that win over this one for some selected pod. */
  readonly conflictsWith: Set<string>;
}

export interface NamespaceResolution {
  /** pod key -> winning policy key. */
  readonly podPolicy: Map<string, string>;
  /** policy key -> its resolution. Every active policy given has an entry. */
  readonly policies: Map<string, PolicyResolution>;
}

/** Resolves every live pod (not terminating, not finished) of one namespace against that namespace's policies. */
export function resolveNamespace(pods: Iterable<Pod>, policies: Iterable<SmcPolicy>): NamespaceResolution {
  const active = [...policies].filter(policyActive).sort(comparePolicies);
  const res: NamespaceResolution = { podPolicy: new Map(), policies: new Map() };
  for (const p of active) {
    res.policies.set(objectKey(p.metadata), { matched: [], shadowed: 0, conflictsWith: new Set() });
  }
  for (const pod of pods) {
    if (!podLive(pod)) continue;
    let winnerKey: string | undefined;
    for (const p of active) {
      if (!selectorMatches(p.spec.podSelector, pod.metadata.labels)) continue;
      const key = objectKey(p.metadata);
      const r = res.policies.get(key);
      if (!r) continue;
      if (winnerKey === undefined) {
        winnerKey = key;
        r.matched.push(pod);
        res.podPolicy.set(objectKey(pod.metadata), key);
      } else {
        r.shadowed++;
        r.conflictsWith.add(winnerKey);
      }
    }
  }
  return res;
}
