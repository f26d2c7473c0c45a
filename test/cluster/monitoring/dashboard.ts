/**
 * The shipped Grafana dashboard's queries, as Grafana would send them to Prometheus with every
 * template variable on "All", and a check that each one returns data.
 *
 * Pure: dashboardPanels (every panel with its PromQL targets, collapsed rows included),
 * templateVariables, grafanaIntervals, interpolate, unresolvedVariables, evaluateTarget.
 * I/O (through the PromQueryApi interface only): resolveVariables, checkDashboard.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { InstantResult, PromQueryApi, RangeSeries, SamplePair } from './prometheus.js';

export const DASHBOARD_PATH = fileURLToPath(
  new URL('../../../charts/smc-operator/dashboards/smc-operator.json', import.meta.url),
);

export class DashboardError extends Error {
  override readonly name = 'DashboardError';
}

const targetSchema = z.object({
  refId: z.string().optional(),
  expr: z.string().optional(),
  legendFormat: z.string().optional(),
  instant: z.boolean().optional(),
  range: z.boolean().optional(),
  hide: z.boolean().optional(),
});

interface RawPanel {
  id?: number | undefined;
  title?: string | undefined;
  type?: string | undefined;
  gridPos?: { x: number; y: number; w: number; h: number } | undefined;
  targets?: z.infer<typeof targetSchema>[] | undefined;
  panels?: RawPanel[] | undefined;
}

const panelSchema: z.ZodType<RawPanel> = z.lazy(() =>
  z.object({
    id: z.number().optional(),
    title: z.string().optional(),
    type: z.string().optional(),
    gridPos: z.object({ x: z.number(), y: z.number(), w: z.number(), h: z.number() }).optional(),
    targets: z.array(targetSchema).optional(),
    panels: z.array(panelSchema).optional(),
  }),
);

const variableSchema = z.object({
  name: z.string(),
  type: z.string(),
  query: z.union([z.string(), z.object({ query: z.string().optional() }).loose()]).optional(),
  includeAll: z.boolean().optional(),
  multi: z.boolean().optional(),
  allValue: z.string().nullable().optional(),
  current: z
    .object({
      text: z.union([z.string(), z.array(z.string())]).optional(),
      value: z.union([z.string(), z.array(z.string())]).optional(),
    })
    .optional(),
  options: z.array(z.object({ value: z.string() }).loose()).optional(),
});

const dashboardSchema = z.object({
  title: z.string(),
  uid: z.string().optional(),
  panels: z.array(panelSchema),
  templating: z.object({ list: z.array(variableSchema) }).optional(),
});

export type Dashboard = z.infer<typeof dashboardSchema>;
export type TemplateVariable = z.infer<typeof variableSchema>;

export function parseDashboard(json: unknown): Dashboard {
  const parsed = dashboardSchema.safeParse(json);
  if (!parsed.success) throw new DashboardError(`not a Grafana dashboard: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** The dashboard the chart ships (or another JSON file). */
export function loadDashboard(path = DASHBOARD_PATH): Dashboard {
  return parseDashboard(JSON.parse(readFileSync(path, 'utf8')));
}

export interface DashboardTarget {
  readonly refId: string;
  /** The expression as written in the dashboard, variables included. */
  readonly expr: string;
  readonly legendFormat: string | undefined;
  /** Grafana runs an instant query (only `instant`), else a range query. */
  readonly instant: boolean;
  readonly hidden: boolean;
}

export interface DashboardPanel {
  readonly id: number | undefined;
  readonly title: string;
  readonly type: string;
  /** Title of the row the panel sits in, if any. */
  readonly row: string | undefined;
  readonly gridPos: { x: number; y: number; w: number; h: number } | undefined;
  readonly targets: DashboardTarget[];
}

/**
 * Every non-row panel in display order, with the PromQL targets it has. A row's own `panels`
 * (collapsed rows) and nested panels are walked too; an expanded row's panels follow it at the
 * top level and belong to it until the next row.
 */
