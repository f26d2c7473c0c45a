// The meta labels of the emulated Kubernetes SD, for the fields the relabelings read.
import type { V1Endpoints, V1Pod, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { endpointsTargetGroups, podTargetGroups, sanitizeLabelName, sdPath } from './kube-sd-targets.js';

const pod: V1Pod = {
  metadata: {
    name: 'web-1',
    namespace: 'demo',
    uid: 'u1',
    labels: { app: 'web', 'smc.dev/inject': 'true' },
    ownerReferences: [
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc', uid: 'r', controller: true },
    ],
  },
  spec: {
    nodeName: 'node1',
    containers: [
      { name: 'app', image: 'nginx', ports: [{ name: 'http', containerPort: 80 }] },
      { name: 'smc-sidecar', image: 'smc', ports: [{ name: 'smc-metrics', containerPort: 15090 }] },
      { name: 'noports', image: 'busybox' },
    ],
  },
  status: {
    phase: 'Running',
    podIP: '10.244.1.7',
    hostIP: '192.168.1.2',
    conditions: [{ type: 'Ready', status: 'True' }],
  },
};

describe('podTargetGroups', () => {
  it('gives one target per container port and one per portless container', () => {
    const groups = podTargetGroups(pod);
    expect(groups.map((g) => g.targets[0])).toEqual(['10.244.1.7:80', '10.244.1.7:15090', '10.244.1.7']);
    const sidecar = groups[1]?.labels ?? {};
    expect(sidecar).toMatchObject({
      __meta_kubernetes_namespace: 'demo',
      __meta_kubernetes_pod_name: 'web-1',
      __meta_kubernetes_pod_container_name: 'smc-sidecar',
      __meta_kubernetes_pod_container_port_name: 'smc-metrics',
      __meta_kubernetes_pod_container_port_number: '15090',
      __meta_kubernetes_pod_phase: 'Running',
      __meta_kubernetes_pod_ready: 'true',
      __meta_kubernetes_pod_label_smc_dev_inject: 'true',
      __meta_kubernetes_pod_labelpresent_smc_dev_inject: 'true',
      __meta_kubernetes_pod_controller_kind: 'ReplicaSet',
      __meta_kubernetes_pod_node_name: 'node1',
    });
    expect(groups[2]?.labels['__meta_kubernetes_pod_container_port_name']).toBeUndefined();
  });

  it('skips pods without an IP', () => {
    expect(podTargetGroups({ ...pod, status: { phase: 'Pending' } })).toEqual([]);
  });
});

describe('endpointsTargetGroups', () => {
  const operatorPod: V1Pod = {
    metadata: { name: 'smc-operator-0', namespace: 'smc-system' },
    spec: {
      containers: [{ name: 'operator', image: 'x', ports: [{ name: 'metrics', containerPort: 8080 }] }],
    },
    status: { phase: 'Running', podIP: '10.244.0.5' },
  };
  const service: V1Service = {
    metadata: {
      name: 'smc-operator-metrics',
      namespace: 'smc-system',
      labels: { 'app.kubernetes.io/component': 'operator', 'smc.dev/metrics': 'operator' },
    },
    spec: { clusterIP: '10.96.0.10', type: 'ClusterIP' },
  };
  const endpoints: V1Endpoints = {
    metadata: { name: 'smc-operator-metrics', namespace: 'smc-system' },
    subsets: [
      {
        addresses: [
          { ip: '10.244.0.5', nodeName: 'node0', targetRef: { kind: 'Pod', name: 'smc-operator-0' } },
        ],
        notReadyAddresses: [{ ip: '10.244.1.5', targetRef: { kind: 'Pod', name: 'gone' } }],
        ports: [{ name: 'metrics', port: 8080, protocol: 'TCP' }],
      },
    ],
  };

  it('carries the service, endpoint and pod labels the ServiceMonitor relabelings read', () => {
    const pods = new Map([['smc-system/smc-operator-0', operatorPod]]);
    const groups = endpointsTargetGroups(endpoints, service, pods);
    expect(groups.map((g) => g.targets[0])).toEqual(['10.244.0.5:8080', '10.244.1.5:8080']);
    expect(groups[0]?.labels).toMatchObject({
      __meta_kubernetes_namespace: 'smc-system',
      __meta_kubernetes_service_name: 'smc-operator-metrics',
      __meta_kubernetes_service_label_smc_dev_metrics: 'operator',
      __meta_kubernetes_service_labelpresent_smc_dev_metrics: 'true',
      __meta_kubernetes_service_label_app_kubernetes_io_component: 'operator',
      __meta_kubernetes_endpoint_port_name: 'metrics',
      __meta_kubernetes_endpoint_ready: 'true',
      __meta_kubernetes_endpoint_address_target_kind: 'Pod',
      __meta_kubernetes_endpoint_address_target_name: 'smc-operator-0',
      __meta_kubernetes_pod_name: 'smc-operator-0',
      __meta_kubernetes_pod_container_name: 'operator',
      __meta_kubernetes_pod_phase: 'Running',
    });
    expect(groups[1]?.labels['__meta_kubernetes_endpoint_ready']).toBe('false');
    expect(groups[1]?.labels['__meta_kubernetes_pod_name']).toBeUndefined();
  });
});

describe('sanitizeLabelName and sdPath', () => {
  it('sanitizes label names and builds SD paths', () => {
    expect(sanitizeLabelName('app.kubernetes.io/component')).toBe('app_kubernetes_io_component');
    expect(sdPath('pod')).toBe('/sd/pod');
    expect(sdPath('endpoints', ['a', 'b'])).toBe('/sd/endpoints?namespace=a&namespace=b');
  });
});
