/**
 * Kubernetes service discovery as Prometheus' `kubernetes_sd_configs` (roles `pod` and
 * `endpoints`) computes it, as pure functions from API objects to target groups with the same
 * `__meta_kubernetes_*` labels. Debian's prometheus package is built without the Kubernetes SD
 * (its client library is not packaged), so the test serves these groups over `http_sd_configs`
 * and the Prometheus Operator's relabelings apply to them unchanged.
 */
import type { V1Endpoints, V1ObjectMeta, V1Pod, V1Service } from '@kubernetes/client-node';

/** One entry of an HTTP SD response (https://prometheus.io/docs/prometheus/latest/http_sd/). */
export interface TargetGroup {
  readonly targets: string[];
  readonly labels: Record<string, string>;
}

export type KubeSdRole = 'pod' | 'endpoints';

/**
 * Path and query of the SD endpoint for a role; `namespaces` undefined means every namespace
 * (kubernetes_sd_configs without `namespaces`).
 */
export function sdPath(role: KubeSdRole, namespaces?: readonly string[]): string {
  const query = (namespaces ?? []).map((ns) => `namespace=${encodeURIComponent(ns)}`).join('&');
  return `/sd/${role}${query === '' ? '' : `?${query}`}`;
}

/** Prometheus' strutil.SanitizeLabelName: every character outside [a-zA-Z0-9_] becomes `_`. */
export function sanitizeLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

function addressWithPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** `<prefix>_label_<name>`, `<prefix>_labelpresent_<name>` and the same for annotations. */
function objectMetaLabels(prefix: string, meta: V1ObjectMeta | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta?.labels ?? {})) {
    out[`${prefix}_label_${sanitizeLabelName(k)}`] = v;
    out[`${prefix}_labelpresent_${sanitizeLabelName(k)}`] = 'true';
  }
  for (const [k, v] of Object.entries(meta?.annotations ?? {})) {
    out[`${prefix}_annotation_${sanitizeLabelName(k)}`] = v;
    out[`${prefix}_annotationpresent_${sanitizeLabelName(k)}`] = 'true';
  }
  return out;
}

function podReady(pod: V1Pod): string {
  const cond = (pod.status?.conditions ?? []).find((c) => c.type === 'Ready');
  return cond === undefined ? 'unknown' : cond.status.toLowerCase();
}

/** Pod-level meta labels (discovery/kubernetes/pod.go podLabels). */
function podLabels(pod: V1Pod): Record<string, string> {
  const meta = pod.metadata;
  const out: Record<string, string> = {
    __meta_kubernetes_pod_name: meta?.name ?? '',
    __meta_kubernetes_pod_ip: pod.status?.podIP ?? '',
    __meta_kubernetes_pod_ready: podReady(pod),
    __meta_kubernetes_pod_phase: pod.status?.phase ?? '',
    __meta_kubernetes_pod_node_name: pod.spec?.nodeName ?? '',
    __meta_kubernetes_pod_host_ip: pod.status?.hostIP ?? '',
    __meta_kubernetes_pod_uid: meta?.uid ?? '',
    ...objectMetaLabels('__meta_kubernetes_pod', meta),
  };
  const controller = (meta?.ownerReferences ?? []).find((o) => o.controller === true);
  if (controller !== undefined) {
    out['__meta_kubernetes_pod_controller_kind'] = controller.kind;
    out['__meta_kubernetes_pod_controller_name'] = controller.name;
  }
  return out;
}

function containerId(pod: V1Pod, name: string, init: boolean): string {
  const statuses = init ? pod.status?.initContainerStatuses : pod.status?.containerStatuses;
  return (statuses ?? []).find((s) => s.name === name)?.containerID ?? '';
}

/**
 * Role `pod`: one target per container port (address podIP:port), or one per container
 * without ports (address podIP). Pods without an IP yet yield nothing.
 */
