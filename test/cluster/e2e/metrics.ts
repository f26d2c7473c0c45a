// A sidecar's own /metrics (port 15190, reached from the host over the pod network), reduced to
// what the cluster test asserts: connections by outcome/reason and bytes by path.
import { SIDECAR_DEFAULT_PORTS } from '../../../operator/src/api/sidecar.js';
import { parseMetrics, type Series } from '../../lab/vm-part.js';
import { httpGet } from './kube.js';

export const SIDECAR_METRICS_PORT = SIDECAR_DEFAULT_PORTS.metrics;

export async function sidecarMetrics(podIp: string): Promise<Series> {
  return parseMetrics(await httpGet(`http://${podIp}:${SIDECAR_METRICS_PORT}/metrics`));
}

function labelsOf(series: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of series.matchAll(/(\w+)="([^"]*)"/g)) if (m[1] && m[2] !== undefined) out.set(m[1], m[2]);
  return out;
}

/** Sum of the series of `name` whose labels include all of `match`. */
export function sum(s: Series, name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const [k, v] of s) {
    if (k !== name && !k.startsWith(`${name}{`)) continue;
    const labels = labelsOf(k);
    if (Object.entries(match).every(([l, want]) => labels.get(l) === want)) total += v;
  }
  return total;
}

/** "outcome/reason" -> count of the series that counted anything, for reports. */
export function outcomes(s: Series): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of s) {
    if (!k.startsWith('smc_connections_total{') || v === 0) continue;
    const l = labelsOf(k);
    const key = `${l.get('outcome') ?? '?'}/${l.get('reason') ?? '?'}`;
    out[key] = (out[key] ?? 0) + v;
  }
  return out;
}