export function dashboardPanels(dashboard: Dashboard): DashboardPanel[] {
  const out: DashboardPanel[] = [];
  const walk = (panels: readonly RawPanel[], row: string | undefined): void => {
    let currentRow = row;
    for (const p of panels) {
      if (p.type === 'row') {
        currentRow = p.title ?? '';
        walk(p.panels ?? [], currentRow);
        continue;
      }
      const targets: DashboardTarget[] = [];
      (p.targets ?? []).forEach((t, i) => {
        if (t.expr === undefined) return;
        targets.push({
          refId: t.refId ?? String.fromCharCode(65 + i),
          expr: t.expr,
          legendFormat: t.legendFormat,
          instant: t.instant === true && t.range !== true,
          hidden: t.hide === true,
        });
      });
      out.push({
        id: p.id,
        title: p.title ?? '',
        type: p.type ?? '',
        row: currentRow,
        gridPos: p.gridPos,
        targets,
      });
      if (p.panels !== undefined) walk(p.panels, currentRow);
    }
  };
  walk(dashboard.panels, undefined);
  return out;
}

export function templateVariables(dashboard: Dashboard): TemplateVariable[] {
  return dashboard.templating?.list ?? [];
}

/** kbn.roundInterval of Grafana: the "nice" interval for a raw one (milliseconds). */
export function roundInterval(ms: number): number {
  const steps: [number, number][] = [
    [15, 10],
    [35, 20],
    [75, 50],
    [150, 100],
    [350, 200],
    [750, 500],
    [1_500, 1_000],
    [3_500, 2_000],
    [7_500, 5_000],
    [12_500, 10_000],
    [17_500, 15_000],
    [25_000, 20_000],
    [45_000, 30_000],
    [90_000, 60_000],
    [210_000, 120_000],
    [450_000, 300_000],
    [750_000, 600_000],
    [1_050_000, 900_000],
    [1_500_000, 1_200_000],
    [2_700_000, 1_800_000],
    [5_400_000, 3_600_000],
    [9_000_000, 7_200_000],
    [16_200_000, 10_800_000],
    [32_400_000, 21_600_000],
    [86_400_000, 43_200_000],
    [604_800_000, 86_400_000],
    [1_814_400_000, 604_800_000],
    [3_628_800_000, 2_592_000_000],
  ];
  for (const [limit, value] of steps) if (ms < limit) return value;
  return 31_536_000_000;
}

export interface Intervals {
  readonly intervalMs: number;
  readonly rateIntervalMs: number;
}

/**
 * $__interval and $__rate_interval as Grafana computes them for a time range: the range over the
 * data points, rounded, no lower than the data source's scrape interval; the rate interval is
 * max($__interval + scrape interval, 4 × scrape interval).
 */
export function grafanaIntervals(rangeMs: number, scrapeIntervalMs: number, maxDataPoints = 1000): Intervals {
  const intervalMs = Math.max(scrapeIntervalMs, roundInterval(rangeMs / maxDataPoints));
  return { intervalMs, rateIntervalMs: Math.max(intervalMs + scrapeIntervalMs, 4 * scrapeIntervalMs) };
}

