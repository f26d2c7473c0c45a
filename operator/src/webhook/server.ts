import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import type { OperatorMetrics } from '../metrics.js';
import type { TlsMaterial } from './certmanager.js';
import {
  AdmissionPodSchema,
  admissionWarning,
  admissionWarnings,
  decideInjection,
  injectionPatch,
  podRedirect,
  podSidecarMode,
  type InjectionSettings,
} from './inject.js';
import type { SmcPolicy } from '../api/smcpolicy.js';

export const WEBHOOK_PATH = '/mutate-v1-pod';

const AdmissionReviewSchema = z.object({
  apiVersion: z.string(),
  kind: z.literal('AdmissionReview'),
  request: z.object({
    uid: z.string(),
    kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }),
    operation: z.string(),
    namespace: z.string().optional(),
    dryRun: z.boolean().optional(),
    object: z.unknown(),
  }),
});

export interface AdmissionContext {
  namespaceLabels(ns: string): Readonly<Record<string, string>> | null | undefined;
  policies(ns: string): Iterable<SmcPolicy>;
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: true;
  readonly patchType?: 'JSONPatch';
  readonly patch?: string;
  readonly warnings?: string[];
}

/**
 * Handles one AdmissionReview body. Never denies: a pod the webhook cannot handle is admitted
 * unchanged (with a warning), the same outcome as failurePolicy Ignore.
 */
export function admit(
  body: unknown,
  ctx: AdmissionContext,
  settings: InjectionSettings,
): { response: AdmissionResponse; apiVersion: string; outcome: string } {
  const review = AdmissionReviewSchema.safeParse(body);
  if (!review.success) throw new Error(`not an AdmissionReview: ${review.error.message.slice(0, 200)}`);
  const req = review.data.request;
  const apiVersion = review.data.apiVersion;
  if (req.kind.kind !== 'Pod' || req.operation !== 'CREATE') {
    return { response: { uid: req.uid, allowed: true }, apiVersion, outcome: 'ignored' };
  }
  const pod = AdmissionPodSchema.safeParse(req.object);
  if (!pod.success) {
    return {
      response: {
        uid: req.uid,
        allowed: true,
        warnings: ['smc-operator: could not read the pod; not injected'],
      },
      apiVersion,
      outcome: 'invalid',
    };
  }
  const ns = req.namespace ?? pod.data.metadata.namespace ?? 'default';
  const decision = decideInjection(pod.data, ns, ctx.namespaceLabels(ns), ctx.policies(ns));
  // A pod that opted in but is left alone, or that several policies select, is not silent:
  // kubectl prints admission warnings to whoever created it.
  const warnings = admissionWarnings(decision);
  if (!decision.inject) {
    const warn = warnings.length > 0 ? { warnings } : {};
    return { response: { uid: req.uid, allowed: true, ...warn }, apiVersion, outcome: 'skipped' };
  }
  const sidecar = podSidecarMode(pod.data, settings);
  if (sidecar.warning !== undefined) warnings.push(admissionWarning(sidecar.warning));
  const redirect = podRedirect(pod.data, settings);
  if (redirect.warning !== undefined) warnings.push(admissionWarning(redirect.warning));
  const warn = warnings.length > 0 ? { warnings } : {};
  const patch = injectionPatch(pod.data, decision.policy, settings, sidecar.mode);
  return {
    response: {
      uid: req.uid,
      allowed: true,
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
      ...warn,
    },
    apiVersion,
    outcome: 'injected',
  };
}

/** The HTTPS server of the mutating webhook. TLS material can be replaced while serving. */
export class WebhookServer {
  private server: https.Server | undefined;

  constructor(
    private readonly ctx: AdmissionContext,
    private settings: InjectionSettings,
    private readonly metrics: OperatorMetrics,
    private readonly log: Logger,
  ) {}

  /** Changes the injection settings: the sidecar mode, once the API server's version is known. */
  updateSettings(change: Partial<InjectionSettings>): void {
    this.settings = { ...this.settings, ...change };
  }

  get currentSettings(): InjectionSettings {
    return this.settings;
  }

  get port(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  get listening(): boolean {
    return !!this.server?.listening;
  }

  /** Starts listening with the given TLS material; later calls only swap the certificate. */
  async setTls(tls: TlsMaterial, host: string, port: number): Promise<void> {
    if (this.server) {
      this.server.setSecureContext({ cert: tls.certPem, key: tls.keyPem });
      this.log.info('webhook certificate reloaded');
      return;
    }
    const server = https.createServer(
      { cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' },
      (req, res) => this.handle(req, res),
    );
    server.keepAliveTimeout = 30_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.log.info({ port: this.port, path: WEBHOOK_PATH }, 'webhook listening');
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const start = performance.now();
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== WEBHOOK_PATH) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 8 * 1024 * 1024) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      let outcome = 'error';
      try {
        const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const r = admit(body, this.ctx, this.settings);
        outcome = r.outcome;
        const out = JSON.stringify({
          apiVersion: r.apiVersion,
          kind: 'AdmissionReview',
          response: r.response,
        });
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(out);
        this.log.debug({ outcome, uid: r.response.uid }, 'admission');
      } catch (e) {
        this.log.warn({ err: errorMessage(e) }, 'bad admission request');
        res.writeHead(400, { 'Content-Type': 'text/plain' }).end(errorMessage(e));
      } finally {
        this.metrics.webhookDuration.labels(outcome).observe((performance.now() - start) / 1000);
      }
    });
  }
}
