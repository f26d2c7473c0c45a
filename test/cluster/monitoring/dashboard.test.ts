// Query extraction and variable substitution against the dashboard the chart ships, and the
// per-panel check against a fake Prometheus.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DASHBOARD_PATH,
  checkDashboard,
  dashboardPanels,
  failedPanels,
  formatCheck,
  grafanaIntervals,
  interpolate,
  loadDashboard,
  parseDashboard,
  parseLabelValuesQuery,
  staticVariableValues,
  templateVariables,
  unresolvedVariables,
  type Scope,
  type VariableValue,
} from './dashboard.js';
import type { InstantResult, PromQueryApi, RangeSeries } from './prometheus.js';
import { Histogram, type Registry } from 'prom-client';
import { OperatorMetrics } from '../../../operator/src/metrics.js';
import { createNodeAgentMetrics } from '../../../sidecar/src/node-agent/agent.js';
import { createDevicePluginMetrics } from '../../../sidecar/src/node-agent/device-plugin/metrics.js';
import { SidecarMetrics } from '../../../sidecar/src/ops/metrics.js';
import { NO_LINK_GROUPS } from '../../../sidecar/src/smc/link-group-manager.js';

interface RawPanel {
  type?: string;
  title?: string;
  targets?: { expr?: string }[];
  panels?: RawPanel[];
}

/** Independent count of the raw JSON: non-row panels and targets with an expr. */
function rawCounts(panels: RawPanel[]): { panels: string[]; targets: number } {
  const titles: string[] = [];
  let targets = 0;
  const walk = (ps: RawPanel[]): void => {
    for (const p of ps) {
      if (p.type !== 'row') {
        titles.push(p.title ?? '');
        targets += (p.targets ?? []).filter((t) => typeof t.expr === 'string').length;
      }
      walk(p.panels ?? []);
    }
  };
  walk(panels);
  return { panels: titles, targets };
}

const raw = JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8')) as { panels: RawPanel[] };
const dashboard = loadDashboard();

function scopeFor(variables: ReadonlyMap<string, VariableValue>): Scope {
  const to = new Date('2025-01-01T00:10:00Z');
  return {
    variables,
    rangeMs: 600_000,
    intervals: grafanaIntervals(600_000, 5_000),
    from: new Date(to.getTime() - 600_000),
    to,
  };
}

