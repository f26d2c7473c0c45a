import type { Pod } from '../api/core.js';

export const SIDECAR_CONTAINER = 'smc-sidecar';
export const INIT_CONTAINER = 'smc-init';

/** The pod carries the injected sidecar container. */
export function podInjected(pod: Pod): boolean {
  return pod.spec.containers.some((c) => c.name === SIDECAR_CONTAINER);
}

/** The sidecar container is running and ready. */
export function sidecarReady(pod: Pod): boolean {
  const cs = pod.status?.containerStatuses?.find((c) => c.name === SIDECAR_CONTAINER);
  return !!cs && cs.ready && !!cs.state?.running;
}

export function podTerminating(pod: Pod): boolean {
  return !!pod.metadata.deletionTimestamp;
}

/** A pod that counts for policies: not being deleted and not finished. */
export function podLive(pod: Pod): boolean {
  if (pod.metadata.deletionTimestamp) return false;
  const phase = pod.status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed';
}
