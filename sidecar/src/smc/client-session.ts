import type { Socket } from 'node:net';
import type { DirectoryEndpoint } from '../../../operator/src/api/directory.js';
import { HANDSHAKE_HOLD_BYTES, type ProxyContext, tcpRelay } from '../context.js';
import { ClcClient } from '../handshake/client.js';
import type { Logger } from '../log.js';
import type { SocketAddress } from '../net/ip.js';
import type { TrackedConnection } from '../ops/connections.js';
import { maxPeerRmbSize } from '../config/schema.js';
import { afterFailure } from '../policy/decide.js';
import { declineCodeFor, fallbackLogLevel, FallbackReason } from '../policy/reasons.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { connectOriginal, relayPlain } from '../relay/original-destination.js';
import { encodePlainDecline, runClcHandshake } from './clc-driver.js';
import { SocketHold } from './hold.js';
import { asLinkSetupError } from './link-errors.js';
import { linkGroupPeerKey, type PreparedSmcConnection } from './link-group-manager.js';
import { proposalAreaFor } from './local-subnet.js';
import { encodePreamble } from './preamble.js';
import { smcrV2Options } from './smcr-v2-options.js';
import { carryUpgraded } from './carry-upgraded.js';

export interface ClientUpgrade {
  ctx: ProxyContext;
  /** The connection's entry in the registry of GET /connections. */
  conn: TrackedConnection;
  app: Socket;
  /** The connected TCP socket to the peer sidecar's SMC port (paused). */
  tcp: Socket;
  dst: SocketAddress;
  /** The peer sidecar's directory entry; null for a kernel SMC-R server (no preamble, TCP option instead). */
  peer: DirectoryEndpoint | null;
  connId: string;
  log: Logger;
  /**
   * Gives back the connection's SMC-R budget reservation (idempotent): called as soon as the
   * connection will not run over SMC-R, else when it ends.
   */
  release: () => void;
  /** Gives back only the handshake slot (limits.maxConcurrentHandshakes): the handshake is over. */
  handshakeDone: () => void;
}

function resetBoth(app: Socket, tcp: Socket): void {
  if (!app.destroyed) app.resetAndDestroy();
  if (!tcp.destroyed) tcp.resetAndDestroy();
}

/** Without CLC: tell the peer sidecar to relay (plain preamble) and carry the bytes over TCP. */
export async function relayViaPeerSidecar(
  ctx: ProxyContext,
  conn: TrackedConnection,
  app: Socket,
  tcp: Socket,
  port: number,
  reason: FallbackReason,
  log: Logger,
): Promise<void> {
  tcp.write(encodePreamble({ clc: false, port }));
  ctx.metrics.connection('fallback', reason);
  conn.fallback(reason);
  log.info({ reason, via: 'peer-sidecar' }, 'relaying over TCP');
  const result = await tcpRelay(ctx)(
    { socket: app },
    { socket: tcp },
    { onBytes: conn.counter('tcp', ctx.metrics.byteCounter('tcp')) },
  );
  log.debug({ result }, 'relay finished');
}

/**
 * The client half of an upgrade: preamble, CLC Proposal/Accept/Confirm with
 * the ClcClient machine, then SMC-R, or TCP on the same connection with the
 * application's bytes (read meanwhile) replayed and nothing lost. The budget reservation goes
 * back at the fallback, or when the SMC-R connection ends.
 */
export async function upgradeOutbound(u: ClientUpgrade): Promise<void> {
  try {
    await upgrade(u);
  } finally {
    u.release();
  }
}

/**
 * No CLC Proposal from us (no SMC-R resources, or the budget refused): TCP on the connection we
 * have, through the peer sidecar (plain preamble) or, for a kernel SMC-R server, after a Decline.
 */
export async function declineUpgrade(
  u: Omit<ClientUpgrade, 'release' | 'handshakeDone'>,
  reason: FallbackReason,
  detail: Record<string, unknown> = {},
): Promise<void> {
  const { ctx, conn, app, tcp, dst, peer, log } = u;
  const next = afterFailure(ctx.identity, reason, 'peer-sidecar');
  if (next.action === 'reject') {
    ctx.metrics.connection('declined', reason);
    conn.declined(reason);
    log.warn({ reason, ...detail }, 'SMC-R required but not possible; resetting');
    resetBoth(app, tcp);
    return;
  }
  if (peer === null) {
    // The kernel server waits for our Proposal: a Decline instead tells it to fall back.
    const code = declineCodeFor(reason) ?? SMC_CLC_DECL.NOSMCRDEV;
    tcp.write(encodePlainDecline(ctx.links.peerId, code));
    ctx.metrics.connection('fallback', reason);
    conn.fallback(reason, { code, origin: 'local' });
    log[fallbackLogLevel(reason)]({ reason, code, ...detail }, 'declined the kernel peer; relaying over TCP');
    await tcpRelay(ctx)(
      { socket: app },
      { socket: tcp },
      { onBytes: conn.counter('tcp', ctx.metrics.byteCounter('tcp')) },
    );
    return;
  }
  await relayViaPeerSidecar(ctx, conn, app, tcp, dst.port, reason, log);
}

