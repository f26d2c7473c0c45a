// The chart's optional PrometheusRule (charts/smc-operator/templates/prometheusrule.yaml), rendered
// by the real helm and evaluated by the real promtool: `promtool check rules` on its groups, and
// `promtool test rules` with series on which each alert must fire and series on which it must not.
// Needs /usr/bin/promtool (Debian's prometheus package, installed by .ci/setup) or $PROMTOOL_BIN:
// without it these tests fail, they do not skip.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { OperatorMetrics } from '../../operator/src/metrics.js';
import { createNodeAgentMetrics } from '../../sidecar/src/node-agent/agent.js';
import { SidecarMetrics } from '../../sidecar/src/ops/metrics.js';
import { NO_LINK_GROUPS } from '../../sidecar/src/smc/link-group-manager.js';
import { isExecutable } from '../apiserver/harness/binaries.js';
import { monitorsOf, renderChart } from '../cluster/monitoring/chart.js';
import { durationMs } from '../cluster/monitoring/prometheus-config.js';

// A release name and namespaces other than the defaults, so that a name the template hard-codes
// instead of deriving it shows up as an alert that does not fire.
const RELEASE = 'edge';
const RELEASE_NAMESPACE = 'smc-net';
const MONITOR_NAMESPACE = 'monitoring';
const ALERT_LABELS = { team: 'networking' };

const ALERTS = [
  'SmcFallbackRatioHigh',
  'SmcRdmaErrors',
  'SmcSidecarDown',
  'SmcOperatorReconcileErrors',
  'SmcOperatorNoLeader',
  'SmcNodeAgentDown',
] as const;
type AlertName = (typeof ALERTS)[number];

/** The alerts' `for` by default, and the prometheusRule.for key of each. */
const DEFAULT_FOR: Record<AlertName, { readonly key: string; readonly value: string }> = {
  SmcFallbackRatioHigh: { key: 'fallbackRatioHigh', value: '15m' },
  SmcRdmaErrors: { key: 'rdmaErrors', value: '10m' },
  SmcSidecarDown: { key: 'sidecarDown', value: '10m' },
  SmcOperatorReconcileErrors: { key: 'operatorReconcileErrors', value: '15m' },
  SmcOperatorNoLeader: { key: 'operatorNoLeader', value: '5m' },
  SmcNodeAgentDown: { key: 'nodeAgentDown', value: '10m' },
};

const SEVERITY: Record<AlertName, 'warning' | 'critical'> = {
  SmcFallbackRatioHigh: 'warning',
  SmcRdmaErrors: 'warning',
  SmcSidecarDown: 'warning',
  SmcOperatorReconcileErrors: 'warning',
  SmcOperatorNoLeader: 'critical',
  SmcNodeAgentDown: 'warning',
};

/**
 * Labels Prometheus (with the Prometheus Operator's relabelling of the chart's monitors) puts on
 * scraped series: on every one, plus a node agent's `node` and a sidecar's tenant and policy
 * (podTargetLabels smc.dev/tenant, smc.dev/policy).
 */
const TARGET_LABELS = new Set([
  'job',
  'namespace',
  'pod',
  'container',
  'endpoint',
  'service',
  'instance',
  'node',
  'smc_dev_tenant',
  'smc_dev_policy',
]);

const ruleSchema = z.object({
  alert: z.string(),
  expr: z.string(),
  for: z.string(),
  labels: z.record(z.string(), z.string()),
  annotations: z.object({ summary: z.string(), description: z.string() }).strict(),
});
const prometheusRuleSchema = z.object({
  apiVersion: z.literal('monitoring.coreos.com/v1'),
  kind: z.literal('PrometheusRule'),
  metadata: z.object({
    name: z.string(),
    namespace: z.string(),
    labels: z.record(z.string(), z.string()),
  }),
  spec: z.object({ groups: z.array(z.object({ name: z.string(), rules: z.array(ruleSchema) })) }),
});
type AlertRule = z.infer<typeof ruleSchema>;
type PrometheusRule = z.infer<typeof prometheusRuleSchema>;
type Labels = Record<string, string>;

