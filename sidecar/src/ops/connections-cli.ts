import { request } from 'node:http';
import { SIDECAR_DEFAULT_PORTS } from '../../../operator/src/api/sidecar.js';
import { formatConnectionsTable } from './connections-format.js';
import type { ConnectionsReport } from './connections.js';

/**
 * `smc connections`: asks the sidecar of this pod (its admin endpoint on loopback) for its
 * connections and prints them, smcss-like, or as JSON. Runs inside the pod:
 * `kubectl exec POD -c smc-sidecar -- smc connections`.
 */

export const DEFAULT_ADMIN_PORT = SIDECAR_DEFAULT_PORTS.admin;
export const ADMIN_PORT_ENV = 'SMC_PORT_ADMIN';

export const CONNECTIONS_USAGE = `usage: smc connections [--output table|json] [--admin-port N]
  Lists the connections the sidecar of this pod carries (and the last ones it closed), from
  GET http://127.0.0.1:PORT/connections.
  -o, --output table|json   a table (default) or the endpoint's JSON
  --admin-port N            the sidecar's admin port (default $${ADMIN_PORT_ENV}, else ${DEFAULT_ADMIN_PORT})
Exit codes: 0 ok, 1 the sidecar did not answer, 2 usage error.
`;

export type ConnectionsOutput = 'table' | 'json';

export interface ConnectionsOptions {
  output: ConnectionsOutput;
  /** From --admin-port; undefined: $SMC_PORT_ADMIN, else the default (15104). */
  adminPort: number | undefined;
}

export interface ConnectionsIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** Milliseconds before an unanswered request counts as no answer. */
  timeoutMs?: number;
}

const defaultIo: ConnectionsIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
};

/** A TCP port number from text, or null. */
export function parsePort(text: string): number | null {
  if (!/^\d{1,5}$/.test(text.trim())) return null;
  const n = Number(text.trim());
  return n >= 1 && n <= 65535 ? n : null;
}

class NoAnswer extends Error {}

function get(url: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => reject(new NoAnswer(err.message)));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode === 200) resolve(body);
        else reject(new NoAnswer(`HTTP ${res.statusCode ?? '?'}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(new NoAnswer(err.code ?? err.message)));
    req.end();
  });
}

function isReport(v: unknown): v is ConnectionsReport {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    Array.isArray(r.connections) &&
    typeof r.live === 'number' &&
    typeof r.closed === 'number' &&
    typeof r.closedCapacity === 'number'
  );
}

/** Runs the command; resolves with the exit code. */
export async function runConnectionsCommand(
  opts: ConnectionsOptions,
  io: ConnectionsIo = defaultIo,
): Promise<number> {
  let port = opts.adminPort;
  if (port === undefined) {
    const fromEnv = io.env[ADMIN_PORT_ENV];
    if (fromEnv !== undefined && fromEnv !== '') {
      const parsed = parsePort(fromEnv);
      if (parsed === null) {
        io.stderr(`smc connections: $${ADMIN_PORT_ENV}="${fromEnv}" is not a port number\n`);
        return 2;
      }
      port = parsed;
    } else {
      port = DEFAULT_ADMIN_PORT;
    }
  }
  const url = `http://127.0.0.1:${port}/connections`;
  let body: string;
  try {
    body = await get(url, io.timeoutMs ?? 5000);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    io.stderr(
      `smc connections: the sidecar did not answer on ${url} (${why}).\n` +
        `Is the smc-sidecar container of this pod running, and is ${port} its admin port ` +
        `(--admin-port N, $${ADMIN_PORT_ENV})?\n`,
    );
    return 1;
  }
  let report: unknown;
  try {
    report = JSON.parse(body);
  } catch {
    report = null;
  }
  if (!isReport(report)) {
    io.stderr(`smc connections: ${url} did not answer with a connections report\n`);
    return 1;
  }
  io.stdout(opts.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatConnectionsTable(report));
  return 0;
}