export function podTargetGroups(pod: V1Pod): TargetGroup[] {
  const ip = pod.status?.podIP;
  if (ip === undefined || ip === '') return [];
  const base: Record<string, string> = {
    __meta_kubernetes_namespace: pod.metadata?.namespace ?? '',
    ...podLabels(pod),
  };
  const groups: TargetGroup[] = [];
  const containers = [
    ...(pod.spec?.containers ?? []).map((c) => ({ c, init: false })),
    ...(pod.spec?.initContainers ?? []).map((c) => ({ c, init: true })),
  ];
  for (const { c, init } of containers) {
    const containerLabels: Record<string, string> = {
      __meta_kubernetes_pod_container_name: c.name,
      __meta_kubernetes_pod_container_image: c.image ?? '',
      __meta_kubernetes_pod_container_init: String(init),
      __meta_kubernetes_pod_container_id: containerId(pod, c.name, init),
    };
    const ports = c.ports ?? [];
    if (ports.length === 0) {
      groups.push({ targets: [ip], labels: { ...base, ...containerLabels } });
      continue;
    }
    for (const p of ports) {
      groups.push({
        targets: [addressWithPort(ip, p.containerPort)],
        labels: {
          ...base,
          ...containerLabels,
          __meta_kubernetes_pod_container_port_name: p.name ?? '',
          __meta_kubernetes_pod_container_port_number: String(p.containerPort),
          __meta_kubernetes_pod_container_port_protocol: p.protocol ?? 'TCP',
        },
      });
    }
  }
  return groups;
}

/**
 * Role `endpoints`: one target per address and port of every subset (ready and not ready), with
 * the Endpoints', its Service's and, for addresses backed by a pod, the pod's meta labels (the
 * container is the one exposing the endpoint's port). `pods` is looked up by namespace/name.
 */
export function endpointsTargetGroups(
  endpoints: V1Endpoints,
  service: V1Service | undefined,
  pods: ReadonlyMap<string, V1Pod>,
): TargetGroup[] {
  const ns = endpoints.metadata?.namespace ?? '';
  const base: Record<string, string> = {
    __meta_kubernetes_namespace: ns,
    __meta_kubernetes_endpoints_name: endpoints.metadata?.name ?? '',
    ...objectMetaLabels('__meta_kubernetes_endpoints', endpoints.metadata),
  };
  if (service !== undefined) {
    Object.assign(base, {
      __meta_kubernetes_service_name: service.metadata?.name ?? '',
      ...objectMetaLabels('__meta_kubernetes_service', service.metadata),
    });
    if (service.spec?.clusterIP !== undefined && service.spec.clusterIP !== 'None') {
      base['__meta_kubernetes_service_cluster_ip'] = service.spec.clusterIP;
    }
    base['__meta_kubernetes_service_type'] = service.spec?.type ?? 'ClusterIP';
  }
  const groups: TargetGroup[] = [];
  for (const subset of endpoints.subsets ?? []) {
    const addresses = [
      ...(subset.addresses ?? []).map((a) => ({ a, ready: true })),
      ...(subset.notReadyAddresses ?? []).map((a) => ({ a, ready: false })),
    ];
    for (const { a, ready } of addresses) {
      for (const port of subset.ports ?? []) {
        const labels: Record<string, string> = {
          ...base,
          __meta_kubernetes_endpoint_ready: String(ready),
          __meta_kubernetes_endpoint_port_name: port.name ?? '',
          __meta_kubernetes_endpoint_port_protocol: port.protocol ?? 'TCP',
        };
        if (a.hostname !== undefined) labels['__meta_kubernetes_endpoint_hostname'] = a.hostname;
        if (a.nodeName !== undefined) labels['__meta_kubernetes_endpoint_node_name'] = a.nodeName;
        const ref = a.targetRef;
        if (ref !== undefined) {
          labels['__meta_kubernetes_endpoint_address_target_kind'] = ref.kind ?? '';
          labels['__meta_kubernetes_endpoint_address_target_name'] = ref.name ?? '';
        }
        const pod = ref?.kind === 'Pod' ? pods.get(`${ref.namespace ?? ns}/${ref.name ?? ''}`) : undefined;
        if (pod !== undefined) {
          Object.assign(labels, podLabels(pod));
          const container = (pod.spec?.containers ?? []).find((c) =>
            (c.ports ?? []).some((p) => p.containerPort === port.port),
          );
          const containerPort = container?.ports?.find((p) => p.containerPort === port.port);
          if (container !== undefined && containerPort !== undefined) {
            Object.assign(labels, {
              __meta_kubernetes_pod_container_name: container.name,
              __meta_kubernetes_pod_container_image: container.image ?? '',
              __meta_kubernetes_pod_container_port_name: containerPort.name ?? '',
              __meta_kubernetes_pod_container_port_number: String(containerPort.containerPort),
              __meta_kubernetes_pod_container_port_protocol: containerPort.protocol ?? 'TCP',
            });
          }
        }
        groups.push({ targets: [addressWithPort(a.ip, port.port)], labels });
      }
    }
  }
  return groups;
}
