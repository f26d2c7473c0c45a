import type { Socket } from 'node:net';
import { type ProxyContext, tcpRelay } from '../context.js';
import { formatSocketAddress, type SocketAddress } from '../net/ip.js';
import type { TrackedConnection } from '../ops/connections.js';
import { FallbackReason } from '../policy/reasons.js';
import { connectTcp } from './connect.js';
import { newConnectionId } from './ids.js';
import { clientHelloVerdict } from '../protocol/clc/first-message.js';
import { type FirstBytes, readFirstMessage } from '../smc/first-message.js';
import { serveClc } from '../smc/server-session.js';

/**
 * Handles one connection accepted on the inbound port: plain TCP from a peer
 * without a sidecar (or whose sidecar could not reach ours), relayed to the
 * local application on the port it was addressed to; or, with
 * `policy.kernelPeers`, a kernel SMC-R client whose SYN announced SMC: its CLC
 * is answered here and the connection continues over SMC-R or TCP.
 */
export async function handleInbound(ctx: ProxyContext, conn: Socket): Promise<void> {
  const entry = ctx.connections.open(newConnectionId(), 'inbound', 'inbound');
  entry.setPeer(conn.remoteAddress, conn.remotePort);
  try {
    await handle(ctx, conn, entry);
  } finally {
    ctx.connections.close(entry);
  }
}

async function handle(ctx: ProxyContext, conn: Socket, entry: TrackedConnection): Promise<void> {
  const connId = entry.id;
  const log = ctx.log.child({
    conn: connId,
    side: 'inbound',
    src: conn.remoteAddress,
    srcPort: conn.remotePort,
  });
  conn.on('error', (err) => log.debug({ err }, 'inbound socket error'));
  // Read before anything else: the kernel frees the saved SYN once it is read.
  const kernelPeer = ctx.syn?.smcAnnounced(conn) ?? false;
  let dst: SocketAddress;
  try {
    dst = await ctx.originalDst.resolve(conn);
  } catch (err) {
    ctx.metrics.connection('declined', FallbackReason.OriginalDstUnknown);
    entry.declined(FallbackReason.OriginalDstUnknown);
    log.warn({ err }, 'original destination unknown; resetting');
    conn.resetAndDestroy();
    return;
  }
  // The destination is one of this pod's own addresses; as the sidecar's uid our connect is not redirected again.
  const target = { address: dst.address, port: dst.port };
  entry.setLocal(dst.address, dst.port);
  let app: Socket;
  try {
    app = await connectTcp(target, ctx.config.timeouts.connectMs);
  } catch (err) {
    log.info({ err, target: formatSocketAddress(target) }, 'local application refused; resetting');
    entry.declined(null, null, 'local application refused');
    conn.resetAndDestroy();
    return;
  }
  app.on('error', (err) => log.debug({ err }, 'application socket error'));
  let first: FirstBytes | null = null;
  if (kernelPeer) {
    entry.handshake();
    // A kernel SMC-R client: its CLC Proposal follows on this connection, no preamble. A client
    // whose SYN carried the option but whose first bytes are not a Proposal does not speak SMC:
    // those bytes are its application's, and the connection stays plain TCP (no Decline).
    first = await readFirstMessage(conn, clientHelloVerdict, ctx.config.timeouts.clcHandshakeMs);
    if (first.verdict === 'clc') {
      await serveClc(ctx, conn, app, first.bytes, entry, log.child({ peerKind: 'kernel' }), 'kernel');
      return;
    }
    log.info(
      { reason: FallbackReason.PeerNotSmc, firstBytes: first.verdict, ended: first.ended },
      'client announced SMC in its SYN but did not open with a CLC Proposal; relaying over TCP',
    );
  }
  const reason =
    first !== null
      ? FallbackReason.PeerNotSmc
      : ctx.directory().lookup(conn.remoteAddress ?? '') !== undefined
        ? FallbackReason.PeerChoseTcp
        : FallbackReason.PeerNotInDirectory;
  ctx.metrics.connection('fallback', reason);
  entry.fallback(reason);
  const result = await tcpRelay(ctx)(
    { socket: app },
    { socket: conn, ...(first === null ? {} : { pending: first.bytes, ended: first.ended }) },
    { onBytes: entry.counter('tcp', ctx.metrics.byteCounter('tcp')) },
  );
  log.debug({ result }, 'inbound relay finished');
}
