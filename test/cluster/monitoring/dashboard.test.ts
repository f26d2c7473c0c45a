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
    // Panels know their row (the dashboard groups sidecar and operator panels in rows).
    expect(new Set(panels.map((p) => p.row))).toContain('Operator');
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
      'sum by (outcome) (rate(smc_connections_total{namespace=~".*"}[20s]))',
    );
    const ratio = byTitle.get('Upgrade ratio')?.targets[0]?.expr ?? '';
    expect(interpolate(ratio, scope)).toContain('[600s]');
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
    ).toEqual(['Fallbacks by reason', 'Handshake latency', 'RDMA errors'].sort());
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
