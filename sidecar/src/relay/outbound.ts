import type { Socket } from 'node:net';
import type { ProxyContext } from '../context.js';
import { canonicalIp, formatSocketAddress, type SocketAddress } from '../net/ip.js';
import type { TrackedConnection } from '../ops/connections.js';
import { afterFailure, decideOutbound } from '../policy/decide.js';
import { FallbackReason } from '../policy/reasons.js';
import { relayViaPeerSidecar, upgradeOutbound } from '../smc/client-session.js';
import { connectTcp } from './connect.js';
import { newConnectionId } from './ids.js';
import { connectOriginal, relayPlain } from './original-destination.js';

function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.');
}

/**
 * Handles one connection accepted on the outbound port: finds where the
 * application was going, asks the policy, and relays directly, relays through
 * the peer's sidecar, or attempts the SMC-R upgrade.
 */
export async function handleOutbound(ctx: ProxyContext, app: Socket): Promise<void> {
  const connId = newConnectionId();
  const conn = ctx.connections.open(connId, 'outbound', 'outbound');
  conn.setLocal(app.remoteAddress, app.remotePort);
  try {
    await handle(ctx, app, conn);
  } finally {
    ctx.connections.close(conn);
  }
}

async function handle(ctx: ProxyContext, app: Socket, conn: TrackedConnection): Promise<void> {
  const connId = conn.id;
  let log = ctx.log.child({ conn: connId, side: 'client', src: app.remoteAddress, srcPort: app.remotePort });
  app.on('error', (err) => log.debug({ err }, 'application socket error'));
  const release = ctx.limiter.acquire();
  if (release === null) {
    ctx.metrics.connection('declined', FallbackReason.LimitReached);
    conn.declined(FallbackReason.LimitReached);
    log.warn({ max: ctx.config.limits.maxConnections }, 'connection limit reached; resetting');
    app.resetAndDestroy();
    return;
  }
  try {
    let dst: SocketAddress;
    try {
      dst = await ctx.originalDst.resolve(app);
    } catch (err) {
      ctx.metrics.connection('declined', FallbackReason.OriginalDstUnknown);
      conn.declined(FallbackReason.OriginalDstUnknown);
      log.warn({ err }, 'original destination unknown; resetting');
      app.resetAndDestroy();
      return;
    }
    conn.setPeer(dst.address, dst.port);
    log = log.child({ dst: formatSocketAddress(dst) });
    if (dst.port === ctx.config.ports.outbound && isLoopback(canonicalIp(dst.address))) {
      ctx.metrics.connection('declined', FallbackReason.OriginalDstUnknown);
      conn.declined(FallbackReason.OriginalDstUnknown);
      log.warn('connection addressed to the outbound listener itself; resetting');
      app.resetAndDestroy();
      return;
    }
    const peer = ctx.directory().lookup(dst.address);
    const decision = decideOutbound(ctx.identity, peer, { rdmaAvailable: ctx.links.available() });
    log.debug({ decision, peer: peer?.pod }, 'policy decision');

    if (decision.action === 'reject') {
      ctx.metrics.connection('declined', decision.reason);
      conn.declined(decision.reason);
      log.info({ reason: decision.reason }, 'SMC-R required but not possible; resetting');
      app.resetAndDestroy();
      return;
    }
    if (decision.action === 'relay' && decision.via === 'direct') {
      await relayDirect(ctx, conn, app, dst, decision.reason, log);
      return;
    }
    if (peer === undefined) return; // unreachable: only directory peers get here

    let tcp: Socket;
    try {
      tcp = await connectTcp({ address: dst.address, port: peer.sidecarPort }, ctx.config.timeouts.connectMs);
    } catch (err) {
      log.info({ err }, 'peer sidecar unreachable');
      const next = afterFailure(ctx.identity, FallbackReason.PeerSidecarUnreachable, 'direct');
      if (next.action === 'reject') {
        ctx.metrics.connection('declined', FallbackReason.PeerSidecarUnreachable);
        conn.declined(FallbackReason.PeerSidecarUnreachable);
        app.resetAndDestroy();
        return;
      }
      await relayDirect(ctx, conn, app, dst, FallbackReason.PeerSidecarUnreachable, log);
      return;
    }
    tcp.on('error', (err) => log.debug({ err }, 'peer sidecar socket error'));
    if (decision.action === 'relay') {
      await relayViaPeerSidecar(ctx, conn, app, tcp, dst.port, decision.reason, log);
      return;
    }
    await upgradeOutbound({ ctx, conn, app, tcp, dst, peer, connId, log });
  } catch (err) {
    log.error({ err }, 'outbound connection failed');
    if (!app.destroyed) app.resetAndDestroy();
  } finally {
    release();
  }
}

/** Plain relay to the original destination; a refused connect resets the application's connection. */
async function relayDirect(
  ctx: ProxyContext,
  conn: TrackedConnection,
  app: Socket,
  dst: SocketAddress,
  reason: FallbackReason,
  log: ProxyContext['log'],
): Promise<void> {
  const upstream = await connectOriginal(ctx, conn, app, dst, reason, log);
  if (upstream === null) return;
  if (
    reason === FallbackReason.PeerNotInDirectory &&
    ctx.syn !== undefined &&
    ctx.links.available() &&
    ctx.syn.synAckAnnounced(upstream)
  ) {
    // A kernel SMC-R server answered our SYN's SMC option: its CLC follows on this connection.
    await upgradeOutbound({
      ctx,
      conn,
      app,
      tcp: upstream,
      dst,
      peer: null,
      connId: conn.id,
      log: log.child({ peerKind: 'kernel' }),
    });
    return;
  }
  await relayPlain(ctx, conn, { socket: app }, { socket: upstream }, reason, log, 'relaying over TCP', {
    via: 'direct',
  });
}
