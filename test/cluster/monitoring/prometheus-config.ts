/**
 * prometheus.yml for the cluster tests, generated from the chart's ServiceMonitor and PodMonitor
 * the way the Prometheus Operator generates it (pkg/prometheus/promcfg.go:
 * generateServiceMonitorConfig / generatePodMonitorConfig, relabel selector mechanism, one
 * shard), so the series carry the labels the dashboard filters on (namespace, pod, container,
 * job, endpoint, service, the pod labels of podTargetLabels, and what the endpoints' own
 * relabelings add).
 *
 * Discovery is either `kubernetes_sd_configs` with a kubeconfig (upstream Prometheus), or
 * `http_sd_configs` against kube-sd.ts, which serves the same meta labels for Debian's
 * Prometheus, built without the Kubernetes SD.
 */
import type {
  LabelSelector,
  MonitorEndpoint,
  Monitors,
  NamespaceSelector,
  PodMonitor,
  Relabeling,
  ServiceMonitor,
} from './chart.js';
import { sanitizeLabelName, sdPath, type KubeSdRole } from './kube-sd-targets.js';

export type Discovery =
  /** kube-sd.ts at `baseUrl`, polled every `refreshInterval` (default: the scrape interval). */
  | { readonly kind: 'http'; readonly baseUrl: string; readonly refreshInterval?: string }
  /** Prometheus' own Kubernetes SD; needs a Prometheus built with it (not Debian's). */
  | { readonly kind: 'kubernetes'; readonly kubeconfigFile: string };

export interface ConfigOptions {
  readonly discovery: Discovery;
  /** Replaces the monitors' interval (the chart's 30s is slow for a test); default 5s. */
  readonly scrapeInterval?: string;
  /** Replaces the monitors' scrapeTimeout; default: the monitor's, capped at the interval. */
  readonly scrapeTimeout?: string;
}

export const DEFAULT_SCRAPE_INTERVAL = '5s';

export interface RelabelConfig {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  target_label?: string;
  replacement?: string;
  action?: 'replace' | 'keep' | 'drop' | 'labelmap' | 'labeldrop' | 'labelkeep';
}

type SdConfigs =
  | {
      kubernetes_sd_configs: {
        role: KubeSdRole;
        kubeconfig_file: string;
        namespaces?: { names: string[] };
      }[];
    }
  | { http_sd_configs: { url: string; refresh_interval: string }[] };

export type ScrapeConfig = {
  job_name: string;
  honor_labels: boolean;
  scrape_interval: string;
  scrape_timeout: string;
  metrics_path: string;
  scheme: string;
  relabel_configs: RelabelConfig[];
} & SdConfigs;

export interface PrometheusConfig {
  global: { scrape_interval: string; scrape_timeout: string; evaluation_interval: string };
  scrape_configs: ScrapeConfig[];
}

/** Go durations as Prometheus accepts them (1h30m, 5s, 250ms) to milliseconds. */
export function durationMs(d: string): number {
  const re = /(\d+)(ms|y|w|d|h|m|s)/g;
  const unit: Record<string, number> = {
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
    d: 86_400_000,
    w: 604_800_000,
    y: 31_536_000_000,
  };
  let total = 0;
  let consumed = 0;
  for (const m of d.matchAll(re)) {
    total += Number(m[1]) * (unit[m[2] ?? ''] ?? 0);
    consumed += m[0].length;
  }
  if (consumed === 0 || consumed !== d.length) throw new RangeError(`not a Prometheus duration: ${d}`);
  return total;
}

/** The namespaces SD watches: matchNames, every namespace (any), or the monitor's own. */
function sdNamespaces(sel: NamespaceSelector | undefined, own: string): string[] | undefined {
  if (sel?.any === true) return undefined;
  if (sel?.matchNames !== undefined && sel.matchNames.length > 0) return sel.matchNames;
  return [own];
}

function sdConfigs(
  role: KubeSdRole,
  namespaces: string[] | undefined,
  opts: ConfigOptions,
  interval: string,
): SdConfigs {
  const d = opts.discovery;
  if (d.kind === 'kubernetes') {
    return {
      kubernetes_sd_configs: [
        {
          role,
          kubeconfig_file: d.kubeconfigFile,
          ...(namespaces === undefined ? {} : { namespaces: { names: namespaces } }),
        },
      ],
    };
  }
  return {
    http_sd_configs: [
      {
        url: d.baseUrl.replace(/\/$/, '') + sdPath(role, namespaces),
        refresh_interval: d.refreshInterval ?? interval,
      },
    ],
  };
}

