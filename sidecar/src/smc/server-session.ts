import type { Socket } from 'node:net';
import { HANDSHAKE_HOLD_BYTES, type ProxyContext, tcpRelay } from '../context.js';
import { ClcServer } from '../handshake/server.js';
import type { LocalRdmaParams, PeerPolicy } from '../handshake/types.js';
import type { Logger } from '../log.js';
import { canonicalIp } from '../net/ip.js';
import type { TrackedConnection } from '../ops/connections.js';
import { afterFailure, decideInbound } from '../policy/decide.js';
import { maxPeerRmbSize } from '../config/schema.js';
import { fallbackLogLevel, FallbackReason } from '../policy/reasons.js';
import { connectTcp } from '../relay/connect.js';
import { runClcHandshake } from './clc-driver.js';
import { SocketHold } from './hold.js';
import { asLinkSetupError } from './link-errors.js';
import { linkGroupPeerKey, type PreparedSmcConnection } from './link-group-manager.js';
import { interfaceAddressesFor } from './local-subnet.js';
import { decodePreamble, PREAMBLE_LENGTH, preamblePortRefusal } from './preamble.js';
import { readExactly } from './read-exactly.js';
import { smcrV2Options } from './smcr-v2-options.js';
import { carryUpgraded } from './carry-upgraded.js';
import { admitProposal, declineWith } from './server-admission.js';

/**
 * Stands in for our RDMA parameters when we already know we will decline: the
 * machine's policy check refuses the Proposal before any of it is sent.
 */
const UNUSED_RDMA: LocalRdmaParams = {
  gid: Buffer.alloc(16),
  mac: Buffer.alloc(6),
  qpn: 0,
  rmbRkey: 0,
  rmbeIndex: 0,
  rmbeAlertToken: 0,
  rmbeSize: 0,
  qpMtu: 1,
  rmbVirtualAddress: 0n,
  initialPsn: 0,
};

function resetBoth(a: Socket | null, b: Socket): void {
  if (a !== null && !a.destroyed) a.resetAndDestroy();
  if (!b.destroyed) b.resetAndDestroy();
}

/**
 * The server half, on the SMC port: reads the preamble, connects to the local
 * application on the port the client's app dialled, then relays (plain
 * preamble) or runs the ClcServer machine and continues over SMC-R or TCP.
 */
export async function serveSmcConnection(ctx: ProxyContext, tcp: Socket, connId: string): Promise<void> {
  const conn = ctx.connections.open(connId, 'inbound', 'smc');
  conn.setPeer(tcp.remoteAddress, tcp.remotePort);
  const log = ctx.log.child({ conn: connId, side: 'server', peer: tcp.remoteAddress });
  try {
    await serve(ctx, tcp, conn, log);
  } finally {
    ctx.connections.close(conn);
  }
}

async function serve(ctx: ProxyContext, tcp: Socket, conn: TrackedConnection, log: Logger): Promise<void> {
  const timeoutMs = ctx.config.timeouts.clcHandshakeMs;
  let preamble;
  let rest: Buffer;
  try {
    const read = await readExactly(tcp, PREAMBLE_LENGTH, timeoutMs, 'sidecar preamble');
    preamble = decodePreamble(read.bytes);
    rest = read.rest;
  } catch (err) {
    log.warn({ err }, 'no valid preamble from the peer sidecar; resetting');
    conn.declined(FallbackReason.ProtocolError, null, 'no valid preamble');
    resetBoth(null, tcp);
    return;
  }
  const localAddress = canonicalIp(tcp.localAddress ?? '::1');
  conn.setLocal(localAddress, preamble.port);
  const refusal = preamblePortRefusal(
    preamble.port,
    ctx.ownPorts?.() ?? ctx.config.ports,
    ctx.config.intercept.excludeInboundPorts,
  );
  if (refusal !== null) {
    // A peer asking for a port no application connection could reach through us: a probe.
    log.warn(
      { port: preamble.port, why: refusal },
      'peer sidecar asked for a port it may not reach; resetting',
    );
    ctx.metrics.rdmaError('preamble-port');
    conn.declined(FallbackReason.ProtocolError, null, refusal);
    resetBoth(null, tcp);
    return;
  }
  let app: Socket;
  try {
    app = await connectTcp({ address: localAddress, port: preamble.port }, ctx.config.timeouts.connectMs);
  } catch (err) {
    log.info({ err, port: preamble.port }, 'local application not reachable; resetting');
    conn.declined(null, null, 'local application refused');
    resetBoth(null, tcp);
    return;
  }
  app.on('error', (err) => log.debug({ err }, 'application socket error'));
  const alog = log.child({ appPort: preamble.port });

  if (!preamble.clc) {
    alog.debug('plain relay requested by the peer sidecar');
    // The peer sidecar decided (and counts the connection with its reason).
    conn.fallback(null, null, 'peer sidecar asked for TCP');
    await tcpRelay(ctx)(
      { socket: app },
      { socket: tcp, pending: rest },
      { onBytes: conn.counter('tcp', ctx.metrics.byteCounter('tcp')) },
    );
    return;
  }
  await serveClc(ctx, tcp, app, rest, conn, alog);
}

/**
 * Who is on the other end of a CLC exchange we serve: a peer sidecar (it sent
 * the preamble; it counts the connection) or the kernel's SMC-R on a host
 * without a sidecar (its SYN carried the SMC option; we count it).
 */
export type ClcPeerKind = 'sidecar' | 'kernel';