const kindSchema = z.object({ kind: z.string() });

function prometheusRulesOf(objects: readonly unknown[]): PrometheusRule[] {
  return objects
    .filter((o) => kindSchema.safeParse(o).data?.kind === 'PrometheusRule')
    .map((o) => prometheusRuleSchema.parse(o));
}

async function renderRules(set: readonly string[]): Promise<PrometheusRule[]> {
  const objects = await renderChart({ release: RELEASE, namespace: RELEASE_NAMESPACE, set });
  return prometheusRulesOf(objects);
}

/** The values every render below starts from: the rule on, with a label on every alert. */
const RULE_ON = [
  'prometheusRule.enabled=true',
  `serviceMonitor.namespace=${MONITOR_NAMESPACE}`,
  ...Object.entries(ALERT_LABELS).map(([k, v]) => `prometheusRule.alertLabels.${k}=${v}`),
];

// --- promtool -----------------------------------------------------------------------------------

/** $PROMTOOL_BIN, else the Debian package's binary (next to /usr/bin/prometheus). */
function promtoolBinary(): string {
  const env = process.env['PROMTOOL_BIN'];
  return env !== undefined && env !== '' ? env : '/usr/bin/promtool';
}

interface ToolRun {
  readonly code: number;
  readonly output: string;
}

function promtool(args: readonly string[]): Promise<ToolRun> {
  const binary = promtoolBinary();
  if (!isExecutable(binary)) {
    throw new Error(
      `${binary} is not an executable file: install Debian's prometheus package (apt-get install ` +
        `prometheus, as .ci/setup does) or set PROMTOOL_BIN; the alert rules cannot be checked without it`,
    );
  }
  return new Promise((resolve, reject) => {
    execFile(binary, [...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (err === null) resolve({ code: 0, output });
      else if (typeof err.code === 'number') resolve({ code: err.code, output });
      else reject(new Error(`promtool ${args.join(' ')}: ${err.message}\n${output}`));
    });
  });
}

// --- promtool unit tests (https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/)

interface InputSeries {
  readonly series: string;
  readonly values: string;
}
interface ExpectedAlert {
  readonly exp_labels: Labels;
  readonly exp_annotations: Labels;
}
interface AlertRuleTest {
  readonly eval_time: string;
  readonly alertname: string;
  readonly exp_alerts: readonly ExpectedAlert[];
}
interface TestGroup {
  readonly name: string;
  readonly interval: string;
  readonly input_series: readonly InputSeries[];
  readonly alert_rule_test: readonly AlertRuleTest[];
}

/** What the scenarios need from the rendered chart. */
interface Rendered {
  readonly rules: ReadonlyMap<string, AlertRule>;
  /** The `job` of the sidecar targets: the PodMonitor's "<namespace>/<name>". */
  readonly sidecarJob: string;
  /** The labels of a node agent target the ServiceMonitor scrapes, but pod, container, instance. */
  readonly nodeAgentTarget: { job: string; namespace: string; service: string; endpoint: string };
}

function selector(metric: string, labels: Labels): string {
  const matchers = Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `${metric}{${matchers.join(', ')}}`;
}

function ruleOf(r: Rendered, alert: AlertName): AlertRule {
  const rule = r.rules.get(alert);
  if (rule === undefined)
    throw new Error(`${alert} is not rendered (have ${[...r.rules.keys()].join(', ')})`);
  return rule;
}

/** The rule's `for`, in whole minutes (the scenarios step one minute at a time). */
function forMinutes(rule: AlertRule): number {
  const ms = durationMs(rule.for);
  if (ms % 60_000 !== 0 || ms < 2 * 60_000) {
    throw new Error(`${rule.alert}: for ${rule.for}; the scenarios assume whole minutes, at least 2`);
  }
  return ms / 60_000;
}

const minutes = (n: number): string => `${n}m`;

