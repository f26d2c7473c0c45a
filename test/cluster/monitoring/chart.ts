/**
 * Renders the Helm chart with `helm template` and returns the monitoring objects it ships (the
 * ServiceMonitor and PodMonitor of templates/servicemonitor.yaml), so the test Prometheus scrapes
 * exactly what the chart selects instead of a hand-written copy of it.
 */
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadAllYaml } from '@kubernetes/client-node';
import { z } from 'zod';
import {
  buildScript,
  expectedBinaries,
  isExecutable,
  readVersions,
} from '../../apiserver/harness/binaries.js';

export const CHART_DIR = fileURLToPath(new URL('../../../charts/smc-operator', import.meta.url));

export class ChartRenderError extends Error {
  override readonly name = 'ChartRenderError';
}

const labelSelectorSchema = z.object({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(
      z.object({
        key: z.string(),
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});

const namespaceSelectorSchema = z.object({
  any: z.boolean().optional(),
  matchNames: z.array(z.string()).optional(),
});

/** monitoring.coreos.com/v1 RelabelConfig (an endpoint's `relabelings`). */
const relabelingSchema = z.object({
  sourceLabels: z.array(z.string()).optional(),
  separator: z.string().optional(),
  targetLabel: z.string().optional(),
  regex: z.string().optional(),
  replacement: z.string().optional(),
  action: z
    .enum(['replace', 'keep', 'drop', 'labelmap', 'labeldrop', 'labelkeep', 'Replace', 'Keep', 'Drop'])
    .optional(),
});

const endpointSchema = z.object({
  port: z.string().optional(),
  path: z.string().optional(),
  scheme: z.string().optional(),
  interval: z.string().optional(),
  scrapeTimeout: z.string().optional(),
  relabelings: z.array(relabelingSchema).optional(),
});

const metadataSchema = z.object({ name: z.string(), namespace: z.string() });

export const serviceMonitorSchema = z.object({
  apiVersion: z.literal('monitoring.coreos.com/v1'),
  kind: z.literal('ServiceMonitor'),
  metadata: metadataSchema,
  spec: z.object({
    jobLabel: z.string().optional(),
    /** Service labels copied onto the series. */
    targetLabels: z.array(z.string()).optional(),
    /** Pod labels copied onto the series. */
    podTargetLabels: z.array(z.string()).optional(),
    namespaceSelector: namespaceSelectorSchema.optional(),
    selector: labelSelectorSchema,
    endpoints: z.array(endpointSchema),
  }),
});

export const podMonitorSchema = z.object({
  apiVersion: z.literal('monitoring.coreos.com/v1'),
  kind: z.literal('PodMonitor'),
  metadata: metadataSchema,
  spec: z.object({
    jobLabel: z.string().optional(),
    /** Pod labels copied onto the series. */
    podTargetLabels: z.array(z.string()).optional(),
    namespaceSelector: namespaceSelectorSchema.optional(),
    selector: labelSelectorSchema,
    podMetricsEndpoints: z.array(endpointSchema),
  }),
});

export type LabelSelector = z.infer<typeof labelSelectorSchema>;
export type NamespaceSelector = z.infer<typeof namespaceSelectorSchema>;
export type MonitorEndpoint = z.infer<typeof endpointSchema>;
export type Relabeling = z.infer<typeof relabelingSchema>;
export type ServiceMonitor = z.infer<typeof serviceMonitorSchema>;
export type PodMonitor = z.infer<typeof podMonitorSchema>;

export interface Monitors {
  readonly serviceMonitors: ServiceMonitor[];
  readonly podMonitors: PodMonitor[];
}

const kindSchema = z.object({ kind: z.string() });

/** Picks and validates the ServiceMonitors and PodMonitors among rendered chart objects. */
export function monitorsOf(objects: readonly unknown[]): Monitors {
  const serviceMonitors: ServiceMonitor[] = [];
  const podMonitors: PodMonitor[] = [];
  for (const obj of objects) {
    const kind = kindSchema.safeParse(obj);
    if (!kind.success) continue;
    if (kind.data.kind === 'ServiceMonitor') serviceMonitors.push(parseMonitor(serviceMonitorSchema, obj));
    if (kind.data.kind === 'PodMonitor') podMonitors.push(parseMonitor(podMonitorSchema, obj));
  }
  return { serviceMonitors, podMonitors };
}

function parseMonitor<T>(schema: z.ZodType<T>, obj: unknown): T {
  const parsed = schema.safeParse(obj);
  if (!parsed.success) {
    throw new ChartRenderError(`unexpected monitor object in the chart: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/** Splits `helm template` output into objects; empty documents (comments only) are skipped. */
export function parseManifests(text: string): unknown[] {
  const out: unknown[] = [];
  for (const doc of text.split(/^---[ \t]*$/m)) {
    const meaningful = doc.split('\n').some((line) => line.trim() !== '' && !line.trim().startsWith('#'));
    if (!meaningful) continue;
    const objects: unknown[] = loadAllYaml(doc);
    for (const o of objects) if (o !== null && o !== undefined) out.push(o);
  }
  return out;
}

export interface RenderOptions {
  /** Release name; default smc-operator (the object names then carry no prefix). */
  readonly release?: string;
  /** Release namespace; default smc-system. */
  readonly namespace?: string;
  /** Extra `--set` assignments, e.g. `nodeAgent.enabled=false`. */
  readonly set?: readonly string[];
  /** Extra values files. */
  readonly valuesFiles?: readonly string[];
  /** Path of the helm binary; default: the one test/apiserver/tools builds (built when missing). */
  readonly helm?: string;
}

/**
 * `helm template` of the chart with the ServiceMonitor/PodMonitor switched on (they are off by
 * default because they need the Prometheus Operator CRDs), parsed into objects.
 */
export async function renderChart(opts: RenderOptions = {}): Promise<unknown[]> {
  const helm = opts.helm ?? (await ensureHelm());
  const args = [
    'template',
    opts.release ?? 'smc-operator',
    CHART_DIR,
    '--namespace',
    opts.namespace ?? 'smc-system',
    // helm built from source defaults to an old Kubernetes version for offline rendering.
    '--kube-version',
    readVersions().kubernetes.replace(/^v/, ''),
    '--set',
    'serviceMonitor.enabled=true',
  ];
  for (const s of opts.set ?? []) args.push('--set', s);
  for (const f of opts.valuesFiles ?? []) args.push('-f', f);
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(helm, args, { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, out, stderr) => {
      if (err) reject(new ChartRenderError(`helm template failed: ${stderr || err.message}`));
      else resolve(out);
    });
  });
  return parseManifests(stdout);
}

/** The rendered chart's monitors, for building the Prometheus configuration. */
export async function renderMonitors(opts: RenderOptions = {}): Promise<Monitors> {
  return monitorsOf(await renderChart(opts));
}

/**
 * Path of the pinned helm binary, built with build-binaries.sh when missing. Only helm is built
 * (not kube-apiserver/etcd as ensureBinaries would), so rendering stays cheap.
 */
export async function ensureHelm(): Promise<string> {
  const helm = expectedBinaries().helm;
  if (isExecutable(helm)) return helm;
  if (process.env['HELM_BIN']) throw new ChartRenderError(`HELM_BIN=${helm} is not an executable file`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('bash', [buildScript, 'helm'], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new ChartRenderError(`${buildScript} helm failed (${signal ?? `exit ${code}`})`));
    });
  });
  if (!isExecutable(helm)) throw new ChartRenderError(`build finished but helm is missing at ${helm}`);
  return helm;
}