describe('the shipped dashboard', () => {
  const panels = dashboardPanels(dashboard);

  it('finds every panel and every target', () => {
    const counts = rawCounts(raw.panels);
    expect(panels.map((p) => p.title)).toEqual(counts.panels);
    expect(panels.flatMap((p) => p.targets)).toHaveLength(counts.targets);
    expect(counts.targets).toBeGreaterThan(0);
    for (const p of panels)
      expect(p.targets.length, `panel ${p.title} has no PromQL target`).toBeGreaterThan(0);
    // Panels know their row (the dashboard groups sidecar, operator and node agent panels in rows).
    expect([...new Set(panels.map((p) => p.row))]).toEqual([
      'Sidecars: connections',
      'Sidecars: tenants and policies',
      'Sidecars: data path',
      'Operator',
      'Node agents',
    ]);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size, 'panel ids are unique').toBe(ids.length);
  });

  it('leaves no template variable in any query once "All" is substituted', () => {
    const { values, needOptions } = staticVariableValues(templateVariables(dashboard));
    // Every query variable of this dashboard has an allValue, so no Prometheus round trip is needed.
    expect(needOptions.map((v) => v.name)).toEqual([]);
    const scope = scopeFor(values);
    for (const p of panels) {
      for (const t of p.targets) {
        const expr = interpolate(t.expr, scope);
        expect(unresolvedVariables(expr), `${p.title}: ${expr}`).toEqual([]);
        expect(expr, `${p.title}`).not.toMatch(/\$|\[\[/);
      }
    }
  });

  it('substitutes the way Grafana does for All, $__rate_interval and $__range', () => {
    const { values } = staticVariableValues(templateVariables(dashboard));
    const scope = scopeFor(values);
    const byTitle = new Map(panels.map((p) => [p.title, p]));
    const outcome = byTitle.get('Connections by outcome')?.targets[0]?.expr ?? '';
    expect(interpolate(outcome, scope)).toBe(
      'sum by (outcome) (rate(smc_connections_total{namespace=~".*",smc_dev_tenant=~".*",smc_dev_policy=~".*"}[20s]))',
    );
    const ratio = byTitle.get('Upgrade ratio')?.targets[0]?.expr ?? '';
    expect(interpolate(ratio, scope)).toContain('[600s]');
  });
});

/** Labels Prometheus puts on every series of the chart's monitors (prometheus-config.ts), `node` included. */
const TARGET_LABELS = new Set(['job', 'namespace', 'pod', 'container', 'endpoint', 'service', 'instance']);
/** Copied from the pods by the PodMonitor's podTargetLabels (sidecars only). */
const POD_TARGET_LABELS = new Set(['smc_dev_tenant', 'smc_dev_policy']);

/** Every metric the code exports, with its label names (histograms: with their suffixes). */
async function exportedMetrics(): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  const registries: { registry: Registry; extra: Set<string> }[] = [
    { registry: new OperatorMetrics({ defaultMetrics: false }).registry, extra: new Set() },
    { registry: new SidecarMetrics(() => ({ ...NO_LINK_GROUPS })).registry, extra: POD_TARGET_LABELS },
    (() => {
      const registry = createNodeAgentMetrics().registry;
      createDevicePluginMetrics(registry);
      // The ServiceMonitor's relabelling names a node agent's node.
      return { registry, extra: new Set(['node']) };
    })(),
  ];
  for (const { registry, extra } of registries) {
    for (const m of await registry.getMetricsAsJSON()) {
      const metric = registry.getSingleMetric(m.name);
      // Label names come from the metric's configuration, not only from series that exist.
      const configured = (metric as unknown as { labelNames?: string[] } | undefined)?.labelNames ?? [];
      const labels = new Set([...configured, ...extra, ...TARGET_LABELS]);
      if (metric instanceof Histogram) {
        out.set(`${m.name}_bucket`, new Set([...labels, 'le']));
        out.set(`${m.name}_count`, labels);
        out.set(`${m.name}_sum`, labels);
      } else out.set(m.name, labels);
    }
  }
  out.set('up', new Set([...TARGET_LABELS, 'node', ...POD_TARGET_LABELS]));
  return out;
}

