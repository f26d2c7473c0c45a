// Scrape jobs generated from ServiceMonitor/PodMonitor objects, compared with what the
// Prometheus Operator generates for them. The same generation from the rendered chart (helm) is
// checked in prometheus.host.test.ts.
import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { monitorsOf, parseManifests } from './chart.js';
import { endpointsTargetGroups, podTargetGroups } from './kube-sd-targets.js';
import {
  durationMs,
  podMonitorScrapeConfigs,
  prometheusConfig,
  prometheusConfigText,
  serviceMonitorScrapeConfigs,
  type ConfigOptions,
  type RelabelConfig,
} from './prometheus-config.js';

// The shape templates/servicemonitor.yaml renders (release smc-operator in smc-system).
const manifests = `
---
# Source: smc-operator/templates/servicemonitor.yaml
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: smc-operator
  namespace: smc-system
spec:
  jobLabel: app.kubernetes.io/component
  namespaceSelector:
    matchNames: [smc-system]
  selector:
    matchLabels: {app.kubernetes.io/part-of: smc-operator}
    matchExpressions:
      - {key: app.kubernetes.io/instance, operator: In, values: [smc-operator]}
      - {key: smc.dev/metrics, operator: In, values: [operator, node-agent]}
      - {key: smc.dev/skip, operator: NotIn, values: ["yes"]}
      - {key: smc.dev/metrics, operator: Exists}
      - {key: smc.dev/legacy, operator: DoesNotExist}
  endpoints:
    - port: metrics
      path: /metrics
      interval: 30s
      scrapeTimeout: 10s
      relabelings:
        - sourceLabels: [__meta_kubernetes_service_label_smc_dev_metrics, __meta_kubernetes_pod_node_name]
          regex: node-agent;(.+)
          targetLabel: node
          replacement: "\${1}"
          action: replace
---
apiVersion: v1
kind: Service
metadata: {name: smc-operator-metrics, namespace: smc-system}
---
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  name: smc-operator-sidecars
  namespace: smc-system
spec:
  namespaceSelector: {any: true}
  selector: {}
  podTargetLabels: [smc.dev/tenant, smc.dev/policy]
  podMetricsEndpoints:
    - {port: smc-metrics, path: /metrics, interval: 30s, scrapeTimeout: 10s}
`;

/**
 * Prometheus' relabelling (model/relabel) for the actions the generated jobs use: the target's
 * labels after `configs`, without the `__meta_*` / `__tmp_*` ones, or null when it is dropped.
 */
function relabelTarget(
  configs: readonly RelabelConfig[],
  input: Record<string, string>,
): Record<string, string> | null {
  const labels = new Map(Object.entries(input));
  for (const c of configs) {
    const value = (c.source_labels ?? []).map((l) => labels.get(l) ?? '').join(c.separator ?? ';');
    const m = new RegExp(`^(?:${c.regex ?? '(.*)'})$`).exec(value);
    const action = c.action ?? 'replace';
    if (action === 'keep' && m === null) return null;
    if (action === 'drop' && m !== null) return null;
    if (action !== 'replace' || m === null || c.target_label === undefined) continue;
    const out = (c.replacement ?? '$1').replace(
      /\$\{(\d+)\}|\$(\d+)/g,
      (_x, a?: string, b?: string) => m[Number(a ?? b)] ?? '',
    );
    // An empty result removes the label.
    if (out === '') labels.delete(c.target_label);
    else labels.set(c.target_label, out);
  }
  return Object.fromEntries([...labels].filter(([k]) => !k.startsWith('__meta_') && !k.startsWith('__tmp_')));
}