async function upgrade(u: ClientUpgrade): Promise<void> {
  const { ctx, conn, app, tcp, dst, peer, log } = u;
  conn.handshake();
  let prepared: PreparedSmcConnection;
  try {
    prepared = await ctx.links.prepare({
      address: dst.address,
      key: linkGroupPeerKey(peer, dst.address),
      role: 'client',
      connId: u.connId,
    });
  } catch (err) {
    const e = asLinkSetupError(err);
    ctx.metrics.rdmaError(e.reason);
    log.info({ err: e }, 'no SMC-R resources for this connection');
    u.release();
    await declineUpgrade(u, e.reason);
    return;
  }

  const hold = new SocketHold(app, HANDSHAKE_HOLD_BYTES);
  // An application that resets during the handshake takes the whole attempt down.
  void hold.whenFailed().then(() => {
    if (!tcp.destroyed) tcp.resetAndDestroy();
  });
  const started = process.hrtime.bigint();
  if (peer !== null) tcp.write(encodePreamble({ clc: true, port: dst.port }));
  const machine = new ClcClient({
    peerId: ctx.links.peerId,
    clcTimeoutMs: ctx.config.timeouts.clcHandshakeMs,
    linkTimeoutMs: ctx.config.timeouts.linkSetupMs,
    maxPeerRmbeSize: maxPeerRmbSize(ctx.config.limits),
    rdma: prepared.rdma,
    peerIndicatedSmc: true,
    ipArea: proposalAreaFor(tcp.localAddress ?? '0.0.0.0'),
    firstContact: prepared.firstContact,
    ...(prepared.reuse === undefined ? {} : { reuse: prepared.reuse }),
    ...(prepared.rdmaForFirstContact === undefined
      ? {}
      : { rdmaForFirstContact: prepared.rdmaForFirstContact }),
    // SMC-Rv2 only: the tenant's EID decides, and no subnet check stands between pods of
    // different nodes (v1 requires a common prefix).
    smcrV2: smcrV2Options(ctx, prepared.rdma.gid),
  });
  const outcome = await runClcHandshake({
    machine,
    socket: tcp,
    prepared,
    peerId: ctx.links.peerId,
    syncTimeoutMs: ctx.config.timeouts.clcHandshakeMs,
    kernelPeer: peer === null,
    expectServerReply: true,
    log,
  });
  ctx.metrics.handshakeSeconds(Number(process.hrtime.bigint() - started) / 1e9);
  u.handshakeDone();
  const held = hold.release();
  if (outcome.kind !== 'established') u.release();

  if (held.error !== null) {
    ctx.metrics.connection('declined', 'internal-error');
    conn.declined(FallbackReason.InternalError);
    log.info({ err: held.error }, 'application failed during the handshake');
    resetBoth(app, tcp);
    return;
  }

  if (peer === null && outcome.kind !== 'established' && !outcome.peerSpokeClc) {
    await reconnectPlain(u, held, outcome.kind === 'fallback' ? outcome.description : outcome.reason);
    return;
  }

  switch (outcome.kind) {
    case 'established': {
      ctx.metrics.connection('upgraded', 'none');
      conn.upgraded(outcome.connection);
      const clog = log.child({ smcConn: outcome.connection.id, link: outcome.connection.linkId });
      clog.info({ peer: peer?.pod ?? 'kernel' }, 'connection upgraded to SMC-R');
      await carryUpgraded(ctx, conn, app, tcp, held, outcome.connection, clog);
      return;
    }
    case 'fallback': {
      const next = afterFailure(ctx.identity, outcome.reason, 'peer-sidecar');
      log[next.action === 'reject' ? 'warn' : fallbackLogLevel(outcome.reason)](
        {
          reason: outcome.reason,
          code: outcome.code,
          origin: outcome.origin,
          description: outcome.description,
        },
        next.action === 'reject' ? 'SMC-R required but not established; resetting' : 'falling back to TCP',
      );
      const decline = { code: outcome.code, origin: outcome.origin };
      // Hostile input (or a misconfigured peer) counts where every such kind does, on both sides.
      if (outcome.reason === FallbackReason.PeerRmbTooLarge) ctx.metrics.rdmaError(outcome.reason);
      if (next.action === 'reject') {
        ctx.metrics.connection('declined', outcome.reason);
        conn.declined(outcome.reason, decline);
        resetBoth(app, tcp);
        return;
      }
      ctx.metrics.connection('fallback', outcome.reason);
      conn.fallback(outcome.reason, decline);
      const result = await tcpRelay(ctx)(
        { socket: app, pending: held.pending, ended: held.ended },
        { socket: tcp, pending: outcome.residual },
        { onBytes: conn.counter('tcp', ctx.metrics.byteCounter('tcp')) },
      );
      log.debug({ result }, 'relay finished');
      return;
    }
    case 'aborted': {
      const reason = outcome.cause === 'closed' ? FallbackReason.PeerReset : FallbackReason.ProtocolError;
      if (peer !== null && afterFailure(ctx.identity, reason, 'direct').action !== 'reject') {
        await continueDirect(u, held, reason, outcome.reason);
        return;
      }
      ctx.metrics.connection('declined', reason);
      conn.declined(reason);
      log.warn({ why: outcome.reason, reason }, 'CLC handshake aborted; resetting');
      resetBoth(app, tcp);
      return;
    }
  }
}

