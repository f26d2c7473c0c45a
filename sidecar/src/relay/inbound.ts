import type { Socket } from 'node:net';
import type { ProxyContext } from '../context.js';
import { formatSocketAddress, type SocketAddress } from '../net/ip.js';
import { FallbackReason } from '../policy/reasons.js';
import { connectTcp } from './connect.js';
import { newConnectionId } from './ids.js';
import { relay } from './pipe.js';

/**
 * Handles one connection accepted on the inbound port: plain TCP from a peer
 * without a sidecar (or whose sidecar could not reach ours). Relays it to the
 * local application on the port it was addressed to.
 */
export async function handleInbound(ctx: ProxyContext, conn: Socket): Promise<void> {
  const connId = newConnectionId();
  const log = ctx.log.child({
    conn: connId,
    side: 'inbound',
    src: conn.remoteAddress,
    srcPort: conn.remotePort,
  });
  conn.on('error', (err) => log.debug({ err }, 'inbound socket error'));
  const release = ctx.limiter.acquire();
  if (release === null) {
    ctx.metrics.connection('declined', FallbackReason.LimitReached);
    conn.resetAndDestroy();
    return;
  }
  try {
    let dst: SocketAddress;
    try {
      dst = await ctx.originalDst.resolve(conn);
    } catch (err) {
      ctx.metrics.connection('declined', FallbackReason.OriginalDstUnknown);
      log.warn({ err }, 'original destination unknown; resetting');
      conn.resetAndDestroy();
      return;
    }
    // The destination is one of this pod's own addresses; as uid 1337 our connect is not redirected again.
    const target = { address: dst.address, port: dst.port };
    let app: Socket;
    try {
      app = await connectTcp(target, ctx.config.timeouts.connectMs);
    } catch (err) {
      log.info({ err, target: formatSocketAddress(target) }, 'local application refused; resetting');
      conn.resetAndDestroy();
      return;
    }
    app.on('error', (err) => log.debug({ err }, 'application socket error'));
    ctx.metrics.connection('fallback', FallbackReason.PeerNotInDirectory);
    const result = await relay(
      { socket: app },
      { socket: conn },
      { onBytes: ctx.metrics.byteCounter('tcp') },
    );
    log.debug({ result }, 'inbound relay finished');
  } finally {
    release();
  }
}