/** Label selector → keep/drop rules on `<prefix>_label_*` (Prometheus Operator's relabel mechanism). */
function selectorRelabelings(sel: LabelSelector, prefix: string): RelabelConfig[] {
  const out: RelabelConfig[] = [];
  const label = (k: string): string => `${prefix}_label_${sanitizeLabelName(k)}`;
  const present = (k: string): string => `${prefix}_labelpresent_${sanitizeLabelName(k)}`;
  for (const k of Object.keys(sel.matchLabels ?? {}).sort()) {
    out.push({
      action: 'keep',
      source_labels: [label(k), present(k)],
      regex: `(${sel.matchLabels?.[k] ?? ''});true`,
    });
  }
  for (const exp of sel.matchExpressions ?? []) {
    const values = `(${(exp.values ?? []).join('|')});true`;
    switch (exp.operator) {
      case 'In':
        out.push({ action: 'keep', source_labels: [label(exp.key), present(exp.key)], regex: values });
        break;
      case 'NotIn':
        out.push({ action: 'drop', source_labels: [label(exp.key), present(exp.key)], regex: values });
        break;
      case 'Exists':
        out.push({ action: 'keep', source_labels: [present(exp.key)], regex: 'true' });
        break;
      case 'DoesNotExist':
        out.push({ action: 'drop', source_labels: [present(exp.key)], regex: 'true' });
        break;
    }
  }
  return out;
}

/**
 * targetLabels / podTargetLabels: each `<prefix>_label_<name>` that is set becomes the series
 * label <name>, sanitized (`smc.dev/tenant` -> `smc_dev_tenant`).
 */
function targetLabelRelabelings(labels: readonly string[] | undefined, prefix: string): RelabelConfig[] {
  return (labels ?? []).map((l) => ({
    source_labels: [`${prefix}_label_${sanitizeLabelName(l)}`],
    target_label: sanitizeLabelName(l),
    regex: '(.+)',
    replacement: '${1}',
  }));
}

/** An endpoint's own `relabelings`, in the Prometheus configuration's spelling, after the generated ones. */
function endpointRelabelings(ep: MonitorEndpoint): RelabelConfig[] {
  return (ep.relabelings ?? []).map((r: Relabeling) => {
    const out: RelabelConfig = {};
    if (r.sourceLabels !== undefined) out.source_labels = r.sourceLabels;
    if (r.separator !== undefined) out.separator = r.separator;
    if (r.targetLabel !== undefined) out.target_label = r.targetLabel;
    if (r.regex !== undefined) out.regex = r.regex;
    if (r.replacement !== undefined) out.replacement = r.replacement;
    if (r.action !== undefined) out.action = r.action.toLowerCase() as NonNullable<RelabelConfig['action']>;
    return out;
  });
}

const runningFilter: RelabelConfig = {
  action: 'drop',
  source_labels: ['__meta_kubernetes_pod_phase'],
  regex: '(Failed|Succeeded)',
};

function timing(
  ep: MonitorEndpoint,
  opts: ConfigOptions,
): { scrape_interval: string; scrape_timeout: string } {
  const interval = opts.scrapeInterval ?? DEFAULT_SCRAPE_INTERVAL;
  if (opts.scrapeTimeout !== undefined)
    return { scrape_interval: interval, scrape_timeout: opts.scrapeTimeout };
  // Prometheus rejects a timeout longer than the interval.
  const own = ep.scrapeTimeout;
  const timeout = own !== undefined && durationMs(own) <= durationMs(interval) ? own : interval;
  return { scrape_interval: interval, scrape_timeout: timeout };
}

/** One scrape job per ServiceMonitor endpoint (job_name serviceMonitor/<ns>/<name>/<i>). */
export function serviceMonitorScrapeConfigs(sm: ServiceMonitor, opts: ConfigOptions): ScrapeConfig[] {
  const ns = sdNamespaces(sm.spec.namespaceSelector, sm.metadata.namespace);
  return sm.spec.endpoints.map((ep, i) => {
    const t = timing(ep, opts);
    const target = [
      '__meta_kubernetes_endpoint_address_target_kind',
      '__meta_kubernetes_endpoint_address_target_name',
    ];
    const relabel: RelabelConfig[] = [
      { source_labels: ['job'], target_label: '__tmp_prometheus_job_name' },
      ...selectorRelabelings(sm.spec.selector, '__meta_kubernetes_service'),
      ...(ep.port !== undefined
        ? [
            {
              action: 'keep' as const,
              source_labels: ['__meta_kubernetes_endpoint_port_name'],
              regex: ep.port,
            },
          ]
        : []),
      {
        source_labels: target,
        separator: ';',
        regex: 'Node;(.*)',
        replacement: '${1}',
        target_label: 'node',
      },
      { source_labels: target, separator: ';', regex: 'Pod;(.*)', replacement: '${1}', target_label: 'pod' },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      runningFilter,
      ...targetLabelRelabelings(sm.spec.targetLabels, '__meta_kubernetes_service'),
      ...targetLabelRelabelings(sm.spec.podTargetLabels, '__meta_kubernetes_pod'),
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'job', replacement: '${1}' },
      ...(sm.spec.jobLabel !== undefined && sm.spec.jobLabel !== ''
        ? [
            {
              source_labels: [`__meta_kubernetes_service_label_${sanitizeLabelName(sm.spec.jobLabel)}`],
              target_label: 'job',
              regex: '(.+)',
              replacement: '${1}',
            },
          ]
        : []),
      ...(ep.port !== undefined ? [{ target_label: 'endpoint', replacement: ep.port }] : []),
      ...endpointRelabelings(ep),
    ];
    return {
      job_name: `serviceMonitor/${sm.metadata.namespace}/${sm.metadata.name}/${i}`,
      honor_labels: false,
      ...sdConfigs('endpoints', ns, opts, t.scrape_interval),
      ...t,
      metrics_path: ep.path ?? '/metrics',
      scheme: ep.scheme ?? 'http',
      relabel_configs: relabel,
    };
  });
}

