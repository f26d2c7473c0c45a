// The static HTML page of a dashboard check.
import { describe, expect, it } from 'vitest';
import type { DashboardCheck } from './dashboard.js';
import { escapeHtml, legendName, lineChartSvg, renderCheckHtml } from './render.js';

const from = new Date('2025-01-01T00:00:00Z');
const to = new Date('2025-01-01T00:10:00Z');

const check: DashboardCheck = {
  title: 'SMC-R <test>',
  from,
  to,
  stepSeconds: 5,
  panels: [
    {
      id: 2,
      title: 'Connections by outcome',
      type: 'timeseries',
      row: 'Sidecars',
      gridPos: { x: 0, y: 0, w: 12, h: 8 },
      status: 'ok',
      targets: [
        {
          refId: 'A',
          rawExpr: 'x',
          expr: 'sum by (outcome) (rate(smc_connections_total[20s]))',
          legendFormat: '{{outcome}}',
          status: 'ok',
          series: 1,
          detail: undefined,
          data: [
            {
              metric: { outcome: 'upgraded' },
              values: [
                [from.getTime() / 1000, '1'],
                [to.getTime() / 1000, '3'],
              ],
            },
          ],
        },
      ],
    },
    {
      id: 4,
      title: 'Fallbacks by reason',
      type: 'timeseries',
      row: 'Sidecars',
      gridPos: { x: 12, y: 0, w: 12, h: 8 },
      status: 'empty',
      targets: [
        {
          refId: 'A',
          rawExpr: 'y',
          expr: 'sum by (reason) (rate(smc_connections_total{outcome="fallback"}[20s]))',
          legendFormat: '{{reason}}',
          status: 'empty',
          series: 0,
          detail: 'no series',
          data: [],
        },
      ],
    },
  ],
};

describe('renderCheckHtml', () => {
  const html = renderCheckHtml(check, { subtitle: 'run 1' });

  it('is one self-contained page with every panel and a chart per panel', () => {
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<script|<link|src="http|href="http/);
    expect(html).toContain('Connections by outcome');
    expect(html).toContain('Fallbacks by reason');
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html).toContain('<polyline');
    expect(html).toContain('upgraded');
    expect(html).toContain('SMC-R &#60;test&#62;');
    expect(html).toContain('<h2>Sidecars</h2>');
  });

  it('flags panels without data in red with the reason', () => {
    expect(html).toContain('class="panel failed"');
    expect(html.match(/class="panel failed"/g)).toHaveLength(1);
    expect(html).toContain('A: empty (no series)');
    expect(html).toContain('1 of 2 panels without data: Fallbacks by reason');
  });
});

describe('pieces', () => {
  it('formats legends like Grafana', () => {
    expect(legendName('{{path}} {{direction}}', { path: 'rdma', direction: 'tx' })).toBe('rdma tx');
    expect(legendName(undefined, { __name__: 'up', job: 'x' })).toBe('up{job="x"}');
    expect(legendName(undefined, {})).toBe('value');
  });

  it('breaks lines at NaN', () => {
    const svg = lineChartSvg(
      [
        {
          name: 'a',
          color: '#fff',
          points: [
            [1, 1],
            [2, 2],
            [3, Number.NaN],
            [4, 1],
            [5, 2],
          ],
        },
      ],
      new Date(0),
      new Date(6000),
    );
    expect(svg.match(/<polyline/g)).toHaveLength(2);
  });

  it('escapes HTML', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
  });
});
