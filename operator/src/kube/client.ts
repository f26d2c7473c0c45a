import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import type { z } from 'zod';
import { StatusSchema } from '../api/meta.js';
import { ApiError, SchemaError, TransportError } from '../errors.js';

export type Query = Record<string, string | number | boolean | undefined>;

export type PatchType = 'merge' | 'json' | 'strategic';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export interface RequestOptions {
  readonly query?: Query;
  readonly body?: unknown;
  readonly patch?: PatchType;
  readonly signal?: AbortSignal;
  /** Request timeout in ms (default 30 s); watches have none. */
  readonly timeoutMs?: number;
}

/** Counts every request the client makes, per verb and resource; read by metrics and the benchmark. */
export interface RequestObserver {
  (verb: string, resource: string, code: number, seconds: number): void;
}

/**
 * A small API server client over node:http(s): TLS material and credentials come from a
 * client-node KubeConfig (applyToHTTPSOptions), requests share one keep-alive agent, every
 * response is JSON parsed and checked with zod by the caller's schema. Owning the transport keeps
 * list/watch behaviour explicit and lets us count requests exactly.
 */
export class KubeClient {
  readonly server: URL;
  private agent: http.Agent | undefined;
  private readonly observers: RequestObserver[] = [];
  /** Total requests started (watches included). */
  requests = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly userAgent = 'smc-operator',
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new TransportError('INIT', '', new Error('kubeconfig has no current cluster'));
    this.server = new URL(cluster.server);
  }

  observe(o: RequestObserver): void {
    this.observers.push(o);
  }

  /** Releases pooled connections. */
  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }

  private async options(method: string, path: string, query?: Query): Promise<https.RequestOptions> {
    const opts: https.RequestOptions = { headers: {} };
    await this.kc.applyToHTTPSOptions(opts);
    if (!this.agent) {
      const tls = this.server.protocol === 'https:';
      this.agent = tls
        ? new https.Agent({
            keepAlive: true,
            maxSockets: 32,
            ca: opts.ca,
            cert: opts.cert,
            key: opts.key,
            rejectUnauthorized: opts.rejectUnauthorized ?? true,
            servername: opts.servername,
          })
        : new http.Agent({ keepAlive: true, maxSockets: 32 });
    }
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const q = qs.toString();
    return {
      method,
      protocol: this.server.protocol,
      hostname: this.server.hostname.replace(/^\[|\]$/g, ''),
      port: this.server.port,
      path: this.server.pathname.replace(/\/$/, '') + path + (q ? `?${q}` : ''),
      agent: this.agent,
      auth: opts.auth,
      headers: { ...opts.headers, 'User-Agent': this.userAgent, Accept: 'application/json' },
    };
  }

  private record(method: string, path: string, code: number, start: number): void {
    const secs = (performance.now() - start) / 1000;
    const resource = resourceOf(path);
    for (const o of this.observers) o(method, resource, code, secs);
  }

  /** One request; resolves to the parsed JSON body (validated with `schema`) or throws ApiError. */
  async request<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    ro: RequestOptions = {},
  ): Promise<z.infer<S>> {
    const raw = await this.requestRaw(method, path, ro);
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw new SchemaError(`${method} ${path}`, parsed.error.message);
    return parsed.data;
  }

  async requestRaw(method: string, path: string, ro: RequestOptions = {}): Promise<unknown> {
    const opts = await this.options(method, path, ro.query);
    const body = ro.body === undefined ? undefined : Buffer.from(JSON.stringify(ro.body));
    if (body) {
      opts.headers = {
        ...opts.headers,
        'Content-Type': ro.patch ? PATCH_CONTENT_TYPE[ro.patch] : 'application/json',
        'Content-Length': body.length,
      };
    }
    this.requests++;
    const start = performance.now();
    const mod = this.server.protocol === 'https:' ? https : http;
    return new Promise<unknown>((resolve, reject) => {
      const req = mod.request(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(new TransportError(method, path, e)));
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          this.record(method, path, code, start);
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text.length ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          if (code >= 200 && code < 300) {
            resolve(json);
            return;
          }
          const st = StatusSchema.safeParse(json);
          reject(
            new ApiError(
              method,
              path,
              code,
              st.success ? st.data.reason : undefined,
              st.success ? (st.data.message ?? '') : text.slice(0, 200),
            ),
          );
        });
      });
      req.setTimeout(ro.timeoutMs ?? 30_000, () => req.destroy(new Error('request timed out')));
      req.on('error', (e) => {
        this.record(method, path, 0, start);
        reject(new TransportError(method, path, e));
      });
      if (ro.signal) {
        if (ro.signal.aborted) req.destroy(new Error('aborted'));
        else ro.signal.addEventListener('abort', () => req.destroy(new Error('aborted')), { once: true });
      }
      req.end(body);
    });
  }

  /**
   * A watch: calls `onLine` with every parsed JSON line of the stream. Resolves when the server
   * closes the stream, rejects with ApiError on a non-200 answer or TransportError on a broken
   * connection. Aborting `signal` resolves it.
   */
  async watch(
    path: string,
    query: Query,
    onLine: (obj: unknown) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const opts = await this.options('GET', path, { ...query, watch: true });
    this.requests++;
    const start = performance.now();
    const mod = this.server.protocol === 'https:' ? https : http;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const done = (err?: Error): void => {
        if (settled) return;
        settled = true;
        if (err && !signal.aborted) reject(err);
        else resolve();
      };
      const req = mod.request(opts, (res) => {
        const code = res.statusCode ?? 0;
        this.record('WATCH', path, code, start);
        if (code !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            const st = StatusSchema.safeParse(json);
            done(
              new ApiError(
                'WATCH',
                path,
                code,
                st.success ? st.data.reason : undefined,
                st.success ? (st.data.message ?? '') : text.slice(0, 200),
              ),
            );
          });
          return;
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            let obj: unknown;
            try {
              obj = JSON.parse(line);
            } catch (e) {
              req.destroy();
              done(new TransportError('WATCH', path, e));
              return;
            }
            try {
              onLine(obj);
            } catch (e) {
              req.destroy();
              done(e instanceof Error ? e : new Error(String(e)));
              return;
            }
          }
        });
        res.on('end', () => done());
        res.on('error', (e) => done(new TransportError('WATCH', path, e)));
        res.on('aborted', () => done(new TransportError('WATCH', path, new Error('stream aborted'))));
        res.on('close', () =>
          done(signal.aborted ? undefined : new TransportError('WATCH', path, new Error('closed'))),
        );
      });
      req.on('error', (e) => done(new TransportError('WATCH', path, e)));
      if (signal.aborted) req.destroy();
      else signal.addEventListener('abort', () => req.destroy(), { once: true });
      req.end();
    });
  }
}

/** "pods", "smcpolicies/status", "leases": the resource part of an API path, for metrics. */
export function resourceOf(path: string): string {
  const parts = path.split('?')[0]?.split('/').filter(Boolean) ?? [];
  // /api/v1/... or /apis/group/version/...
  let i = parts[0] === 'api' ? 2 : 3;
  if (parts[i] === 'namespaces' && parts.length > i + 2) i += 2;
  const resource = parts[i] ?? 'unknown';
  const sub = parts[i + 2];
  return sub ? `${resource}/${sub}` : resource;
}