/** One scrape job per PodMonitor endpoint (job_name podMonitor/<ns>/<name>/<i>). */
export function podMonitorScrapeConfigs(pm: PodMonitor, opts: ConfigOptions): ScrapeConfig[] {
  const ns = sdNamespaces(pm.spec.namespaceSelector, pm.metadata.namespace);
  return pm.spec.podMetricsEndpoints.map((ep, i) => {
    const t = timing(ep, opts);
    const relabel: RelabelConfig[] = [
      { source_labels: ['job'], target_label: '__tmp_prometheus_job_name' },
      runningFilter,
      ...selectorRelabelings(pm.spec.selector, '__meta_kubernetes_pod'),
      ...(ep.port !== undefined
        ? [
            {
              action: 'keep' as const,
              source_labels: ['__meta_kubernetes_pod_container_port_name'],
              regex: ep.port,
            },
          ]
        : []),
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      ...targetLabelRelabelings(pm.spec.podTargetLabels, '__meta_kubernetes_pod'),
      { target_label: 'job', replacement: `${pm.metadata.namespace}/${pm.metadata.name}` },
      ...(pm.spec.jobLabel !== undefined && pm.spec.jobLabel !== ''
        ? [
            {
              source_labels: [`__meta_kubernetes_pod_label_${sanitizeLabelName(pm.spec.jobLabel)}`],
              target_label: 'job',
              regex: '(.+)',
              replacement: '${1}',
            },
          ]
        : []),
      ...(ep.port !== undefined ? [{ target_label: 'endpoint', replacement: ep.port }] : []),
      ...endpointRelabelings(ep),
    ];
    return {
      job_name: `podMonitor/${pm.metadata.namespace}/${pm.metadata.name}/${i}`,
      honor_labels: false,
      ...sdConfigs('pod', ns, opts, t.scrape_interval),
      ...t,
      metrics_path: ep.path ?? '/metrics',
      scheme: ep.scheme ?? 'http',
      relabel_configs: relabel,
    };
  });
}

export function prometheusConfig(monitors: Monitors, opts: ConfigOptions): PrometheusConfig {
  const interval = opts.scrapeInterval ?? DEFAULT_SCRAPE_INTERVAL;
  return {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: [
      ...monitors.serviceMonitors.flatMap((sm) => serviceMonitorScrapeConfigs(sm, opts)),
      ...monitors.podMonitors.flatMap((pm) => podMonitorScrapeConfigs(pm, opts)),
    ],
  };
}

/**
 * The configuration as prometheus.yml text. JSON is valid YAML, and writing it needs no YAML
 * emitter (none is a dependency of the project); the quoting of `${1}` and regexes stays exact.
 */
export function prometheusConfigText(monitors: Monitors, opts: ConfigOptions): string {
  return `# Generated from the smc-operator chart's ServiceMonitor/PodMonitor.\n${JSON.stringify(
    prometheusConfig(monitors, opts),
    null,
    2,
  )}\n`;
}

/** A configuration scraping fixed addresses (for checking the Prometheus wrapper itself). */
export function staticConfigText(
  jobs: readonly { job: string; targets: string[]; labels?: Record<string, string> }[],
  scrapeInterval = DEFAULT_SCRAPE_INTERVAL,
): string {
  const config = {
    global: {
      scrape_interval: scrapeInterval,
      scrape_timeout: scrapeInterval,
      evaluation_interval: scrapeInterval,
    },
    scrape_configs: jobs.map((j) => ({
      job_name: j.job,
      static_configs: [{ targets: j.targets, labels: j.labels ?? {} }],
    })),
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}