/**
 * An annotation as Prometheus expands it, for the forms the chart uses: `{{ $labels.x }}` and
 * `{{ $value | humanizePercentage }}`. A label the alert lacks, or any other template, fails here
 * rather than silently comparing against "<no value>".
 */
function expandAnnotation(template: string, labels: Labels, value: string | undefined): string {
  const out = template
    .replace(/\{\{ \$labels\.([a-zA-Z_][a-zA-Z0-9_]*) \}\}/g, (_m, name: string) => {
      const v = labels[name];
      if (v === undefined) throw new Error(`annotation uses $labels.${name}, which the alert does not have`);
      return v;
    })
    .replace(/\{\{ \$value \| humanizePercentage \}\}/g, () => {
      if (value === undefined) throw new Error('annotation uses $value, but the scenario gave none');
      return value;
    });
  if (out.includes('{{')) throw new Error(`annotation template the test does not expand: ${template}`);
  return out;
}

/** A firing alert: the expression's output labels plus the rule's, annotations expanded. */
function firing(rule: AlertRule, outputLabels: Labels, humanizedValue?: string): ExpectedAlert {
  const annotations: Labels = {};
  for (const [k, v] of Object.entries(rule.annotations)) {
    annotations[k] = expandAnnotation(v, outputLabels, humanizedValue);
  }
  return { exp_labels: { ...outputLabels, ...rule.labels }, exp_annotations: annotations };
}

/** The alert is pending (not firing) a minute before `for` elapses, and fires just after. */
function pendingThenFiring(
  rule: AlertRule,
  activeFromMinute: number,
  alerts: readonly ExpectedAlert[],
): AlertRuleTest[] {
  const forMin = forMinutes(rule);
  return [
    { eval_time: minutes(activeFromMinute + forMin - 1), alertname: rule.alert, exp_alerts: [] },
    { eval_time: minutes(activeFromMinute + forMin + 1), alertname: rule.alert, exp_alerts: alerts },
  ];
}

function fallbackScenario(r: Rendered): TestGroup[] {
  const rule = ruleOf(r, 'SmcFallbackRatioHigh');
  // With the tenant and policy labels the PodMonitor copies from the pods: summed away by namespace.
  const conn = (namespace: string, pod: string, outcome: string, reason: string): string =>
    selector('smc_connections_total', {
      job: r.sidecarJob,
      namespace,
      pod,
      container: 'smc-sidecar',
      smc_dev_tenant: pod.startsWith('web-') ? 'blue' : 'red',
      smc_dev_policy: namespace,
      outcome,
      reason,
    });
  return [
    {
      name: 'fallback ratio by namespace',
      interval: '1m',
      input_series: [
        // shop: 70 of 100 connections a minute fall back, over two pods: fires.
        { series: conn('shop', 'web-1', 'upgraded', 'none'), values: '0+30x60' },
        { series: conn('shop', 'web-1', 'fallback', 'no-rdma-device'), values: '0+40x60' },
        { series: conn('shop', 'web-2', 'fallback', 'peer-not-in-directory'), values: '0+30x60' },
        { series: conn('shop', 'web-2', 'declined', 'limit-reached'), values: '0x60' },
        // batch: 10% fall back, below the threshold.
        { series: conn('batch', 'worker-1', 'upgraded', 'none'), values: '0+90x60' },
        { series: conn('batch', 'worker-1', 'fallback', 'peer-declined'), values: '0+10x60' },
        // strict: mostly declined (Require mode), only 10% fall back: declines are no fallback.
        { series: conn('strict', 'db-1', 'upgraded', 'none'), values: '0+30x60' },
        { series: conn('strict', 'db-1', 'declined', 'peer-not-in-directory'), values: '0+60x60' },
        { series: conn('strict', 'db-1', 'fallback', 'handshake-timeout'), values: '0+10x60' },
        // idle: the sidecar's zero-initialised counters and no traffic: 0/0 must not alert.
        { series: conn('idle', 'cron-1', 'upgraded', 'none'), values: '0x60' },
        { series: conn('idle', 'cron-1', 'fallback', 'no-rdma-device'), values: '0x60' },
      ],
      // rate() needs two samples: the condition holds from minute 1.
      alert_rule_test: pendingThenFiring(rule, 1, [firing(rule, { namespace: 'shop' }, '70%')]),
    },
  ];
}

