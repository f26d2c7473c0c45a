import type { Socket } from 'node:net';
import { type ProxyContext, tcpRelay } from '../context.js';
import type { SocketAddress } from '../net/ip.js';
import type { TrackedConnection } from '../ops/connections.js';
import type { FallbackReason } from '../policy/reasons.js';
import { connectTcp } from './connect.js';
import type { PipeEnd } from './pipe.js';

/**
 * A plain TCP connection to where the application was going, or null: a refused connect counts
 * the connection as a fallback for `reason` and resets the application's connection.
 */
export async function connectOriginal(
  ctx: ProxyContext,
  conn: TrackedConnection,
  app: Socket,
  dst: SocketAddress,
  reason: FallbackReason,
  log: ProxyContext['log'],
): Promise<Socket | null> {
  try {
    const upstream = await connectTcp(dst, ctx.config.timeouts.connectMs);
    upstream.on('error', (err) => log.debug({ err }, 'upstream socket error'));
    return upstream;
  } catch (err) {
    ctx.metrics.connection('fallback', reason);
    conn.fallback(reason);
    log.info({ err }, 'original destination refused; resetting');
    app.resetAndDestroy();
    return null;
  }
}

/** Counts the connection as a fallback for `reason` and relays it over plain TCP until both ends close. */
export async function relayPlain(
  ctx: ProxyContext,
  conn: TrackedConnection,
  app: PipeEnd,
  upstream: PipeEnd,
  reason: FallbackReason,
  log: ProxyContext['log'],
  why: string,
  detail: Record<string, unknown> = {},
  level: 'info' | 'warn' = 'info',
): Promise<void> {
  ctx.metrics.connection('fallback', reason);
  conn.fallback(reason);
  log[level]({ reason, ...detail }, why);
  const result = await tcpRelay(ctx)(app, upstream, {
    onBytes: conn.counter('tcp', ctx.metrics.byteCounter('tcp')),
  });
  log.debug({ result }, 'relay finished');
}
