import type { Pod } from '../api/core.js';
import type { Condition } from '../api/meta.js';
import { splitKey } from '../api/meta.js';
import { ConditionType, type SmcPolicy, type SmcPolicyStatus } from '../api/smcpolicy.js';
import { podInjected, sidecarReady } from './pod.js';
import type { PolicyResolution } from './resolve.js';
import type { TenantAdmission } from './tenancy.js';

export type ConditionInput = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/** Whether a matched pod's node offers an RDMA device the policy allows. */
export type DeviceCheck = (pod: Pod, policy: SmcPolicy) => boolean;

/**
 * The status a policy should have. `lastTransitionTime` is carried over from the current status
 * for conditions whose status did not change, so recomputing is idempotent. `admission` (whether
 * the policy's SmcTenant admits its namespace, policy/tenancy.ts) adds the `TenantAdmitted`
 * condition; a policy that is not admitted is not Ready and is Degraded with the same reason.
 */
export function computeStatus(
  policy: SmcPolicy,
  res: PolicyResolution,
  deviceOk: DeviceCheck,
  now: Date,
  admission?: TenantAdmission,
): SmcPolicyStatus {
  const generation = policy.metadata.generation;
  const matched = res.matched.length;
  let ready = 0;
  let missingSidecar = 0;
  let noDevice = 0;
  for (const pod of res.matched) {
    if (sidecarReady(pod)) ready++;
    if (!podInjected(pod)) missingSidecar++;
    else if (!deviceOk(pod, policy)) noDevice++;
  }
  const conds: ConditionInput[] = [];
  const winners = [...res.conflictsWith].map((k) => splitKey(k).name).sort();
  conds.push(
    winners.length > 0
      ? {
          type: ConditionType.Conflicted,
          status: 'True',
          reason: 'OverlapsOlderPolicy',
          message: `${res.shadowed} selected pod(s) are governed by older SmcPolicy ${winners.join(', ')}`,
        }
      : {
          type: ConditionType.Conflicted,
          status: 'False',
          reason: 'NoOverlap',
          message: 'no older SmcPolicy selects the same pods',
        },
  );
  if (policy.spec.mode === 'Disabled') {
    conds.push({
      type: ConditionType.Ready,
      status: 'True',
      reason: 'Disabled',
      message: 'mode is Disabled: matched pods are neither injected nor published',
    });
    conds.push({
      type: ConditionType.Degraded,
      status: 'False',
      reason: 'Disabled',
      message: 'mode is Disabled',
    });
  } else if (admission && !admission.admitted) {
    conds.push({
      type: ConditionType.Ready,
      status: 'False',
      reason: admission.reason,
      message: admission.message,
    });
    conds.push({
      type: ConditionType.Degraded,
      status: 'True',
      reason: admission.reason,
      message: `no pod of this policy is published in the directory: ${admission.message}`,
    });
  } else {
    conds.push(
      ready === matched
        ? {
            type: ConditionType.Ready,
            status: 'True',
            reason: matched === 0 ? 'NoPodsMatched' : 'AllSidecarsReady',
            message: matched === 0 ? 'no pod is governed by this policy' : `${ready}/${matched} pods ready`,
          }
        : {
            type: ConditionType.Ready,
            status: 'False',
            reason: 'SidecarsNotReady',
            message: `${ready}/${matched} pods have a running, ready smc-sidecar`,
          },
    );
    const sidecarProblem = policy.spec.mode === 'Require' && missingSidecar > 0;
    if (sidecarProblem || noDevice > 0) {
      const parts: string[] = [];
      if (sidecarProblem) parts.push(`${missingSidecar} pod(s) run without the smc-sidecar`);
      if (noDevice > 0) parts.push(`${noDevice} pod(s) are on nodes without an allowed RDMA device`);
      conds.push({
        type: ConditionType.Degraded,
        status: 'True',
        reason: sidecarProblem ? 'SidecarMissing' : 'NoMatchingDevice',
        message: parts.join('; '),
      });
    } else {
      conds.push({
        type: ConditionType.Degraded,
        status: 'False',
        reason: 'AsExpected',
        message: 'every matched pod can use SMC-R',
      });
    }
  }
  if (admission) {
    conds.push({
      type: ConditionType.TenantAdmitted,
      status: admission.admitted ? 'True' : 'False',
      reason: admission.reason,
      message: admission.message,
    });
  }
  return {
    observedGeneration: generation,
    matchedPods: matched,
    readyPods: ready,
    conflictingPolicies: winners,
    conditions: mergeConditions(policy.status?.conditions ?? [], conds, generation, now),
  };
}

/** New conditions in a stable order, keeping lastTransitionTime where the status did not change. */
export function mergeConditions(
  old: readonly Condition[],
  next: readonly ConditionInput[],
  generation: number | undefined,
  now: Date,
): Condition[] {
  const ts = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return next.map((c) => {
    const prev = old.find((o) => o.type === c.type);
    const lastTransitionTime = prev && prev.status === c.status ? prev.lastTransitionTime : ts;
    const out: Condition = { ...c, lastTransitionTime };
    if (generation !== undefined) out.observedGeneration = generation;
    return out;
  });
}

/** Equality ignoring lastTransitionTime (so an unchanged status is never written). */
export function statusEqual(a: SmcPolicyStatus | null | undefined, b: SmcPolicyStatus): boolean {
  if (!a) return false;
  if (a.observedGeneration !== b.observedGeneration) return false;
  if ((a.matchedPods ?? 0) !== b.matchedPods || (a.readyPods ?? 0) !== b.readyPods) return false;
  const ca = a.conflictingPolicies ?? [];
  const cb = b.conflictingPolicies ?? [];
  if (ca.length !== cb.length || ca.some((x, i) => x !== cb[i])) return false;
  const ka = a.conditions ?? [];
  const kb = b.conditions ?? [];
  if (ka.length !== kb.length) return false;
  return ka.every((x, i) => {
    const y = kb[i];
    return (
      !!y &&
      x.type === y.type &&
      x.status === y.status &&
      x.reason === y.reason &&
      x.message === y.message &&
      x.observedGeneration === y.observedGeneration
    );
  });
}

export interface ConditionChange {
  readonly type: string;
  readonly status: Condition['status'];
  readonly reason: string;
  readonly message: string;
  /** Warning for bad news (Ready=False, TenantAdmitted=False, Conflicted=True, Degraded=True), Normal otherwise. */
  readonly eventType: 'Normal' | 'Warning';
}

/** Conditions whose status differs from before (a new condition counts when it is bad news). */
export function conditionChanges(
  old: readonly Condition[] | null | undefined,
  next: readonly Condition[],
): ConditionChange[] {
  const out: ConditionChange[] = [];
  for (const c of next) {
    const prev = (old ?? []).find((o) => o.type === c.type);
    const goodWhenTrue = c.type === ConditionType.Ready || c.type === ConditionType.TenantAdmitted;
    const bad = goodWhenTrue ? c.status === 'False' : c.status === 'True';
    if (prev ? prev.status !== c.status : bad) {
      out.push({
        type: c.type,
        status: c.status,
        reason: c.reason,
        message: c.message,
        eventType: bad ? 'Warning' : 'Normal',
      });
    }
  }
  return out;
}