function rdmaErrorsScenario(r: Rendered): TestGroup[] {
  const rule = ruleOf(r, 'SmcRdmaErrors');
  const errors = (namespace: string, pod: string, kind: string): string =>
    selector('smc_rdma_errors_total', { job: r.sidecarJob, namespace, pod, container: 'smc-sidecar', kind });
  return [
    {
      name: 'RDMA errors by pod and kind',
      interval: '1m',
      input_series: [
        // Two link errors a minute, for the whole hour: fires.
        { series: errors('shop', 'web-1', 'link-error'), values: '0+2x60' },
        // The zero-initialised kinds of the same sidecar.
        { series: errors('shop', 'web-1', 'post-send'), values: '0x60' },
        { series: errors('shop', 'web-2', 'link-error'), values: '0x60' },
        // One burst at minute 2, then nothing: the 5m rate is above 0 for less than `for`.
        { series: errors('batch', 'worker-1', 'cdc-protocol'), values: '0 0 5x58' },
      ],
      alert_rule_test: pendingThenFiring(rule, 1, [
        firing(rule, { namespace: 'shop', pod: 'web-1', kind: 'link-error' }),
      ]),
    },
  ];
}

function sidecarDownScenario(r: Rendered): TestGroup[] {
  const rule = ruleOf(r, 'SmcSidecarDown');
  const target = (job: string, namespace: string, pod: string, ip: string): Labels => ({
    job,
    namespace,
    pod,
    container: 'smc-sidecar',
    endpoint: 'smc-metrics',
    instance: `${ip}:15090`,
  });
  const down = target(r.sidecarJob, 'shop', 'web-1', '10.244.1.7');
  return [
    {
      name: 'sidecar targets',
      interval: '1m',
      input_series: [
        { series: selector('up', down), values: '0x60' },
        { series: selector('up', target(r.sidecarJob, 'shop', 'web-2', '10.244.1.8')), values: '1x60' },
        // Down for 6 minutes (a restart), then back: shorter than `for`.
        {
          series: selector('up', target(r.sidecarJob, 'batch', 'worker-1', '10.244.2.4')),
          values: '0x5 1x55',
        },
        // Another PodMonitor's target, down: not ours.
        {
          series: selector('up', target('istio-system/envoy-sidecars', 'shop', 'web-3', '10.244.1.9')),
          values: '0x60',
        },
      ],
      alert_rule_test: pendingThenFiring(rule, 0, [firing(rule, down)]),
    },
  ];
}

function nodeAgentDownScenario(r: Rendered): TestGroup[] {
  const rule = ruleOf(r, 'SmcNodeAgentDown');
  const agent = (pod: string, ip: string): Labels => ({
    ...r.nodeAgentTarget,
    pod,
    container: 'node-agent',
    instance: `${ip}:15090`,
  });
  const down = agent(`${RELEASE}-smc-operator-node-agent-x7k2p`, '192.168.122.11');
  return [
    {
      name: 'node agent targets',
      interval: '1m',
      input_series: [
        { series: selector('up', down), values: '0x60' },
        {
          series: selector('up', agent(`${RELEASE}-smc-operator-node-agent-q9wz4`, '192.168.122.12')),
          values: '1x60',
        },
        // Velero's node agent has the same job (its app.kubernetes.io/component), down: not ours.
        {
          series: selector('up', {
            job: r.nodeAgentTarget.job,
            namespace: 'velero',
            service: 'node-agent',
            endpoint: 'metrics',
            pod: 'node-agent-abcde',
            container: 'node-agent',
            instance: '10.244.1.20:8085',
          }),
          values: '0x60',
        },
      ],
      alert_rule_test: pendingThenFiring(rule, 0, [firing(rule, down)]),
    },
  ];
}