/** Discovery labels of the chart's metrics Service endpoint backed by a pod on `node`. */
function endpointTarget(component: string, pod: string, node: string): Record<string, string> {
  const service = component === 'node-agent' ? 'smc-operator-node-agent-metrics' : 'smc-operator-metrics';
  const pods = new Map<string, V1Pod>([
    [
      `smc-system/${pod}`,
      {
        metadata: { name: pod, namespace: 'smc-system' },
        spec: {
          nodeName: node,
          containers: [{ name: component, ports: [{ name: 'metrics', containerPort: 8080 }] }],
        },
        status: { phase: 'Running', podIP: '10.0.0.1' },
      },
    ],
  ]);
  const [group] = endpointsTargetGroups(
    {
      metadata: { name: service, namespace: 'smc-system' },
      subsets: [
        {
          addresses: [{ ip: '10.0.0.1', targetRef: { kind: 'Pod', name: pod, namespace: 'smc-system' } }],
          ports: [{ name: 'metrics', port: 8080 }],
        },
      ],
    },
    {
      metadata: {
        name: service,
        namespace: 'smc-system',
        labels: {
          'app.kubernetes.io/part-of': 'smc-operator',
          'app.kubernetes.io/instance': 'smc-operator',
          'app.kubernetes.io/component': component,
          'smc.dev/metrics': component,
        },
      },
    },
    pods,
  );
  return { ...group?.labels, __address__: group?.targets[0] ?? '' };
}

const monitors = monitorsOf(parseManifests(manifests));
const [serviceMonitor] = monitors.serviceMonitors;
const [podMonitor] = monitors.podMonitors;
if (serviceMonitor === undefined || podMonitor === undefined) throw new Error('fixture has no monitors');
const http: ConfigOptions = { discovery: { kind: 'http', baseUrl: 'http://127.0.0.1:9999/' } };

describe('monitorsOf', () => {
  it('picks the ServiceMonitor and PodMonitor out of the rendered objects', () => {
    expect(monitors.serviceMonitors.map((m) => m.metadata.name)).toEqual(['smc-operator']);
    expect(monitors.podMonitors.map((m) => m.metadata.name)).toEqual(['smc-operator-sidecars']);
  });
});

