/**
 * A static, self-contained HTML page of a dashboard check: each panel laid out as in Grafana
 * (24-column grid), its query results as inline SVG line charts, panels without data in red.
 * No external JS or CSS, so the file can be opened from a CI artifact as is.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DashboardCheck, PanelCheck, TargetCheck } from './dashboard.js';
import type { Labels } from './prometheus.js';

const COLORS = [
  '#7eb26d',
  '#eab839',
  '#6ed0e0',
  '#ef843c',
  '#e24d42',
  '#1f78c1',
  '#ba43a9',
  '#705da0',
  '#508642',
  '#cca300',
];
const WIDTH = 600;
const HEIGHT = 200;
const PAD = { left: 56, right: 8, top: 8, bottom: 22 };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Grafana's legend: `{{label}}` replaced by the series' label values; default: all labels. */
export function legendName(legendFormat: string | undefined, metric: Labels): string {
  if (legendFormat !== undefined && legendFormat !== '' && legendFormat !== '__auto') {
    return legendFormat.replace(/\{\{\s*(.+?)\s*\}\}/g, (_m, name: string) => metric[name] ?? '');
  }
  const entries = Object.entries(metric);
  if (entries.length === 0) return 'value';
  const name = metric['__name__'] ?? '';
  const rest = entries.filter(([k]) => k !== '__name__').map(([k, v]) => `${k}="${v}"`);
  return `${name}{${rest.join(', ')}}`;
}

/** Compact number for axis labels and stat values. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.001 || a >= 1e6)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

function clock(d: Date): string {
  return d.toISOString().slice(11, 19);
}

interface Line {
  readonly name: string;
  readonly color: string;
  readonly points: [number, number][];
}

function linesOf(targets: readonly TargetCheck[]): Line[] {
  const lines: Line[] = [];
  for (const t of targets) {
    for (const s of t.data) {
      const color = COLORS[lines.length % COLORS.length] ?? '#888';
      lines.push({
        name: legendName(t.legendFormat, s.metric),
        color,
        points: s.values.map(([ts, v]) => [ts, Number(v)]),
      });
    }
  }
  return lines;
}

/** An SVG line chart; NaN samples break a line rather than drop to zero. */
export function lineChartSvg(lines: readonly Line[], from: Date, to: Date): string {
  const x0 = from.getTime() / 1000;
  const x1 = Math.max(to.getTime() / 1000, x0 + 1);
  const ys = lines.flatMap((l) => l.points.map(([, y]) => y)).filter(Number.isFinite);
  let y0 = ys.length > 0 ? Math.min(...ys) : 0;
  let y1 = ys.length > 0 ? Math.max(...ys) : 1;
  if (y0 > 0) y0 = 0;
  if (y1 === y0) y1 = y0 + 1;
  const w = WIDTH - PAD.left - PAD.right;
  const h = HEIGHT - PAD.top - PAD.bottom;
  const sx = (x: number): number => PAD.left + ((x - x0) / (x1 - x0)) * w;
  const sy = (y: number): number => PAD.top + h - ((y - y0) / (y1 - y0)) * h;
  const parts: string[] = [];
  for (const frac of [0, 0.5, 1]) {
    const y = y0 + frac * (y1 - y0);
    const py = sy(y).toFixed(1);
    parts.push(`<line x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${py}" y2="${py}" stroke="#333" />`);
    parts.push(
      `<text x="${PAD.left - 4}" y="${py}" text-anchor="end" dominant-baseline="middle">${escapeHtml(formatValue(y))}</text>`,
    );
  }
  parts.push(`<text x="${PAD.left}" y="${HEIGHT - 6}">${clock(from)}</text>`);
  parts.push(`<text x="${WIDTH - PAD.right}" y="${HEIGHT - 6}" text-anchor="end">${clock(to)}</text>`);
  for (const line of lines) {
    let segment: string[] = [];
    const flush = (): void => {
      if (segment.length === 1) {
        const [cx, cy] = (segment[0] ?? '0,0').split(',');
        parts.push(`<circle cx="${cx}" cy="${cy}" r="2" fill="${line.color}" />`);
      } else if (segment.length > 1) {
        parts.push(
          `<polyline fill="none" stroke="${line.color}" stroke-width="1.5" points="${segment.join(' ')}" />`,
        );
      }
      segment = [];
    };
    for (const [x, y] of line.points) {
      if (Number.isFinite(y)) segment.push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
      else flush();
    }
    flush();
  }
  return `<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" xmlns="http://www.w3.org/2000/svg" role="img">${parts.join('')}</svg>`;
}