function reconcileErrorsScenario(r: Rendered): TestGroup[] {
  const rule = ruleOf(r, 'SmcOperatorReconcileErrors');
  const errors = (pod: string, controller: string): string =>
    selector('smc_operator_reconcile_errors_total', {
      job: 'operator',
      namespace: RELEASE_NAMESPACE,
      pod,
      controller,
    });
  return [
    {
      name: 'reconcile errors by controller',
      interval: '1m',
      input_series: [
        // The leader fails a directory reconcile a minute; the standby reconciles nothing.
        { series: errors('edge-smc-operator-7d9f-a', 'directory'), values: '0+1x60' },
        { series: errors('edge-smc-operator-7d9f-a', 'smcpolicy'), values: '0x60' },
        { series: errors('edge-smc-operator-7d9f-b', 'directory'), values: '0x60' },
        { series: errors('edge-smc-operator-7d9f-b', 'smcpolicy'), values: '0x60' },
      ],
      alert_rule_test: pendingThenFiring(rule, 1, [firing(rule, { controller: 'directory' })]),
    },
  ];
}

function noLeaderScenario(r: Rendered): TestGroup[] {
  const rule = ruleOf(r, 'SmcOperatorNoLeader');
  const forMin = forMinutes(rule);
  const leader = (pod: string): string =>
    selector('smc_operator_leader', { job: 'operator', namespace: RELEASE_NAMESPACE, pod });
  return [
    {
      name: 'both replicas stand by',
      interval: '1m',
      input_series: [
        { series: leader('edge-smc-operator-7d9f-a'), values: '0x30' },
        { series: leader('edge-smc-operator-7d9f-b'), values: '0x30' },
      ],
      alert_rule_test: pendingThenFiring(rule, 0, [firing(rule, {})]),
    },
    {
      name: 'a failover shorter than for',
      interval: '1m',
      input_series: [
        // a leads for 11 minutes, then b takes over after 3 minutes without a leader.
        { series: leader('edge-smc-operator-7d9f-a'), values: '1x10 0x20' },
        { series: leader('edge-smc-operator-7d9f-b'), values: '0x13 1x17' },
      ],
      alert_rule_test: [
        { eval_time: minutes(5), alertname: rule.alert, exp_alerts: [] },
        { eval_time: minutes(11 + forMin), alertname: rule.alert, exp_alerts: [] },
        { eval_time: minutes(30), alertname: rule.alert, exp_alerts: [] },
      ],
    },
    {
      name: 'no operator scraped',
      interval: '1m',
      // The operator's target is down: none of its metrics exist.
      input_series: [
        { series: selector('up', { job: 'operator', namespace: RELEASE_NAMESPACE }), values: '0x30' },
      ],
      alert_rule_test: pendingThenFiring(rule, 0, [firing(rule, {})]),
    },
  ];
}

const SCENARIOS: Record<AlertName, (r: Rendered) => TestGroup[]> = {
  SmcFallbackRatioHigh: fallbackScenario,
  SmcRdmaErrors: rdmaErrorsScenario,
  SmcSidecarDown: sidecarDownScenario,
  SmcOperatorReconcileErrors: reconcileErrorsScenario,
  SmcOperatorNoLeader: noLeaderScenario,
  SmcNodeAgentDown: nodeAgentDownScenario,
};

// -------------------------------------------------------------------------------------------------