describe('serviceMonitorScrapeConfigs', () => {
  const [job] = serviceMonitorScrapeConfigs(serviceMonitor, http);

  it('discovers endpoints in the selected namespaces at the test interval', () => {
    expect(job).toMatchObject({
      job_name: 'serviceMonitor/smc-system/smc-operator/0',
      honor_labels: false,
      http_sd_configs: [
        { url: 'http://127.0.0.1:9999/sd/endpoints?namespace=smc-system', refresh_interval: '5s' },
      ],
      scrape_interval: '5s',
      scrape_timeout: '5s',
      metrics_path: '/metrics',
    });
  });

  it('relabels exactly as the Prometheus Operator does', () => {
    expect(job?.relabel_configs).toEqual([
      { source_labels: ['job'], target_label: '__tmp_prometheus_job_name' },
      {
        action: 'keep',
        source_labels: [
          '__meta_kubernetes_service_label_app_kubernetes_io_part_of',
          '__meta_kubernetes_service_labelpresent_app_kubernetes_io_part_of',
        ],
        regex: '(smc-operator);true',
      },
      {
        action: 'keep',
        source_labels: [
          '__meta_kubernetes_service_label_app_kubernetes_io_instance',
          '__meta_kubernetes_service_labelpresent_app_kubernetes_io_instance',
        ],
        regex: '(smc-operator);true',
      },
      {
        action: 'keep',
        source_labels: [
          '__meta_kubernetes_service_label_smc_dev_metrics',
          '__meta_kubernetes_service_labelpresent_smc_dev_metrics',
        ],
        regex: '(operator|node-agent);true',
      },
      {
        action: 'drop',
        source_labels: [
          '__meta_kubernetes_service_label_smc_dev_skip',
          '__meta_kubernetes_service_labelpresent_smc_dev_skip',
        ],
        regex: '(yes);true',
      },
      {
        action: 'keep',
        source_labels: ['__meta_kubernetes_service_labelpresent_smc_dev_metrics'],
        regex: 'true',
      },
      {
        action: 'drop',
        source_labels: ['__meta_kubernetes_service_labelpresent_smc_dev_legacy'],
        regex: 'true',
      },
      { action: 'keep', source_labels: ['__meta_kubernetes_endpoint_port_name'], regex: 'metrics' },
      {
        source_labels: [
          '__meta_kubernetes_endpoint_address_target_kind',
          '__meta_kubernetes_endpoint_address_target_name',
        ],
        separator: ';',
        regex: 'Node;(.*)',
        replacement: '${1}',
        target_label: 'node',
      },
      {
        source_labels: [
          '__meta_kubernetes_endpoint_address_target_kind',
          '__meta_kubernetes_endpoint_address_target_name',
        ],
        separator: ';',
        regex: 'Pod;(.*)',
        replacement: '${1}',
        target_label: 'pod',
      },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      { action: 'drop', source_labels: ['__meta_kubernetes_pod_phase'], regex: '(Failed|Succeeded)' },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'job', replacement: '${1}' },
      {
        source_labels: ['__meta_kubernetes_service_label_app_kubernetes_io_component'],
        target_label: 'job',
        regex: '(.+)',
        replacement: '${1}',
      },
      { target_label: 'endpoint', replacement: 'metrics' },
      // The endpoint's own relabelings come last.
      {
        source_labels: ['__meta_kubernetes_service_label_smc_dev_metrics', '__meta_kubernetes_pod_node_name'],
        regex: 'node-agent;(.+)',
        target_label: 'node',
        replacement: '${1}',
        action: 'replace',
      },
    ]);
  });

  it('copies targetLabels and podTargetLabels onto the series, after the running filter', () => {
    const [withLabels] = serviceMonitorScrapeConfigs(
      {
        ...serviceMonitor,
        spec: { ...serviceMonitor.spec, targetLabels: ['team'], podTargetLabels: ['app'] },
      },
      http,
    );
    const relabel = withLabels?.relabel_configs ?? [];
    const at = relabel.findIndex((r) => r.target_label === 'team');
    expect(relabel.slice(at - 1, at + 3)).toEqual([
      { action: 'drop', source_labels: ['__meta_kubernetes_pod_phase'], regex: '(Failed|Succeeded)' },
      {
        source_labels: ['__meta_kubernetes_service_label_team'],
        target_label: 'team',
        regex: '(.+)',
        replacement: '${1}',
      },
      {
        source_labels: ['__meta_kubernetes_pod_label_app'],
        target_label: 'app',
        regex: '(.+)',
        replacement: '${1}',
      },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'job', replacement: '${1}' },
    ]);
  });

  it('names the node of a node agent target, not of the operator', () => {
    const agent = endpointTarget('node-agent', 'smc-operator-node-agent-x', 'node1');
    expect(relabelTarget(job?.relabel_configs ?? [], agent)).toMatchObject({
      job: 'node-agent',
      node: 'node1',
      pod: 'smc-operator-node-agent-x',
    });
    const operator = relabelTarget(
      job?.relabel_configs ?? [],
      endpointTarget('operator', 'smc-operator-0', 'node0'),
    );
    expect(operator).toMatchObject({ job: 'operator', pod: 'smc-operator-0' });
    expect(operator).not.toHaveProperty('node');
  });
});