export async function serveClc(
  ctx: ProxyContext,
  tcp: Socket,
  app: Socket,
  initial: Buffer,
  conn: TrackedConnection,
  log: Logger,
  peerKind: ClcPeerKind = 'sidecar',
): Promise<void> {
  const connId = conn.id;
  conn.handshake();
  const peerAddress = canonicalIp(tcp.remoteAddress ?? '::');
  // A peer sidecar is looked up by whichever of its pod's addresses it connected from.
  const peer = peerKind === 'kernel' ? undefined : ctx.directory().lookup(peerAddress);
  let eligibility: FallbackReason | null;
  if (peerKind === 'kernel') {
    // Not in the directory: the tenant check is the User EID alone (ClcServer, requireEidMatch).
    eligibility =
      ctx.identity.mode === 'Disabled'
        ? FallbackReason.ModeDisabled
        : ctx.links.available()
          ? null
          : FallbackReason.NoRdmaDevice;
  } else {
    const decision = decideInbound(ctx.identity, peer, { rdmaAvailable: ctx.links.available() });
    eligibility = decision.action === 'upgrade' ? null : decision.reason;
  }
  // The budget is one more reason to decline; its reservation lasts as long as the SMC-R connection.
  const admission = admitProposal(eligibility, ctx.budget);
  const release = admission.refusal === null ? admission.release : (): void => undefined;
  const handshakeDone = admission.refusal === null ? admission.handshakeDone : (): void => undefined;
  const budget = admission.refusal === null ? null : admission.budget;
  let refusal = admission.refusal;
  try {
    const count = (outcome: 'upgraded' | 'fallback' | 'declined', reason: FallbackReason | 'none'): void => {
      if (peerKind === 'kernel') ctx.metrics.connection(outcome, reason);
    };
    let prepared: PreparedSmcConnection | null = null;
    if (refusal === null) {
      try {
        prepared = await ctx.links.prepare({
          address: peerAddress,
          key: linkGroupPeerKey(peer, peerAddress),
          role: 'server',
          connId,
        });
      } catch (err) {
        const e = asLinkSetupError(err);
        ctx.metrics.rdmaError(e.reason);
        refusal = e.reason;
        release();
      }
    }
    const policy: PeerPolicy | undefined = refusal === null ? undefined : declineWith(refusal);

    const hold = new SocketHold(app, HANDSHAKE_HOLD_BYTES);
    void hold.whenFailed().then(() => {
      if (!tcp.destroyed) tcp.resetAndDestroy();
    });
    const machine = new ClcServer({
      peerId: ctx.links.peerId,
      clcTimeoutMs: ctx.config.timeouts.clcHandshakeMs,
      linkTimeoutMs: ctx.config.timeouts.linkSetupMs,
      maxPeerRmbeSize: maxPeerRmbSize(ctx.config.limits),
      rdma: prepared?.rdma ?? UNUSED_RDMA,
      peerIndicatedSmc: true,
      localAddresses: interfaceAddressesFor(tcp.localAddress ?? '::1'),
      firstContact: prepared?.firstContact ?? true,
      ...(policy === undefined ? {} : { policy }),
      smcrV2: { ...smcrV2Options(ctx, (prepared?.rdma ?? UNUSED_RDMA).gid), requireEidMatch: true },
    });
    const outcome = await runClcHandshake({
      machine,
      socket: tcp,
      initial,
      prepared,
      peerId: ctx.links.peerId,
      syncTimeoutMs: ctx.config.timeouts.clcHandshakeMs,
      kernelPeer: peerKind === 'kernel',
      log,
    });
    handshakeDone();
    const held = hold.release();
    if (outcome.kind !== 'established') release();
    if (held.error !== null) {
      conn.declined(FallbackReason.InternalError);
      log.info({ err: held.error }, 'application failed during the handshake');
      resetBoth(app, tcp);
      return;
    }
    switch (outcome.kind) {
      case 'established': {
        const clog = log.child({ smcConn: outcome.connection.id, link: outcome.connection.linkId });
        count('upgraded', 'none');
        conn.upgraded(outcome.connection);
        clog.info({ peerKind }, 'connection upgraded to SMC-R');
        await carryUpgraded(ctx, conn, app, tcp, held, outcome.connection, clog);
        return;
      }
      case 'fallback': {
        const reason = refusal ?? outcome.reason;
        const decline = { code: outcome.code, origin: outcome.origin };
        // Hostile input is counted here too: a peer sidecar's connections are counted by that peer.
        if (reason === FallbackReason.PeerRmbTooLarge) ctx.metrics.rdmaError(reason);
        if (afterFailure(ctx.identity, reason, 'peer-sidecar').action === 'reject') {
          count('declined', reason);
          conn.declined(reason, decline);
          log.warn({ reason, code: outcome.code }, 'SMC-R required but not established; resetting');
          resetBoth(app, tcp);
          return;
        }
        count('fallback', reason);
        conn.fallback(reason, decline);
        log[fallbackLogLevel(reason)](
          {
            reason,
            code: outcome.code,
            origin: outcome.origin,
            peerKind,
            ...(reason === FallbackReason.LimitReached && budget !== null ? { budget } : {}),
          },
          'falling back to TCP',
        );
        await tcpRelay(ctx)(
          { socket: app, pending: held.pending, ended: held.ended },
          { socket: tcp, pending: outcome.residual },
          { onBytes: conn.counter('tcp', ctx.metrics.byteCounter('tcp')) },
        );
        return;
      }
      case 'aborted': {
        const reason = outcome.cause === 'closed' ? FallbackReason.PeerReset : FallbackReason.ProtocolError;
        count('declined', reason);
        conn.declined(reason);
        log.warn({ why: outcome.reason }, 'CLC handshake aborted; resetting');
        resetBoth(app, tcp);
        return;
      }
    }
  } finally {
    release();
  }
}