describe('the queries of the shipped dashboard', () => {
  const panels = dashboardPanels(dashboard);
  const targets = panels.flatMap((p) => p.targets.map((t) => ({ panel: p, expr: t.expr })));

  it('use only metrics the operator, sidecar and node agent export, and only their labels', async () => {
    const exported = await exportedMetrics();
    const problems: string[] = [];
    for (const { panel, expr } of targets) {
      const metrics = [...expr.matchAll(/\b(smc_[a-z0-9_]+|up)\b(?=\s*[{[])/g)].map((m) => m[1] ?? '');
      const known = new Set<string>();
      for (const metric of metrics) {
        const labels = exported.get(metric);
        if (labels === undefined) problems.push(`${panel.title}: ${metric} is not exported`);
        else for (const l of labels) known.add(l);
      }
      for (const m of expr.matchAll(/\b(?:by|on)\s*\(([^)]*)\)/g)) {
        for (const label of (m[1] ?? '').split(',').map((l) => l.trim()))
          if (!known.has(label)) problems.push(`${panel.title}: groups by ${label}, which its metrics lack`);
      }
      for (const m of expr.matchAll(/\{([^}]*)\}/g)) {
        for (const [, label = ''] of (m[1] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g))
          if (!known.has(label)) problems.push(`${panel.title}: matches on ${label}, which its metrics lack`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('filter every sidecar query by the tenant and policy variables (pod labels of the webhook)', async () => {
    const variables = templateVariables(dashboard);
    for (const name of ['tenant', 'policy']) {
      const v = variables.find((x) => x.name === name);
      expect(v, name).toMatchObject({ type: 'query', includeAll: true, multi: true, allValue: '.*' });
    }
    // Every metric of the sidecar's registry, wherever a panel queries it.
    const sidecarMetrics = new Set(
      (await new SidecarMetrics(() => ({ ...NO_LINK_GROUPS })).registry.getMetricsAsJSON()).map(
        (m) => m.name,
      ),
    );
    const isSidecar = (metric: string): boolean =>
      sidecarMetrics.has(metric) || sidecarMetrics.has(metric.replace(/_(bucket|count|sum)$/, ''));
    const sidecar = targets.filter((t) =>
      [...t.expr.matchAll(/\b(smc_[a-z0-9_]+)\{/g)].some((m) => isSidecar(m[1] ?? '')),
    );
    expect(sidecar.length).toBeGreaterThan(10);
    for (const { panel, expr } of sidecar) {
      const selectors = [...expr.matchAll(/\b(smc_[a-z0-9_]+)\{([^}]*)\}/g)]
        .filter((m) => isSidecar(m[1] ?? ''))
        .map((m) => m[2] ?? '');
      for (const sel of selectors) {
        expect(sel, panel.title).toContain('namespace=~"$namespace"');
        expect(sel, panel.title).toContain('smc_dev_tenant=~"$tenant"');
        expect(sel, panel.title).toContain('smc_dev_policy=~"$policy"');
      }
    }
    // The per-tenant and per-policy views.
    const byTitle = new Map(panels.map((p) => [p.title, p.targets.map((t) => t.expr).join(' ')]));
    expect(byTitle.get('Upgrade ratio by tenant')).toMatch(/sum by \(smc_dev_tenant\)/);
    expect(byTitle.get('Fallbacks by tenant and reason')).toMatch(/sum by \(smc_dev_tenant, reason\)/);
    expect(byTitle.get('Connections by policy and outcome')).toMatch(/sum by \(smc_dev_policy, outcome\)/);
  });

  it('show the node agents per node and the operator queue per controller', () => {
    const byTitle = new Map(panels.map((p) => [p.title, p]));
    for (const title of [
      'Node agents up',
      'RDMA devices per node',
      'RDMA ports by node and state',
      'Scans and SmcNode publish errors',
      'Time since the last SmcNode publish',
    ]) {
      const p = byTitle.get(title);
      expect(p?.row, title).toBe('Node agents');
      expect(p?.targets.map((t) => t.expr).join(' '), title).toMatch(/by \(node\b/);
    }
    expect(byTitle.get('Work queue depth')?.targets[0]?.expr).toMatch(/by \(controller\)/);
  });
});

describe('interpolate', () => {
  const vars = new Map<string, VariableValue>([
    ['ns', { kind: 'values', values: ['a', 'b.c'] }],
    ['one', { kind: 'raw', value: 'x' }],
  ]);
  const scope = scopeFor(vars);

  it.each([
    ['$ns', '(a|b\\.c)'],
    ['${ns}', '(a|b\\.c)'],
    ['[[ns]]', '(a|b\\.c)'],
    ['${ns:csv}', 'a,b.c'],
    ['[[ns:pipe]]', 'a|b.c'],
    ['$one-${one}-[[one]]', 'x-x-x'],
    ['$__interval/$__rate_interval/$__range/$__range_s/$__interval_ms', '5s/20s/600s/600/5000'],
    ['$unknown ${other}', '$unknown ${other}'],
  ])('%s → %s', (input, expected) => {
    expect(interpolate(input, scope)).toBe(expected);
  });

  it('reports what it could not substitute', () => {
    expect(unresolvedVariables(interpolate('a{x=~"$nope"}[${__nope}]', scope))).toEqual([
      '$nope',
      '${__nope}',
    ]);
  });
});

describe('grafanaIntervals', () => {
  it('never goes below the scrape interval and keeps four scrapes in a rate window', () => {
    expect(grafanaIntervals(600_000, 5_000)).toEqual({ intervalMs: 5_000, rateIntervalMs: 20_000 });
    expect(grafanaIntervals(6 * 3_600_000, 15_000)).toEqual({ intervalMs: 20_000, rateIntervalMs: 60_000 });
    expect(grafanaIntervals(24 * 3_600_000, 15_000)).toEqual({ intervalMs: 60_000, rateIntervalMs: 75_000 });
  });
});

describe('parseLabelValuesQuery', () => {
  it('reads both forms', () => {
    expect(parseLabelValuesQuery('label_values(smc_connections_total, namespace)')).toEqual({
      label: 'namespace',
      match: 'smc_connections_total',
    });
    expect(parseLabelValuesQuery('label_values(job)')).toEqual({ label: 'job', match: undefined });
    expect(parseLabelValuesQuery('query_result(up)')).toBeUndefined();
  });
});

/** A Prometheus stand-in: answers by the first matching substring. */
function fakeProm(answers: [string, RangeSeries[] | Error][]): PromQueryApi & { seen: string[] } {
  const seen: string[] = [];
  const answer = (expr: string): RangeSeries[] => {
    seen.push(expr);
    const hit = answers.find(([needle]) => expr.includes(needle));
    if (hit === undefined) return [];
    if (hit[1] instanceof Error) throw hit[1];
    return hit[1];
  };
  return {
    seen,
    query: async (expr): Promise<InstantResult> => ({
      resultType: 'vector',
      result: answer(expr).map((s) => ({ metric: s.metric, value: s.values[0] ?? [0, 'NaN'] })),
    }),
    queryRange: async (expr) => answer(expr),
    labelValues: async () => ['demo'],
  };
}

describe('checkDashboard', () => {
  it('reports ok, empty (no series or only NaN) and error per target and panel', async () => {
    const series = (v: string): RangeSeries[] => [
      {
        metric: { outcome: 'upgraded' },
        values: [
          [1, v],
          [2, v],
        ],
      },
    ];
    const prom = fakeProm([
      ['outcome="fallback"', []],
      ['smc_handshake_duration_seconds_bucket', series('NaN')],
      ['smc_rdma_errors_total', new Error('bad_data: parse error')],
      ['smc_', series('1')],
      ['up{', series('1')],
    ]);
    const check = await checkDashboard(prom, { end: new Date('2025-01-01T00:10:00Z') });
    const byTitle = new Map(check.panels.map((p) => [p.title, p]));
    expect(byTitle.get('Connections by outcome')?.status).toBe('ok');
    expect(byTitle.get('Fallbacks by reason')?.status).toBe('empty');
    expect(byTitle.get('Fallbacks by reason')?.targets[0]?.detail).toBe('no series');
    expect(byTitle.get('Handshake latency')?.targets[0]?.detail).toMatch(/every sample NaN/);
    expect(byTitle.get('RDMA errors')?.status).toBe('error');
    expect(
      failedPanels(check)
        .map((p) => p.title)
        .sort(),
    ).toEqual(
      ['Fallbacks by reason', 'Fallbacks by tenant and reason', 'Handshake latency', 'RDMA errors'].sort(),
    );
    expect(prom.seen.every((e) => !e.includes('$'))).toBe(true);
    expect(check.stepSeconds).toBe(5);
    expect(formatCheck(check)).toMatch(/^EMPTY Fallbacks by reason \[A\] 0 series \(no series\)/m);
  });

  it('resolves a query variable without allValue from the label values', async () => {
    const custom = parseDashboard({
      title: 't',
      templating: {
        list: [
          {
            name: 'ns',
            type: 'query',
            includeAll: true,
            query: 'label_values(up, namespace)',
            current: { value: '$__all' },
          },
        ],
      },
      panels: [
        { id: 1, title: 'p', type: 'timeseries', targets: [{ refId: 'A', expr: 'up{namespace=~"$ns"}' }] },
      ],
    });
    const prom = fakeProm([['up', [{ metric: {}, values: [[1, '1']] }]]]);
    const check = await checkDashboard(prom, { dashboard: custom });
    expect(check.panels[0]?.targets[0]?.expr).toBe('up{namespace=~"demo"}');
    expect(check.panels[0]?.status).toBe('ok');
  });
});
