/**
 * A Prometheus server for the tests: Debian's `prometheus` binary with a given configuration, a
 * temporary TSDB and a loopback port, and a typed client for the parts of its HTTP API the tests
 * use (instant and range queries, targets, label values).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

/** $PROMETHEUS_BIN, else the Debian package's binary. */
export function prometheusBinary(): string {
  const env = process.env['PROMETHEUS_BIN'];
  return env !== undefined && env !== '' ? env : '/usr/bin/prometheus';
}

export function prometheusAvailable(binary = prometheusBinary()): boolean {
  try {
    accessSync(binary, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The binary is missing, exited during start-up, or did not become ready in time. */
export class PrometheusStartError extends Error {
  override readonly name = 'PrometheusStartError';
  constructor(
    message: string,
    /** The end of Prometheus' log, which says why (bad config, port in use, ...). */
    readonly logTail: string,
  ) {
    super(logTail === '' ? message : `${message}\n--- prometheus log (tail) ---\n${logTail}`);
  }
}

/** The HTTP API answered with an error (bad PromQL, timeout) or something unexpected. */
export class PrometheusApiError extends Error {
  override readonly name = 'PrometheusApiError';
  constructor(
    message: string,
    readonly status: number,
    /** Prometheus' errorType (bad_data, execution, timeout, ...) when it gave one. */
    readonly errorType: string | undefined,
  ) {
    super(message);
  }
}

export type Labels = Record<string, string>;
/** [unix seconds, value as Prometheus formats it ("NaN", "+Inf", "1.5")]. */
export type SamplePair = [number, string];

export interface InstantSeries {
  readonly metric: Labels;
  readonly value: SamplePair;
}
export interface RangeSeries {
  readonly metric: Labels;
  readonly values: SamplePair[];
}

export type InstantResult =
  | { readonly resultType: 'vector'; readonly result: InstantSeries[] }
  | { readonly resultType: 'scalar'; readonly result: SamplePair }
  | { readonly resultType: 'string'; readonly result: SamplePair }
  | { readonly resultType: 'matrix'; readonly result: RangeSeries[] };

export interface Target {
  readonly scrapePool: string;
  readonly scrapeUrl: string;
  readonly health: 'up' | 'down' | 'unknown';
  readonly labels: Labels;
  readonly discoveredLabels: Labels;
  readonly lastError: string;
  readonly lastScrape: string;
}

export interface Targets {
  readonly active: Target[];
  /** Discovered but dropped by relabeling (counted: the list can be long). */
  readonly droppedCount: number;
}

const labelsSchema = z.record(z.string(), z.string());
const sampleSchema = z.tuple([z.number(), z.string()]);
const instantSeriesSchema = z.object({ metric: labelsSchema, value: sampleSchema });
const rangeSeriesSchema = z.object({ metric: labelsSchema, values: z.array(sampleSchema) });
const instantDataSchema = z.discriminatedUnion('resultType', [
  z.object({ resultType: z.literal('vector'), result: z.array(instantSeriesSchema) }),
  z.object({ resultType: z.literal('scalar'), result: sampleSchema }),
  z.object({ resultType: z.literal('string'), result: sampleSchema }),
  z.object({ resultType: z.literal('matrix'), result: z.array(rangeSeriesSchema) }),
]);
const rangeDataSchema = z.object({ resultType: z.literal('matrix'), result: z.array(rangeSeriesSchema) });
const targetSchema = z.object({
  scrapePool: z.string(),
  scrapeUrl: z.string(),
  health: z.enum(['up', 'down', 'unknown']),
  labels: labelsSchema,
  discoveredLabels: labelsSchema,
  lastError: z.string(),
  lastScrape: z.string(),
});
const targetsDataSchema = z.object({
  activeTargets: z.array(targetSchema),
  droppedTargets: z.array(z.unknown()),
});
const labelValuesSchema = z.array(z.string());
const envelopeSchema = z.object({
  status: z.enum(['success', 'error']),
  data: z.unknown().optional(),
  errorType: z.string().optional(),
  error: z.string().optional(),
});

/** The query side of the API, which dashboard.ts needs (and fakes in unit tests). */
export interface PromQueryApi {
  query(expr: string, time?: Date): Promise<InstantResult>;
  queryRange(expr: string, start: Date, end: Date, stepSeconds: number): Promise<RangeSeries[]>;
  labelValues(label: string, match?: readonly string[]): Promise<string[]>;
}

/** A client for a Prometheus at `baseUrl` (http://host:port). */
export class PrometheusClient implements PromQueryApi {
  constructor(readonly baseUrl: string) {}

  private async get(path: string, params: [string, string][]): Promise<unknown> {
    const url = new URL(path, this.baseUrl);
    for (const [k, v] of params) url.searchParams.append(k, v);
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    } catch (e) {
      throw new PrometheusApiError(`GET ${url.pathname}: ${(e as Error).message}`, 0, undefined);
    }
    const text = await res.text();
    let body: z.infer<typeof envelopeSchema>;
    try {
      body = envelopeSchema.parse(JSON.parse(text));
    } catch {
      throw new PrometheusApiError(
        `GET ${url.pathname}: HTTP ${res.status}: ${text.slice(0, 500)}`,
        res.status,
        undefined,
      );
    }
    if (body.status !== 'success') {
      throw new PrometheusApiError(
        `GET ${url.pathname}: ${body.errorType ?? 'error'}: ${body.error ?? text.slice(0, 500)}`,
        res.status,
        body.errorType,
      );
    }
    return body.data;
  }

  private static decode<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      throw new PrometheusApiError(
        `${what}: unexpected response: ${z.prettifyError(parsed.error)}`,
        200,
        undefined,
      );
    }
    return parsed.data;
  }

  async query(expr: string, time?: Date): Promise<InstantResult> {
    const params: [string, string][] = [['query', expr]];
    if (time !== undefined) params.push(['time', String(time.getTime() / 1000)]);
    return PrometheusClient.decode(instantDataSchema, await this.get('/api/v1/query', params), 'query');
  }

  async queryRange(expr: string, start: Date, end: Date, stepSeconds: number): Promise<RangeSeries[]> {
    const data = await this.get('/api/v1/query_range', [
      ['query', expr],
      ['start', String(start.getTime() / 1000)],
      ['end', String(end.getTime() / 1000)],
      ['step', String(stepSeconds)],
    ]);
    return PrometheusClient.decode(rangeDataSchema, data, 'query_range').result;
  }

  async labelValues(label: string, match: readonly string[] = []): Promise<string[]> {
    const data = await this.get(
      `/api/v1/label/${encodeURIComponent(label)}/values`,
      match.map((m) => ['match[]', m]),
    );
    return PrometheusClient.decode(labelValuesSchema, data, 'label values');
  }

  async targets(): Promise<Targets> {
    const data = PrometheusClient.decode(targetsDataSchema, await this.get('/api/v1/targets', []), 'targets');
    return { active: data.activeTargets, droppedCount: data.droppedTargets.length };
  }

  /** Polls `expr` until it returns at least one series (e.g. the first scrape landed). */
  async waitForSeries(expr: string, timeoutMs = 60_000): Promise<InstantSeries[]> {
    const deadline = Date.now() + timeoutMs;
    let last: string;
    for (;;) {
      try {
        const r = await this.query(expr);
        if (r.resultType === 'vector' && r.result.length > 0) return r.result;
        last = `${r.resultType} with no series`;
      } catch (e) {
        last = (e as Error).message;
      }
      if (Date.now() > deadline) {
        throw new PrometheusApiError(
          `no series for ${expr} within ${timeoutMs} ms (last: ${last})`,
          0,
          undefined,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export interface StartOptions {
  /** prometheus.yml content. */
  readonly config: string;
  readonly binary?: string;
  /** Default 60 s. */
  readonly readyTimeoutMs?: number;
  /** Keep the TSDB and config directory after stop() (for looking at a failure). */
  readonly keepData?: boolean;
}

export interface Prometheus extends PromQueryApi {
  readonly url: string;
  readonly client: PrometheusClient;
  /** The temporary directory with prometheus.yml and the TSDB. */
  readonly dir: string;
  targets(): Promise<Targets>;
  waitForSeries(expr: string, timeoutMs?: number): Promise<InstantSeries[]>;
  /** Prometheus' own log so far (stderr). */
  log(): string;
  stop(): Promise<void>;
}

const LOG_LIMIT = 256 * 1024;

/** A free loopback port (a race with other processes is possible; start() retries once). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function waitReady(
  url: string,
  child: ChildProcess,
  timeoutMs: number,
): Promise<'ready' | 'exited' | 'timeout'> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return 'exited';
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return 'ready';
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return 'timeout';
}

/** Starts Prometheus and resolves once /-/ready answers 200. */
export async function startPrometheus(opts: StartOptions): Promise<Prometheus> {
  const binary = opts.binary ?? prometheusBinary();
  if (!prometheusAvailable(binary)) {
    throw new PrometheusStartError(`${binary} is not an executable file (apt-get install prometheus)`, '');
  }
  const dir = await mkdtemp(join(tmpdir(), 'smc-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, opts.config);
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return await launch(binary, dir, configFile, opts);
      } catch (e) {
        // Another process may have taken the port between freePort() and Prometheus' bind.
        const portTaken = e instanceof PrometheusStartError && /address already in use/.test(e.logTail);
        if (!portTaken || attempt >= 3) throw e;
      }
    }
  } catch (e) {
    if (opts.keepData !== true) await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

async function launch(
  binary: string,
  dir: string,
  configFile: string,
  opts: StartOptions,
): Promise<Prometheus> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = join(dir, `data-${port}`);
  const child = spawn(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1d',
      // Debian's default points at /etc/prometheus/console*, which tests do not need.
      `--web.console.templates=${dir}`,
      `--web.console.libraries=${dir}`,
      '--log.level=info',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const append = (chunk: Buffer): void => {
    log += chunk.toString('utf8');
    if (log.length > LOG_LIMIT) log = log.slice(log.length - LOG_LIMIT);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const tail = (): string => log.split('\n').slice(-30).join('\n').trim();

  const outcome = await Promise.race([
    waitReady(url, child, opts.readyTimeoutMs ?? 60_000),
    spawnError.then((e) => e),
  ]);
  if (outcome !== 'ready') {
    child.kill('SIGKILL');
    await exited(child);
    const why =
      outcome instanceof Error
        ? `cannot run ${binary}: ${outcome.message}`
        : outcome === 'exited'
          ? `prometheus exited during start-up (${child.signalCode ?? `exit ${child.exitCode}`})`
          : `prometheus was not ready within ${opts.readyTimeoutMs ?? 60_000} ms`;
    throw new PrometheusStartError(why, tail());
  }

  const client = new PrometheusClient(url);
  let stopped: Promise<void> | undefined;
  return {
    url,
    client,
    dir,
    query: (expr, time) => client.query(expr, time),
    queryRange: (expr, start, end, step) => client.queryRange(expr, start, end, step),
    labelValues: (label, match) => client.labelValues(label, match),
    targets: () => client.targets(),
    waitForSeries: (expr, timeoutMs) => client.waitForSeries(expr, timeoutMs),
    log: () => log,
    stop: () => {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited(child);
          clearTimeout(timer);
        }
        if (opts.keepData !== true) await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
