import http from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export interface HealthChecks {
  /** Liveness: the process is not wedged. */
  healthy(): boolean;
  /** Readiness: caches synced and the webhook serving. */
  ready(): { ok: boolean; detail: string };
}

async function listen(server: http.Server, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** :8081 /healthz and /readyz. */
export async function startHealthServer(
  checks: HealthChecks,
  host: string,
  port: number,
  log: Logger,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') {
      const ok = checks.healthy();
      res.writeHead(ok ? 200 : 500, { 'Content-Type': 'text/plain' }).end(ok ? 'ok' : 'unhealthy');
    } else if (path === '/readyz') {
      const r = checks.ready();
      res.writeHead(r.ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(r.ok ? 'ok' : r.detail);
    } else {
      res.writeHead(404).end();
    }
  });
  await listen(server, host, port);
  log.info({ port }, 'health endpoints listening');
  return server;
}

/** :8080 /metrics. */
export async function startMetricsServer(
  registry: Registry,
  host: string,
  port: number,
  log: Logger,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry
      .metrics()
      .then((text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text))
      .catch((e: unknown) => res.writeHead(500).end(String(e)));
  });
  await listen(server, host, port);
  log.info({ port }, 'metrics endpoint listening');
  return server;
}

export async function closeServer(s: http.Server | undefined): Promise<void> {
  if (!s) return;
  s.closeAllConnections();
  await new Promise<void>((r) => s.close(() => r()));
}
