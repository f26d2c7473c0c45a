import type { Socket } from 'node:net';
import type { ProxyContext } from '../context.js';
import { canonicalIp, formatSocketAddress, type SocketAddress } from '../net/ip.js';
import type { TrackedConnection } from '../ops/connections.js';
import { afterFailure, decideOutbound, withinBudget } from '../policy/decide.js';
import { fallbackLogLevel, FallbackReason } from '../policy/reasons.js';
import { declineUpgrade, relayViaPeerSidecar, upgradeOutbound } from '../smc/client-session.js';
import { refusalReason } from '../smc/smc-budget.js';
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
  const fields = { conn: connId, side: 'client', src: app.remoteAddress, srcPort: app.remotePort };
  // One child logger per connection, made once the destination is known (a burst makes thousands);
  // a line before that gets its own.
  let known: ProxyContext['log'] | null = null;
  const early = (): ProxyContext['log'] => known ?? ctx.log.child(fields);
  app.on('error', (err) => early().debug({ err }, 'application socket error'));
  // Held while the connection may run over SMC-R: from the upgrade decision to its end or fallback.
  let release = (): void => undefined;
  try {
    let dst: SocketAddress;
    try {
      dst = await ctx.originalDst.resolve(app);
    } catch (err) {
      ctx.metrics.connection('declined', FallbackReason.OriginalDstUnknown);
      conn.declined(FallbackReason.OriginalDstUnknown);
      early().warn({ err }, 'original destination unknown; resetting');
      app.resetAndDestroy();
      return;
    }
    conn.setPeer(dst.address, dst.port);
    const log = ctx.log.child({ ...fields, dst: formatSocketAddress(dst) });
    known = log;
    if (dst.port === ctx.config.ports.outbound && isLoopback(canonicalIp(dst.address))) {
      ctx.metrics.connection('declined', FallbackReason.OriginalDstUnknown);
      conn.declined(FallbackReason.OriginalDstUnknown);
      log.warn('connection addressed to the outbound listener itself; resetting');
      app.resetAndDestroy();
      return;
    }
    const peer = ctx.directory().lookup(dst.address);
    const wanted = decideOutbound(ctx.identity, peer, { rdmaAvailable: ctx.links.available() });
    // Only an upgrade takes SMC-R resources, so only an upgrade asks the budget.
    const admission = wanted.action === 'upgrade' ? ctx.budget.reserve() : null;
    let handshakeDone = (): void => undefined;
    if (admission?.admitted === true) ({ release, handshakeDone } = admission);
    const refused = admission?.admitted === false ? { budget: admission.refusal } : {};
    const decision = withinBudget(
      ctx.identity,
      wanted,
      admission?.admitted === false ? refusalReason(admission.refusal) : null,
    );
    log.debug({ decision, peer: peer?.pod }, 'policy decision');

    if (decision.action === 'reject') {
      ctx.metrics.connection('declined', decision.reason);
      conn.declined(decision.reason);
      log[fallbackLogLevel(decision.reason)](
        { reason: decision.reason, ...refused },
        'SMC-R required but not possible; resetting',
      );
      app.resetAndDestroy();
      return;
    }
    if (decision.action === 'relay' && decision.via === 'direct') {
      await relayDirect(ctx, conn, app, dst, decision.reason, log, refused);
      return;
    }
    if (peer === undefined) return; // unreachable: only directory peers get here

    let tcp: Socket;
    try {
      tcp = await connectTcp({ address: dst.address, port: peer.sidecarPort }, ctx.config.timeouts.connectMs);
    } catch (err) {
      log.info({ err }, 'peer sidecar unreachable');
      release();
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
    await upgradeOutbound({ ctx, conn, app, tcp, dst, peer, connId, log, release, handshakeDone });
  } catch (err) {
    early().error({ err }, 'outbound connection failed');
    if (!app.destroyed) app.resetAndDestroy();
  } finally {
    release();
  }
}

/**
 * Plain relay to the original destination; a refused connect resets the application's connection.
 * `detail` goes into the one log line that says why.
 */
async function relayDirect(
  ctx: ProxyContext,
  conn: TrackedConnection,
  app: Socket,
  dst: SocketAddress,
  reason: FallbackReason,
  log: ProxyContext['log'],
  detail: Record<string, unknown> = {},
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
    const kernel = {
      ctx,
      conn,
      app,
      tcp: upstream,
      dst,
      peer: null,
      connId: conn.id,
      log: log.child({ peerKind: 'kernel' }),
    };
    const admission = ctx.budget.reserve();
    if (!admission.admitted) {
      await declineUpgrade(kernel, refusalReason(admission.refusal), { budget: admission.refusal });
      return;
    }
    try {
      await upgradeOutbound({
        ...kernel,
        release: admission.release,
        handshakeDone: admission.handshakeDone,
      });
    } finally {
      admission.release();
    }
    return;
  }
  await relayPlain(
    ctx,
    conn,
    { socket: app },
    { socket: upstream },
    reason,
    log,
    'relaying over TCP',
    { via: 'direct', ...detail },
    fallbackLogLevel(reason),
  );
}