describe('podMonitorScrapeConfigs', () => {
  const [job] = podMonitorScrapeConfigs(podMonitor, http);

  it('discovers pods in every namespace and keeps the smc-metrics port', () => {
    expect(job?.job_name).toBe('podMonitor/smc-system/smc-operator-sidecars/0');
    expect(job).toMatchObject({ http_sd_configs: [{ url: 'http://127.0.0.1:9999/sd/pod' }] });
    expect(job?.relabel_configs).toEqual([
      { source_labels: ['job'], target_label: '__tmp_prometheus_job_name' },
      { action: 'drop', source_labels: ['__meta_kubernetes_pod_phase'], regex: '(Failed|Succeeded)' },
      { action: 'keep', source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: 'smc-metrics' },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      // podTargetLabels, sanitized as the Prometheus Operator does.
      {
        source_labels: ['__meta_kubernetes_pod_label_smc_dev_tenant'],
        target_label: 'smc_dev_tenant',
        regex: '(.+)',
        replacement: '${1}',
      },
      {
        source_labels: ['__meta_kubernetes_pod_label_smc_dev_policy'],
        target_label: 'smc_dev_policy',
        regex: '(.+)',
        replacement: '${1}',
      },
      { target_label: 'job', replacement: 'smc-system/smc-operator-sidecars' },
      { target_label: 'endpoint', replacement: 'smc-metrics' },
    ]);
  });

  it("turns the injected pod's tenant and policy labels, as discovery reports them, into series labels", () => {
    const pod: V1Pod = {
      metadata: {
        name: 'web-1',
        namespace: 'shop',
        labels: { app: 'web', 'smc.dev/tenant': 'blue', 'smc.dev/policy': 'blue-web' },
      },
      spec: {
        containers: [
          { name: 'app', image: 'nginx', ports: [{ name: 'http', containerPort: 8080 }] },
          { name: 'smc-sidecar', image: 'smc', ports: [{ name: 'smc-metrics', containerPort: 15090 }] },
        ],
      },
      status: { phase: 'Running', podIP: '10.244.1.7' },
    };
    // kube-sd-targets.ts (served by kube-sd.ts) gives every target the pod's labels.
    const targets = podTargetGroups(pod).map((g) =>
      relabelTarget(job?.relabel_configs ?? [], {
        ...g.labels,
        __address__: g.targets[0] ?? '',
      }),
    );
    expect(targets.filter((t) => t !== null)).toEqual([
      {
        __address__: '10.244.1.7:15090',
        namespace: 'shop',
        container: 'smc-sidecar',
        pod: 'web-1',
        smc_dev_tenant: 'blue',
        smc_dev_policy: 'blue-web',
        job: 'smc-system/smc-operator-sidecars',
        endpoint: 'smc-metrics',
      },
    ]);
    // A pod injected before the webhook set the labels: no tenant label, not an empty one.
    const old = podTargetGroups({ ...pod, metadata: { ...pod.metadata, labels: { app: 'web' } } })
      .map((g) => relabelTarget(job?.relabel_configs ?? [], { ...g.labels, __address__: g.targets[0] ?? '' }))
      .find((t) => t !== null);
    expect(old).not.toHaveProperty('smc_dev_tenant');
    expect(old).toMatchObject({ pod: 'web-1', job: 'smc-system/smc-operator-sidecars' });
  });
});

describe('prometheusConfig', () => {
  it('uses kubernetes_sd_configs with the kubeconfig when asked to', () => {
    const cfg = prometheusConfig(monitors, {
      discovery: { kind: 'kubernetes', kubeconfigFile: '/tmp/kubeconfig' },
      scrapeInterval: '2s',
    });
    expect(cfg.global.scrape_interval).toBe('2s');
    expect(
      cfg.scrape_configs.map((j) => ('kubernetes_sd_configs' in j ? j.kubernetes_sd_configs : [])),
    ).toEqual([
      [{ role: 'endpoints', kubeconfig_file: '/tmp/kubeconfig', namespaces: { names: ['smc-system'] } }],
      [{ role: 'pod', kubeconfig_file: '/tmp/kubeconfig' }],
    ]);
  });

  it('keeps a monitor timeout shorter than the interval and caps a longer one', () => {
    const [slow] = serviceMonitorScrapeConfigs(serviceMonitor, {
      ...http,
      scrapeInterval: '30s',
    });
    expect(slow?.scrape_timeout).toBe('10s');
    const [fast] = serviceMonitorScrapeConfigs(serviceMonitor, {
      ...http,
      scrapeInterval: '1s',
    });
    expect(fast?.scrape_timeout).toBe('1s');
  });

  it('writes text Prometheus can parse (JSON is YAML)', () => {
    const text = prometheusConfigText(monitors, http);
    expect(text.startsWith('#')).toBe(true);
    const parsed = JSON.parse(text.slice(text.indexOf('\n') + 1)) as { scrape_configs: unknown[] };
    expect(parsed.scrape_configs).toHaveLength(2);
  });
});

describe('durationMs', () => {
  it.each([
    ['5s', 5_000],
    ['1m30s', 90_000],
    ['250ms', 250],
    ['1h', 3_600_000],
  ])('%s', (d, ms) => expect(durationMs(d)).toBe(ms));

  it('rejects garbage', () => {
    expect(() => durationMs('5 s')).toThrow(RangeError);
    expect(() => durationMs('')).toThrow(RangeError);
  });
});
