import type { Pod } from '../api/core.js';

export const SIDECAR_CONTAINER = 'smc-sidecar';
export const INIT_CONTAINER = 'smc-init';
/** Keeps the redirect sets of `interception.redirect: peers` (NET_ADMIN, nothing else). */
export const REDIRECT_CONTAINER = 'smc-redirect';
/** The name of the sidecar's container port that peers' sidecars connect to. */
export const SMC_PORT_NAME = 'smc-clc';

type PodContainer = Pod['spec']['containers'][number];

/**
 * The injected sidecar container: among the containers (plain-container mode) or the init
 * containers (native sidecar, restartPolicy: Always).
 */
export function sidecarContainer(pod: Pod): PodContainer | undefined {
  return (
    pod.spec.containers.find((c) => c.name === SIDECAR_CONTAINER) ??
    (pod.spec.initContainers ?? []).find((c) => c.name === SIDECAR_CONTAINER)
  );
}

/** The pod carries the injected sidecar container. */
export function podInjected(pod: Pod): boolean {
  return sidecarContainer(pod) !== undefined;
}

/** The sidecar container is running and ready (a native sidecar reports in initContainerStatuses). */
export function sidecarReady(pod: Pod): boolean {
  const cs =
    pod.status?.containerStatuses?.find((c) => c.name === SIDECAR_CONTAINER) ??
    pod.status?.initContainerStatuses?.find((c) => c.name === SIDECAR_CONTAINER);
  return !!cs && cs.ready && !!cs.state?.running;
}

/**
 * The port the pod's sidecar serves SMC on: its `smc-clc` container port, so pods injected before
 * the port was reconfigured keep being reached on theirs; `fallback` when the pod does not say.
 */
export function sidecarSmcPort(pod: Pod, fallback: number): number {
  return sidecarContainer(pod)?.ports?.find((p) => p.name === SMC_PORT_NAME)?.containerPort ?? fallback;
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
