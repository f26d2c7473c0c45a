// Small helpers of the cluster test over the project's own KubeClient (typed, zod at the edge)
// and client-node's exec (through the API server to the kubelet).
import { Writable } from 'node:stream';
import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';
import { z } from 'zod';
import { isApiError } from '../../../operator/src/errors.js';
import type { KubeClient } from '../../../operator/src/kube/client.js';

const Any = z.unknown();

const ContainerView = z.object({
  name: z.string(),
  command: z.array(z.string()).nullish(),
  restartPolicy: z.string().nullish(),
  resources: z.object({ limits: z.record(z.string(), z.string()).nullish() }).nullish(),
});

export const PodView = z.object({
  metadata: z.object({
    name: z.string(),
    namespace: z.string(),
    labels: z.record(z.string(), z.string()).nullish(),
    annotations: z.record(z.string(), z.string()).nullish(),
    deletionTimestamp: z.string().nullish(),
  }),
  spec: z.object({
    nodeName: z.string().nullish(),
    containers: z.array(ContainerView),
    // A native sidecar (Kubernetes 1.29+) is here, with restartPolicy Always.
    initContainers: z.array(ContainerView).nullish(),
  }),
  status: z
    .object({
      phase: z.string().nullish(),
      podIP: z.string().nullish(),
      conditions: z.array(z.object({ type: z.string(), status: z.string() })).nullish(),
      containerStatuses: z
        .array(z.object({ name: z.string(), ready: z.boolean(), restartCount: z.number() }))
        .nullish(),
    })
    .nullish(),
});
export type PodView = z.infer<typeof PodView>;

const PodList = z.object({ items: z.array(PodView) });

/** The injected smc-sidecar: a native sidecar among the init containers, or a plain container. */
export function sidecarOf(pod: PodView): z.infer<typeof ContainerView> | undefined {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c) => c.name === 'smc-sidecar');
}

export function podPath(ns: string, name?: string): string {
  return `/api/v1/namespaces/${ns}/pods${name === undefined ? '' : `/${name}`}`;
}

/** Creates an object at `path` (the collection); an existing one is left as it is. */
export async function create(c: KubeClient, path: string, body: unknown): Promise<void> {
  try {
    await c.request('POST', path, Any, { body });
  } catch (e) {
    if (!isApiError(e, 409)) throw e;
  }
}

export async function getPod(c: KubeClient, ns: string, name: string): Promise<PodView> {
  return c.request('GET', podPath(ns, name), PodView);
}

export async function listPods(c: KubeClient, ns: string, labelSelector?: string): Promise<PodView[]> {
  const q = labelSelector === undefined ? '' : `?labelSelector=${encodeURIComponent(labelSelector)}`;
  return (await c.request('GET', `${podPath(ns)}${q}`, PodList)).items;
}

export function isReady(p: PodView): boolean {
  return (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Polls `fn` every `everyMs` until it returns a value (not undefined), or throws with the last state. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
      last = 'not yet';
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${String(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** An exec's exit code and output, for an assertion's message. */
export function execReport(r: ExecResult): string {
  const tail = (t: string): string => (t.length > 2000 ? `...${t.slice(-2000)}` : t);
  return `exit ${r.code}\nstdout: ${tail(r.stdout)}\nstderr: ${tail(r.stderr)}`;
}

class Collect extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk);
    done();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function exitCode(s: V1Status): number {
  if (s.status === 'Success') return 0;
  const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
  return cause?.message === undefined ? 1 : Number(cause.message);
}

/**
 * Runs `command` in a container through the API server (exec WebSocket); resolves with its exit
 * code and output. A stream that cannot be opened (a busy
 * kubelet) is tried again, up to 3 times: the command never ran.
 */
export async function exec(
  kc: KubeConfig,
  ns: string,
  pod: string,
  container: string,
  command: string[],
  timeoutMs = 5 * 60_000,
): Promise<ExecResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await execOnce(kc, ns, pod, container, command, timeoutMs);
    } catch (e) {
      if (!(e instanceof ExecConnectError) || attempt >= 3) throw e;
      await new Promise((r) => setTimeout(r, 3000));
    }
  }
}

async function execOnce(
  kc: KubeConfig,
  ns: string,
  pod: string,
  container: string,
  command: string[],
  timeoutMs = 5 * 60_000,
): Promise<ExecResult> {
  const out = new Collect();
  const err = new Collect();
  return new Promise<ExecResult>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(new Error(`exec ${command.join(' ')} in ${pod}/${container} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    new Exec(kc)
      .exec(ns, pod, container, command, out, err, null, false, (status) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ code: exitCode(status), stdout: out.text(), stderr: err.text() });
      })
      .then(
        (ws) => {
          ws.on('error', (e: Error) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            reject(e);
          });
        },
        (e: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(new ExecConnectError(`${pod}/${container}`, describeRejection(e)));
        },
      );
  });
}

/** The exec stream could not be opened (the command never ran, so running it again is safe). */
export class ExecConnectError extends Error {
  constructor(target: string, detail: string) {
    super(`exec into ${target} could not start: ${detail}`);
    this.name = 'ExecConnectError';
  }
}

/** A readable line for what client-node rejects with (an Error, a WebSocket ErrorEvent, a Status). */
function describeRejection(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'object' && e !== null) {
    const o = e as Record<string, unknown>;
    const parts = ['type', 'message', 'reason', 'code', 'status', 'statusCode']
      .filter((k) => o[k] !== undefined && typeof o[k] !== 'object')
      .map((k) => `${k}=${String(o[k])}`);
    const inner = o['error'];
    if (inner instanceof Error) parts.push(`error=${inner.message}`);
    return parts.length > 0 ? parts.join(' ') : Object.prototype.toString.call(e);
  }
  return String(e);
}

/** GET over plain HTTP from the host (which routes to every pod IP). */
export async function httpGet(url: string, timeoutMs = 10_000): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res.text();
}
