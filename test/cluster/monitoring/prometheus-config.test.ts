// Scrape jobs generated from ServiceMonitor/PodMonitor objects, compared with what the
// Prometheus Operator generates for them. The same generation from the rendered chart (helm) is
// checked in prometheus.host.test.ts.
import { describe, expect, it } from 'vitest';
import { monitorsOf, parseManifests } from './chart.js';
import {
  durationMs,
  podMonitorScrapeConfigs,
  prometheusConfig,
  prometheusConfigText,
  serviceMonitorScrapeConfigs,
  type ConfigOptions,
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
    - {port: metrics, path: /metrics, interval: 30s, scrapeTimeout: 10s}
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
  podMetricsEndpoints:
    - {port: smc-metrics, path: /metrics, interval: 30s, scrapeTimeout: 10s}
`;

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
    ]);
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
      { target_label: 'job', replacement: 'smc-system/smc-operator-sidecars' },
      { target_label: 'endpoint', replacement: 'smc-metrics' },
    ]);
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