/**
 * The peer sidecar ended the handshake without an answer (it reset or closed the connection: it
 * was overloaded, restarting, or gave up waiting). Nothing was committed: the application's bytes
 * are still held here and the peer's application received none of them. So the connection goes on
 * as TCP over a new connection to the original destination, as if it had never been intercepted,
 * instead of resetting an application whose connection TCP alone would have carried.
 */
async function continueDirect(
  u: ClientUpgrade,
  held: ReturnType<SocketHold['release']>,
  reason: FallbackReason,
  why: string,
): Promise<void> {
  if (!u.tcp.destroyed) u.tcp.resetAndDestroy();
  await relayHeldOverNewConnection(u, held, reason, 'warn', {
    msg: 'peer sidecar ended the handshake without an answer; continuing over a new TCP connection',
    why,
    via: 'direct',
  });
}

/** Carries the application's connection over a new TCP connection to where it was going, held bytes first. */
async function relayHeldOverNewConnection(
  u: ClientUpgrade,
  held: ReturnType<SocketHold['release']>,
  reason: FallbackReason,
  level: 'info' | 'warn',
  detail: { msg: string } & Record<string, unknown>,
): Promise<void> {
  const { ctx, conn, app, dst, log } = u;
  const upstream = await connectOriginal(ctx, conn, app, dst, reason, log);
  if (upstream === null) return;
  const { msg, ...rest } = detail;
  await relayPlain(
    ctx,
    conn,
    { socket: app, pending: held.pending, ended: held.ended },
    { socket: upstream },
    reason,
    log,
    msg,
    rest,
    level,
  );
}

/**
 * A server without a sidecar that echoed the SMC option but answered our Proposal with something
 * other than CLC (or not at all) is no SMC server, and that connection has carried our Proposal to
 * its application: it is dropped, the destination is kept off the option for a while, and the
 * application's connection goes on over a new plain one with every byte it sent meanwhile.
 */
async function reconnectPlain(
  u: ClientUpgrade,
  held: ReturnType<SocketHold['release']>,
  why: string,
): Promise<void> {
  const { ctx, conn, app, tcp } = u;
  const skipMs = ctx.config.policy.kernelPeerSkipMs;
  const skipped = skipMs > 0 && ctx.syn !== undefined && ctx.syn.skipPeer(tcp, skipMs);
  tcp.destroy();
  const reason = FallbackReason.PeerNotSmc;
  if (afterFailure(ctx.identity, reason, 'direct').action === 'reject') {
    ctx.metrics.connection('declined', reason);
    conn.declined(reason);
    app.resetAndDestroy();
    return;
  }
  await relayHeldOverNewConnection(u, held, reason, 'info', {
    msg: 'peer echoed the SMC option but does not speak CLC; relaying over a new TCP connection',
    why,
    skippedForMs: skipped ? skipMs : 0,
  });
}