describe('the chart PrometheusRule', () => {
  let workDir: string;
  let chartRule: PrometheusRule;
  let rendered: Rendered;
  let rulesFile: string;

  /** Writes the groups as a Prometheus rule file (JSON, which is YAML) and returns its path. */
  async function writeRuleFile(name: string, groups: PrometheusRule['spec']['groups']): Promise<string> {
    const file = join(workDir, name);
    await writeFile(file, JSON.stringify({ groups }, null, 2));
    return file;
  }

  /** Runs `promtool test rules` on the groups against `rules`. */
  async function testRules(name: string, rules: string, groups: readonly TestGroup[]): Promise<ToolRun> {
    const file = join(workDir, `${name}.test.yaml`);
    await writeFile(
      file,
      JSON.stringify({ rule_files: [rules], evaluation_interval: '1m', tests: groups }, null, 2),
    );
    return promtool(['test', 'rules', file]);
  }

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'smc-prometheus-rules-'));
    const objects = await renderChart({ release: RELEASE, namespace: RELEASE_NAMESPACE, set: RULE_ON });
    const [only, ...more] = prometheusRulesOf(objects);
    if (only === undefined || more.length > 0) throw new Error('expected exactly one PrometheusRule');
    chartRule = only;

    // The jobs come from the rendered monitors, so the scenarios' `up` series are what the
    // Prometheus Operator would scrape from them (see prometheus-config.ts for its relabelling).
    const monitors = monitorsOf(objects);
    const pm = monitors.podMonitors[0];
    const sm = monitors.serviceMonitors[0];
    if (pm === undefined || sm === undefined)
      throw new Error('the chart rendered no PodMonitor or ServiceMonitor');
    expect(pm.spec.jobLabel).toBeUndefined();
    const jobLabel = sm.spec.jobLabel;
    if (jobLabel === undefined) throw new Error('the ServiceMonitor has no jobLabel');
    const agentService = z
      .object({
        kind: z.literal('Service'),
        metadata: z.object({
          name: z.string(),
          namespace: z.string(),
          labels: z.record(z.string(), z.string()),
        }),
      })
      .array()
      .parse(objects.filter((o) => kindSchema.safeParse(o).data?.kind === 'Service'))
      .find((s) => s.metadata.labels['smc.dev/metrics'] === 'node-agent');
    if (agentService === undefined) throw new Error('no node agent metrics Service rendered');
    const job = agentService.metadata.labels[jobLabel];
    if (job === undefined) throw new Error(`the node agent Service has no ${jobLabel} label`);

    rendered = {
      rules: new Map(chartRule.spec.groups.flatMap((g) => g.rules).map((r) => [r.alert, r])),
      sidecarJob: `${pm.metadata.namespace}/${pm.metadata.name}`,
      nodeAgentTarget: {
        job,
        namespace: agentService.metadata.namespace,
        service: agentService.metadata.name,
        endpoint: 'metrics',
      },
    };
    rulesFile = await writeRuleFile('rules.yaml', chartRule.spec.groups);
  });

  afterAll(async () => {
    if (workDir === undefined) return;
    // SMC_KEEP_PROMTOOL_FILES=1 keeps the rule and unit-test files for running promtool by hand.
    if (process.env['SMC_KEEP_PROMTOOL_FILES'] === '1')
      process.stderr.write(`promtool files kept in ${workDir}\n`);
    else await rm(workDir, { recursive: true, force: true });
  });

  it('is not rendered by default', async () => {
    const objects = await renderChart({ release: RELEASE, namespace: RELEASE_NAMESPACE });
    expect(objects.length).toBeGreaterThan(5);
    expect(prometheusRulesOf(objects)).toEqual([]);
  });

  it('renders one group with the six alerts, their severities and the configured labels', () => {
    expect(chartRule.metadata.namespace).toBe(RELEASE_NAMESPACE);
    expect(chartRule.metadata.labels['app.kubernetes.io/instance']).toBe(RELEASE);
    expect(chartRule.spec.groups.map((g) => g.name)).toEqual(['smc-operator']);
    expect([...rendered.rules.keys()].sort()).toEqual([...ALERTS].sort());
    for (const alert of ALERTS) {
      expect(ruleOf(rendered, alert).labels).toEqual({ severity: SEVERITY[alert], ...ALERT_LABELS });
      expect(ruleOf(rendered, alert).for, alert).toBe(DEFAULT_FOR[alert].value);
    }
  });

  it('places the rule and its labels as prometheusRule.namespace and .labels say', async () => {
    const [custom] = await renderRules([
      ...RULE_ON,
      'prometheusRule.namespace=monitoring',
      'prometheusRule.labels.release=kube-prometheus-stack',
    ]);
    expect(custom?.metadata.namespace).toBe('monitoring');
    expect(custom?.metadata.labels['release']).toBe('kube-prometheus-stack');
  });

  it('leaves out the target-down alerts when the chart renders no monitors for their jobs', async () => {
    const alertsOf = async (set: string[]): Promise<string[]> =>
      (await renderRules([...RULE_ON, ...set])).flatMap((r) =>
        r.spec.groups.flatMap((g) => g.rules.map((x) => x.alert)),
      );
    const metricAlerts = [
      'SmcFallbackRatioHigh',
      'SmcRdmaErrors',
      'SmcOperatorReconcileErrors',
      'SmcOperatorNoLeader',
    ];
    expect(await alertsOf(['serviceMonitor.enabled=false'])).toEqual(metricAlerts);
    expect(await alertsOf(['serviceMonitor.sidecars.enabled=false'])).not.toContain('SmcSidecarDown');
    expect(await alertsOf(['nodeAgent.enabled=false'])).not.toContain('SmcNodeAgentDown');
    expect(await alertsOf(['serviceMonitor.nodeAgent=false'])).not.toContain('SmcNodeAgentDown');
  });

  it('queries only metrics and label values the operator, sidecar and node agent export', async () => {
    // Metric name → label name → the values the code initialises: the rules' metrics all start
    // their series at 0, so their labels show without any traffic.
    const exported = new Map<string, Map<string, Set<string>>>();
    const registries = [
      new OperatorMetrics({ defaultMetrics: false }).registry,
      new SidecarMetrics(() => ({ ...NO_LINK_GROUPS })).registry,
      createNodeAgentMetrics().registry,
    ];
    for (const registry of registries) {
      for (const metric of await registry.getMetricsAsJSON()) {
        const labels = new Map<string, Set<string>>();
        for (const v of metric.values) {
          for (const [k, value] of Object.entries(v.labels)) {
            const values = labels.get(k) ?? new Set<string>();
            values.add(String(value));
            labels.set(k, values);
          }
        }
        exported.set(metric.name, labels);
      }
    }
    const problems: string[] = [];
    for (const r of rendered.rules.values()) {
      for (const m of r.expr.matchAll(/\b(smc_[a-z0-9_]+)(?:\{([^}]*)\})?/g)) {
        const [, metric = '', matchers = ''] = m;
        const labels = exported.get(metric);
        if (labels === undefined) {
          problems.push(`${r.alert}: ${metric} is not exported`);
          continue;
        }
        for (const [, label = '', value = ''] of matchers.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) {
          if (TARGET_LABELS.has(label)) continue;
          if (!labels.get(label)?.has(value))
            problems.push(`${r.alert}: ${metric} has no series ${label}="${value}"`);
        }
      }
      for (const m of r.expr.matchAll(/by \(([^)]*)\) \((?:rate\()?(smc_[a-z0-9_]+)/g)) {
        const [, byLabels = '', metric = ''] = m;
        for (const label of byLabels.split(',').map((l) => l.trim())) {
          const known = TARGET_LABELS.has(label) || exported.get(metric)?.has(label) === true;
          if (!known) problems.push(`${r.alert}: aggregates ${metric} by ${label}, which it does not have`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('passes promtool check rules', async () => {
    const run = await promtool(['check', 'rules', rulesFile]);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain(`SUCCESS: ${ALERTS.length} rules found`);
  });

  it.each(ALERTS)(
    '%s fires on failing series and stays quiet on healthy ones (promtool test rules)',
    async (alert) => {
      const groups = SCENARIOS[alert](rendered);
      // Each alert's scenarios must show it firing: an expectation of no alert alone would also
      // pass for a misspelt alert name or an expression that never matches.
      const fires = groups.some((g) =>
        g.alert_rule_test.some((t) => t.alertname === alert && t.exp_alerts.length > 0),
      );
      expect(fires, `no scenario of ${alert} expects it to fire`).toBe(true);
      const run = await testRules(alert, rulesFile, groups);
      expect(run.code, run.output).toBe(0);
      expect(run.output).toContain('SUCCESS');
    },
  );

  it('promtool test rules fails when an alert does not behave as expected', async () => {
    // The healthy 10% namespace expected to fire: promtool must report the difference, or the
    // passing runs above prove nothing.
    const fallback = ruleOf(rendered, 'SmcFallbackRatioHigh');
    const wrong = fallbackScenario(rendered).map((g) => ({
      ...g,
      alert_rule_test: [
        {
          eval_time: minutes(forMinutes(fallback) + 2),
          alertname: fallback.alert,
          exp_alerts: [
            firing(fallback, { namespace: 'shop' }, '70%'),
            firing(fallback, { namespace: 'batch' }, '10%'),
          ],
        },
      ],
    }));
    const run = await testRules('wrong-expectation', rulesFile, wrong);
    expect(run.code, run.output).not.toBe(0);
    expect(run.output).toMatch(/FAILED/);
    expect(run.output).toContain('batch');
  });

  it('uses prometheusRule.fallbackRatioThreshold and prometheusRule.for', async () => {
    // Every `for` a different value, so that one read from the wrong key shows.
    const customFor = new Map(ALERTS.map((alert, i) => [alert, `${i + 2}m`]));
    // A values file: `--set` hands helm a float as a string, which the schema rejects.
    const values = join(workDir, 'custom-values.json');
    await writeFile(
      values,
      JSON.stringify({
        prometheusRule: {
          fallbackRatioThreshold: 0.05,
          for: Object.fromEntries(ALERTS.map((alert) => [DEFAULT_FOR[alert].key, customFor.get(alert)])),
        },
      }),
    );
    const [custom] = prometheusRulesOf(
      await renderChart({
        release: RELEASE,
        namespace: RELEASE_NAMESPACE,
        set: RULE_ON,
        valuesFiles: [values],
      }),
    );
    if (custom === undefined) throw new Error('no PrometheusRule rendered');
    const rules = new Map(custom.spec.groups.flatMap((g) => g.rules).map((r) => [r.alert, r]));
    for (const alert of ALERTS) expect(rules.get(alert)?.for, alert).toBe(customFor.get(alert));

    // With a 5% threshold the 10% namespaces fire as well.
    const r: Rendered = { ...rendered, rules };
    const fallback = ruleOf(r, 'SmcFallbackRatioHigh');
    const groups = fallbackScenario(r).map((g) => ({
      ...g,
      alert_rule_test: pendingThenFiring(fallback, 1, [
        firing(fallback, { namespace: 'batch' }, '10%'),
        firing(fallback, { namespace: 'shop' }, '70%'),
        firing(fallback, { namespace: 'strict' }, '10%'),
      ]),
    }));
    const run = await testRules(
      'threshold',
      await writeRuleFile('rules-custom.yaml', custom.spec.groups),
      groups,
    );
    expect(run.code, run.output).toBe(0);
  });

  it.each([
    [['prometheusRule.fallbackRatioThreshold=1'], /fallbackRatioThreshold/],
    [['prometheusRule.fallbackRatioThreshold=0'], /fallbackRatioThreshold/],
    [['prometheusRule.for.rdmaErrors=1.5m'], /for\/rdmaErrors/],
    [['prometheusRule.for.unknown=5m'], /additional properties 'unknown' not allowed/],
    [['prometheusRule.alertLabels.severity=page'], /alertLabels\/severity/],
    [['prometheusRule.alertLabels.bad-name=x'], /invalid propertyName 'bad-name'/],
    [['prometheusRule.fallbackRatioThreshold=0.3'], /fallbackRatioThreshold.*got string, want number/],
    [['prometheusRule.enabled=yes'], /prometheusRule\/enabled.*boolean/],
  ])('values.schema.json rejects %j', async (set, message) => {
    const err = await renderRules(set).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).toMatch(/values don't meet the specifications of the schema/);
    expect(String(err)).toMatch(message);
  });
});
