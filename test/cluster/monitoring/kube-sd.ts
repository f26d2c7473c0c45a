/**
 * An HTTP service-discovery endpoint for Prometheus' `http_sd_configs` that lists pods and
 * endpoints from the test cluster's API server on every poll and answers with the target groups
 * kubernetes_sd_configs would produce (kube-sd-targets.ts). Listing per poll rather than watching
 * keeps it stateless; a test cluster has few objects.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig, type V1Endpoints, type V1Pod, type V1Service } from '@kubernetes/client-node';
import {
  endpointsTargetGroups,
  podTargetGroups,
  type KubeSdRole,
  type TargetGroup,
} from './kube-sd-targets.js';

export class KubeSdError extends Error {
  override readonly name = 'KubeSdError';
}

export interface KubeSdOptions {
  /** Kubeconfig of the test cluster (a path), or a loaded KubeConfig. */
  readonly kubeconfig: string | KubeConfig;
  /** Listen address; default 127.0.0.1 with a free port. */
  readonly host?: string;
  readonly port?: number;
}

export interface KubeSd {
  /** Base URL to pass as the `http` discovery of prometheus-config.ts. */
  readonly url: string;
  /** The last failure to list objects (reported with the targets when nothing is discovered). */
  lastError(): Error | undefined;
  close(): Promise<void>;
}

/** The API lists the SD needs; an interface so the server can be exercised without a cluster. */
export interface KubeLister {
  pods(namespace?: string): Promise<V1Pod[]>;
  endpoints(namespace?: string): Promise<V1Endpoints[]>;
  services(namespace?: string): Promise<V1Service[]>;
}

export function kubeLister(kc: KubeConfig): KubeLister {
  const api = kc.makeApiClient(CoreV1Api);
  return {
    pods: async (namespace) =>
      (namespace === undefined
        ? await api.listPodForAllNamespaces()
        : await api.listNamespacedPod({ namespace })
      ).items,
    endpoints: async (namespace) =>
      (namespace === undefined
        ? await api.listEndpointsForAllNamespaces()
        : await api.listNamespacedEndpoints({ namespace })
      ).items,
    services: async (namespace) =>
      (namespace === undefined
        ? await api.listServiceForAllNamespaces()
        : await api.listNamespacedService({ namespace })
      ).items,
  };
}

const key = (ns: string | undefined, name: string | undefined): string => `${ns ?? ''}/${name ?? ''}`;

/** Target groups of one role in the given namespaces (undefined: all). */
export async function discover(
  lister: KubeLister,
  role: KubeSdRole,
  namespaces: readonly string[] | undefined,
): Promise<TargetGroup[]> {
  const scopes: (string | undefined)[] = namespaces === undefined ? [undefined] : [...namespaces];
  const groups: TargetGroup[] = [];
  for (const ns of scopes) {
    if (role === 'pod') {
      for (const pod of await lister.pods(ns)) groups.push(...podTargetGroups(pod));
      continue;
    }
    const [endpoints, services, pods] = await Promise.all([
      lister.endpoints(ns),
      lister.services(ns),
      lister.pods(ns),
    ]);
    const serviceByName = new Map(services.map((s) => [key(s.metadata?.namespace, s.metadata?.name), s]));
    const podByName = new Map(pods.map((p) => [key(p.metadata?.namespace, p.metadata?.name), p]));
    for (const ep of endpoints) {
      const svc = serviceByName.get(key(ep.metadata?.namespace, ep.metadata?.name));
      groups.push(...endpointsTargetGroups(ep, svc, podByName));
    }
  }
  return groups;
}

function parseRequest(
  req: IncomingMessage,
): { role: KubeSdRole; namespaces: string[] | undefined } | undefined {
  const url = new URL(req.url ?? '/', 'http://sd');
  const m = /^\/sd\/(pod|endpoints)$/.exec(url.pathname);
  if (req.method !== 'GET' || m === null) return undefined;
  const namespaces = url.searchParams.getAll('namespace');
  return {
    role: m[1] === 'pod' ? 'pod' : 'endpoints',
    namespaces: namespaces.length > 0 ? namespaces : undefined,
  };
}

export async function startKubeSd(opts: KubeSdOptions): Promise<KubeSd> {
  let lister: KubeLister;
  if (typeof opts.kubeconfig === 'string') {
    const kc = new KubeConfig();
    try {
      kc.loadFromFile(opts.kubeconfig);
    } catch (e) {
      throw new KubeSdError(`cannot load kubeconfig ${opts.kubeconfig}: ${(e as Error).message}`);
    }
    lister = kubeLister(kc);
  } else {
    lister = kubeLister(opts.kubeconfig);
  }
  return serveKubeSd(lister, opts.host ?? '127.0.0.1', opts.port ?? 0);
}

/** Serves discovery from any lister (tests use a fake one). */
export async function serveKubeSd(lister: KubeLister, host = '127.0.0.1', port = 0): Promise<KubeSd> {
  let lastError: Error | undefined;
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const parsed = parseRequest(req);
    if (parsed === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    discover(lister, parsed.role, parsed.namespaces).then(
      (groups) => {
        lastError = undefined;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(groups));
      },
      (e: unknown) => {
        // A 5xx makes Prometheus keep the previous targets and log the failure.
        lastError = e instanceof Error ? e : new Error(String(e));
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${lastError.message}\n`);
      },
    );
  };
  const server: Server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new KubeSdError(`cannot listen on ${host}:${port}: ${e.message}`)));
    server.listen(port, host, resolve);
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${host}:${addr.port}`,
    lastError: () => lastError,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
