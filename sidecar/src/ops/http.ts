import { createServer, type Server } from 'node:http';
import type { Logger } from '../log.js';
import type { HealthState } from './health.js';
import type { SidecarMetrics } from './metrics.js';

async function listenHttp(server: Server, port: number, host: string): Promise<Server> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ipv6Only: false }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** GET /metrics in the Prometheus text format. */
export function startMetricsServer(
  metrics: SidecarMetrics,
  port: number,
  log: Logger,
  host = '::',
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    metrics.render().then(
      (body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(body),
      (err: unknown) => {
        log.warn({ err }, 'rendering metrics failed');
        res.writeHead(500).end();
      },
    );
  });
  return listenHttp(server, port, host);
}

/** GET /healthz/live (the process answers) and /healthz/ready (every check ready). */
export function startHealthServer(health: HealthState, port: number, host = '::'): Promise<Server> {
  const server = createServer((req, res) => {
    const path = req.url?.split('?')[0];
    if (req.method === 'GET' && path === '/healthz/live') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (req.method === 'GET' && path === '/healthz/ready') {
      const state = health.ready();
      res
        .writeHead(state.ready ? 200 : 503, { 'content-type': 'application/json' })
        .end(`${JSON.stringify(state)}\n`);
      return;
    }
    res.writeHead(404).end();
  });
  return listenHttp(server, port, host);
}