function lastValue(lines: readonly Line[]): number | undefined {
  let best: [number, number] | undefined;
  for (const l of lines) {
    for (const p of l.points) if (Number.isFinite(p[1]) && (best === undefined || p[0] >= best[0])) best = p;
  }
  return best?.[1];
}

function panelHtml(p: PanelCheck, from: Date, to: Date): string {
  const lines = linesOf(p.targets);
  const span = Math.min(24, Math.max(4, p.gridPos?.w ?? 12));
  const failed = p.status !== 'ok';
  const body: string[] = [];
  if (p.type === 'stat') {
    const v = lastValue(lines);
    body.push(`<div class="stat">${v === undefined ? 'No data' : escapeHtml(formatValue(v))}</div>`);
  }
  body.push(lineChartSvg(lines, from, to));
  if (lines.length > 0) {
    body.push(
      `<ul class="legend">${lines
        .map((l) => `<li><span style="background:${l.color}"></span>${escapeHtml(l.name)}</li>`)
        .join('')}</ul>`,
    );
  }
  const problems = p.targets.filter((t) => t.status !== 'ok');
  if (p.targets.length === 0) body.push('<p class="problem">No PromQL target</p>');
  for (const t of problems) {
    body.push(
      `<p class="problem">${escapeHtml(`${t.refId}: ${t.status}${t.detail === undefined ? '' : ` (${t.detail})`}`)}</p>`,
    );
  }
  body.push(
    `<details><summary>Queries</summary>${p.targets
      .map((t) => `<pre>${escapeHtml(`[${t.refId}] ${t.series} series, ${t.status}\n${t.expr}`)}</pre>`)
      .join('')}</details>`,
  );
  return `<section class="panel${failed ? ' failed' : ''}" style="grid-column: span ${span}"><h3>${escapeHtml(
    p.title,
  )}${failed ? ` <span class="badge">${p.status.toUpperCase()}</span>` : ''}</h3>${body.join('')}</section>`;
}

const STYLE = `
body{background:#111217;color:#ccccdc;font:13px/1.4 system-ui,sans-serif;margin:16px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:20px 0 8px;grid-column:1/-1}
h3{font-size:13px;margin:0 0 6px}.meta{color:#8e8ea0;margin-bottom:12px}
.grid{display:grid;grid-template-columns:repeat(24,1fr);gap:8px}
.panel{background:#181b1f;border:1px solid #2c3235;border-radius:4px;padding:8px;min-width:0}
.panel.failed{border:2px solid #e02f44;background:#2a1316}.badge{background:#e02f44;color:#fff;border-radius:3px;padding:0 4px;font-size:11px}
svg{width:100%;height:auto;font-size:10px;fill:#8e8ea0}.stat{font-size:28px;font-weight:600;color:#7eb26d}
.legend{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:4px 12px}
.legend span{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
.problem{color:#ff7383;margin:4px 0}pre{white-space:pre-wrap;word-break:break-all;color:#9fa7b3;margin:4px 0}
.summary.bad{color:#ff7383}.summary.good{color:#7eb26d}`;

/** The whole page. */
export function renderCheckHtml(check: DashboardCheck, opts: { subtitle?: string } = {}): string {
  const failed = check.panels.filter((p) => p.status !== 'ok');
  const sections: string[] = [];
  let row: string | undefined;
  for (const p of check.panels) {
    if (p.row !== row) {
      row = p.row;
      if (row !== undefined) sections.push(`<h2>${escapeHtml(row)}</h2>`);
    }
    sections.push(panelHtml(p, check.from, check.to));
  }
  const summary =
    failed.length === 0
      ? `<p class="summary good">All ${check.panels.length} panels have data.</p>`
      : `<p class="summary bad">${failed.length} of ${check.panels.length} panels without data: ${failed
          .map((p) => escapeHtml(p.title))
          .join(', ')}</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(check.title)}</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(check.title)}</h1>
<div class="meta">${escapeHtml(`${check.from.toISOString()} – ${check.to.toISOString()}, step ${check.stepSeconds}s`)}${
    opts.subtitle === undefined ? '' : ` · ${escapeHtml(opts.subtitle)}`
  }</div>
${summary}
<div class="grid">${sections.join('\n')}</div>
</body></html>
`;
}

/** Writes the page to `path` (directories created) and returns the path. */
export async function writeCheckHtml(
  path: string,
  check: DashboardCheck,
  opts: { subtitle?: string } = {},
): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, renderCheckHtml(check, opts));
  return path;
}