/** A duration as Grafana writes it into PromQL (5s, 1m, 2h, 500ms). */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${Math.round(ms)}ms`;
}

/** What a variable expands to: one value, or several (joined as a regex alternation). */
export type VariableValue =
  { readonly kind: 'raw'; readonly value: string } | { readonly kind: 'values'; readonly values: string[] };

export interface Scope {
  readonly variables: ReadonlyMap<string, VariableValue>;
  readonly rangeMs: number;
  readonly intervals: Intervals;
  readonly from: Date;
  readonly to: Date;
}

/** Grafana's Prometheus data source escapes regex metacharacters in multi-value variables. */
function regexEscape(value: string): string {
  return value.replace(/[\\^$*+?.()|{}[\]]/g, '\\$&');
}

function formatValue(v: VariableValue, format: string | undefined): string {
  if (v.kind === 'raw') return v.value;
  const values = v.values;
  switch (format) {
    case 'csv':
      return values.join(',');
    case 'pipe':
      return values.join('|');
    case 'raw':
      return values.join(',');
    default:
      // Default format of the Prometheus data source: a regex alternation of escaped values.
      return values.length === 1 ? regexEscape(values[0] ?? '') : `(${values.map(regexEscape).join('|')})`;
  }
}

function builtin(name: string, scope: Scope): string | undefined {
  const { intervals, rangeMs } = scope;
  switch (name) {
    case '__interval':
      return formatDuration(intervals.intervalMs);
    case '__interval_ms':
      return String(intervals.intervalMs);
    case '__rate_interval':
      return formatDuration(intervals.rateIntervalMs);
    case '__rate_interval_ms':
      return String(intervals.rateIntervalMs);
    case '__range':
      return `${Math.round(rangeMs / 1000)}s`;
    case '__range_s':
      return String(Math.round(rangeMs / 1000));
    case '__range_ms':
      return String(rangeMs);
    case '__from':
      return String(scope.from.getTime());
    case '__to':
      return String(scope.to.getTime());
    default:
      return undefined;
  }
}

// Grafana's variable syntax: $var, [[var]] / [[var:format]], ${var} / ${var:format}.
const VARIABLE_RE = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}/g;

/** Replaces every known variable; unknown ones stay as written (see unresolvedVariables). */
export function interpolate(expr: string, scope: Scope): string {
  return expr.replace(
    VARIABLE_RE,
    (
      match,
      plain: string | undefined,
      bracket: string | undefined,
      bracketFmt: string | undefined,
      braced: string | undefined,
      bracedFmt: string | undefined,
    ) => {
      const name = plain ?? bracket ?? braced ?? '';
      const format = bracketFmt ?? bracedFmt;
      const b = builtin(name, scope);
      if (b !== undefined) return b;
      const v = scope.variables.get(name);
      return v === undefined ? match : formatValue(v, format);
    },
  );
}

/** Variable references left in an expression (each one would break the query). */
export function unresolvedVariables(expr: string): string[] {
  return [...expr.matchAll(VARIABLE_RE)].map((m) => m[0]);
}

function isAll(v: TemplateVariable): boolean {
  const value = v.current?.value;
  if (value === undefined) return v.includeAll === true;
  return Array.isArray(value) ? value.includes('$__all') : value === '$__all';
}

function variableQuery(v: TemplateVariable): string {
  if (typeof v.query === 'string') return v.query;
  const q = v.query?.['query'];
  return typeof q === 'string' ? q : '';
}

/**
 * Values of the variables that need no data source: All with an allValue, constants, custom
 * and textbox values, the current selection. Query variables on All without allValue are
 * returned in `needOptions` (their options come from Prometheus).
 */
export function staticVariableValues(
  variables: readonly TemplateVariable[],
  overrides: ReadonlyMap<string, VariableValue> = new Map(),
): { values: Map<string, VariableValue>; needOptions: TemplateVariable[] } {
  const values = new Map<string, VariableValue>();
  const needOptions: TemplateVariable[] = [];
  for (const v of variables) {
    const override = overrides.get(v.name);
    if (override !== undefined) {
      values.set(v.name, override);
      continue;
    }
    if (v.type === 'datasource') {
      // Only referenced by datasource uids, never inside PromQL.
      values.set(v.name, { kind: 'raw', value: variableQuery(v) });
      continue;
    }
    if (v.type === 'constant' || v.type === 'textbox') {
      values.set(v.name, { kind: 'raw', value: variableQuery(v) });
      continue;
    }
    if (isAll(v)) {
      if (v.allValue !== undefined && v.allValue !== null && v.allValue !== '') {
        // Grafana inserts a custom all value verbatim (no escaping).
        values.set(v.name, { kind: 'raw', value: v.allValue });
      } else if (v.type === 'custom') {
        values.set(v.name, {
          kind: 'values',
          values: variableQuery(v)
            .split(',')
            .map((s) => s.trim()),
        });
      } else if (v.options !== undefined && v.options.length > 0 && v.type !== 'query') {
        values.set(v.name, {
          kind: 'values',
          values: v.options.map((o) => o.value).filter((x) => x !== '$__all'),
        });
      } else {
        needOptions.push(v);
      }
      continue;
    }
    const current = v.current?.value;
    if (current !== undefined) {
      values.set(
        v.name,
        Array.isArray(current) ? { kind: 'values', values: current } : { kind: 'raw', value: current },
      );
    } else {
      needOptions.push(v);
    }
  }
  return { values, needOptions };
}

/** label_values(metric, label) / label_values(label) → the label and the optional series selector. */
export function parseLabelValuesQuery(
  query: string,
): { label: string; match: string | undefined } | undefined {
  const m = /^\s*label_values\(\s*(?:(.+?)\s*,\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(query);
  if (m === null || m[2] === undefined) return undefined;
  return { label: m[2], match: m[1] };
}

/**
 * Every variable's value for "All": static ones directly, query variables without an allValue
 * from Prometheus' label values (as Grafana's options would be).
 */
export async function resolveVariables(
  dashboard: Dashboard,
  prom: Pick<PromQueryApi, 'labelValues'>,
  scopeBase: Omit<Scope, 'variables'>,
  overrides: ReadonlyMap<string, VariableValue> = new Map(),
): Promise<Map<string, VariableValue>> {
  const { values, needOptions } = staticVariableValues(templateVariables(dashboard), overrides);
  for (const v of needOptions) {
    const q = parseLabelValuesQuery(interpolate(variableQuery(v), { ...scopeBase, variables: values }));
    if (q === undefined) {
      throw new DashboardError(
        `variable ${v.name}: cannot resolve query ${JSON.stringify(variableQuery(v))}`,
      );
    }
    const options = await prom.labelValues(q.label, q.match === undefined ? [] : [q.match]);
    // No options: Grafana would send an empty alternation, which matches nothing; so do we.
    values.set(v.name, { kind: 'values', values: options });
  }
  return values;
}

export type CheckStatus = 'ok' | 'empty' | 'error';

export interface TargetCheck {
  readonly refId: string;
  /** As written in the dashboard. */
  readonly rawExpr: string;
  /** As sent to Prometheus. */
  readonly expr: string;
  readonly legendFormat: string | undefined;
  readonly status: CheckStatus;
  /** Series returned (including all-NaN ones). */
  readonly series: number;
  /** Why the target is not ok. */
  readonly detail: string | undefined;
  /** Range query result (instant queries: one point per series), for rendering. */
  readonly data: RangeSeries[];
}

export interface PanelCheck {
  readonly id: number | undefined;
  readonly title: string;
  readonly type: string;
  readonly row: string | undefined;
  readonly gridPos: DashboardPanel['gridPos'];
  /** The worst of its targets' statuses (a panel without PromQL targets is an error). */
  readonly status: CheckStatus;
  readonly targets: TargetCheck[];
}

export interface DashboardCheck {
  readonly title: string;
  readonly from: Date;
  readonly to: Date;
  readonly stepSeconds: number;
  readonly panels: PanelCheck[];
}

const finite = (pair: SamplePair): boolean => Number.isFinite(Number(pair[1])) || /^[+-]Inf$/.test(pair[1]);

/** Status of one query result: data means at least one sample that is not NaN. */
export function evaluateTarget(series: readonly RangeSeries[]): {
  status: CheckStatus;
  detail: string | undefined;
} {
  if (series.length === 0) return { status: 'empty', detail: 'no series' };
  if (!series.some((s) => s.values.some(finite))) {
    return { status: 'empty', detail: `${series.length} series, every sample NaN` };
  }
  return { status: 'ok', detail: undefined };
}

function instantAsRange(r: InstantResult): RangeSeries[] {
  switch (r.resultType) {
    case 'vector':
      return r.result.map((s) => ({ metric: s.metric, values: [s.value] }));
    case 'matrix':
      return r.result;
    case 'scalar':
      return [{ metric: {}, values: [r.result] }];
    case 'string':
      return [];
  }
}

export interface CheckOptions {
  readonly dashboard?: Dashboard;
  /** Time range of the check, like the dashboard's time picker; default 10 minutes. */
  readonly rangeMs?: number;
  readonly end?: Date;
  /** The scrape interval the data source is configured with; default 5 s (the tests'). */
  readonly scrapeIntervalMs?: number;
  readonly maxDataPoints?: number;
  /** Values replacing "All" for some variables. */
  readonly overrides?: ReadonlyMap<string, VariableValue>;
}

/** Runs every target of every panel the way Grafana would and reports per panel. */
export async function checkDashboard(prom: PromQueryApi, opts: CheckOptions = {}): Promise<DashboardCheck> {
  const dashboard = opts.dashboard ?? loadDashboard();
  const rangeMs = opts.rangeMs ?? 10 * 60_000;
  const to = opts.end ?? new Date();
  const from = new Date(to.getTime() - rangeMs);
  const intervals = grafanaIntervals(rangeMs, opts.scrapeIntervalMs ?? 5_000, opts.maxDataPoints);
  const scopeBase = { rangeMs, intervals, from, to };
  const variables = await resolveVariables(dashboard, prom, scopeBase, opts.overrides);
  const scope: Scope = { ...scopeBase, variables };
  const stepSeconds = intervals.intervalMs / 1000;

  const panels: PanelCheck[] = [];
  for (const panel of dashboardPanels(dashboard)) {
    const targets: TargetCheck[] = [];
    for (const t of panel.targets) {
      const expr = interpolate(t.expr, scope);
      const base = { refId: t.refId, rawExpr: t.expr, expr, legendFormat: t.legendFormat };
      const left = unresolvedVariables(expr);
      if (left.length > 0) {
        targets.push({
          ...base,
          status: 'error',
          series: 0,
          detail: `unresolved ${left.join(', ')}`,
          data: [],
        });
        continue;
      }
      try {
        const data = t.instant
          ? instantAsRange(await prom.query(expr, to))
          : await prom.queryRange(expr, from, to, stepSeconds);
        targets.push({ ...base, ...evaluateTarget(data), series: data.length, data });
      } catch (e) {
        targets.push({ ...base, status: 'error', series: 0, detail: (e as Error).message, data: [] });
      }
    }
    const status: CheckStatus =
      targets.length === 0 || targets.some((t) => t.status === 'error')
        ? 'error'
        : targets.some((t) => t.status === 'empty')
          ? 'empty'
          : 'ok';
    panels.push({
      id: panel.id,
      title: panel.title,
      type: panel.type,
      row: panel.row,
      gridPos: panel.gridPos,
      status,
      targets,
    });
  }
  return { title: dashboard.title, from, to, stepSeconds, panels };
}

/** The panels that fail the check (any target empty or in error). */
export function failedPanels(check: DashboardCheck): PanelCheck[] {
  return check.panels.filter((p) => p.status !== 'ok');
}

/** One line per target, for test output and assertion messages. */
export function formatCheck(check: DashboardCheck): string {
  const lines: string[] = [];
  for (const p of check.panels) {
    if (p.targets.length === 0)
      lines.push(`${p.status.toUpperCase().padEnd(5)} ${p.title}: no PromQL target`);
    for (const t of p.targets) {
      const detail = t.detail === undefined ? '' : ` (${t.detail})`;
      lines.push(
        `${t.status.toUpperCase().padEnd(5)} ${p.title} [${t.refId}] ${t.series} series${detail}: ${t.expr}`,
      );
    }
  }
  return lines.join('\n');
}
