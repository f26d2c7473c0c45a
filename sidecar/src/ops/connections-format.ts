import type { ConnectionInfo, ConnectionsReport } from './connections.js';

/** Columns of `smc connections` (smcss-like); see docs/connections.md. */
export const TABLE_COLUMNS = [
  'ID',
  'DIR',
  'LOCAL',
  'PEER',
  'MODE',
  'OUTCOME/REASON',
  'RDMA TX/RX',
  'TCP TX/RX',
  'LINK',
  'AGE',
  'STATE',
] as const;

const UNITS = ['K', 'M', 'G', 'T', 'P'] as const;

/** 1023 → "1023", 1536 → "1.5K", 100000 → "97K" (powers of 1024, rounded down). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) return String(Math.max(0, Math.trunc(n)));
  let v = n;
  let unit = '';
  for (const u of UNITS) {
    v /= 1024;
    unit = u;
    if (v < 1024) break;
  }
  return v < 10 ? `${(Math.floor(v * 10) / 10).toFixed(1)}${unit}` : `${Math.floor(v)}${unit}`;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** 850 → "850ms", 4200 → "4.2s", 75000 → "1m15s", 7_500_000 → "2h05m", 2 days → "2d00h". */
export function formatAge(ms: number): string {
  const t = Math.max(0, Math.floor(ms));
  if (t < 1000) return `${t}ms`;
  const s = Math.floor(t / 1000);
  if (s < 10) return `${(Math.floor(t / 100) / 10).toFixed(1)}s`;
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${pad2(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${pad2(m % 60)}m`;
  return `${Math.floor(h / 24)}d${pad2(h % 24)}h`;
}

function direction(c: ConnectionInfo): string {
  if (c.direction === 'outbound') return 'out';
  return c.listener === 'smc' ? 'in/smc' : 'in';
}

function outcome(c: ConnectionInfo): string {
  if (c.outcome === null) return '-';
  let text: string = c.outcome;
  if (c.outcome !== 'upgraded') text += c.reason === null ? " (peer's choice)" : `/${c.reason}`;
  if (c.decline !== null) text += ` ${c.decline.hex}`;
  return text;
}

function row(c: ConnectionInfo): string[] {
  return [
    c.id,
    direction(c),
    c.local ?? '-',
    c.peer ?? '-',
    c.mode,
    outcome(c),
    `${formatBytes(c.bytes.rdma.tx)}/${formatBytes(c.bytes.rdma.rx)}`,
    `${formatBytes(c.bytes.tcp.tx)}/${formatBytes(c.bytes.tcp.rx)}`,
    c.link?.id ?? '-',
    formatAge(c.ageMs),
    c.closed ? 'closed' : 'open',
  ];
}

/** Aligned columns, two spaces apart, no trailing blanks. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [header, ...rows].map(line).join('\n');
}

/** The `smc connections` table: one row per connection, then a summary line. */
export function formatConnectionsTable(report: ConnectionsReport): string {
  const summary = `${report.live} open, ${report.closed} recently closed (the last ${report.closedCapacity} are kept)`;
  if (report.connections.length === 0) return `no connections\n${summary}\n`;
  return `${formatTable(TABLE_COLUMNS, report.connections.map(row))}\n${summary}\n`;
}
