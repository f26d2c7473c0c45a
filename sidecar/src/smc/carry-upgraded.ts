import type { Socket } from 'node:net';
import type { ProxyContext } from '../context.js';
import type { Logger } from '../log.js';
import type { TrackedConnection } from '../ops/connections.js';
import type { PipeResult } from '../relay/pipe.js';
import { endInOrder } from '../relay/reset-on-exit.js';
import type { SocketHold } from './hold.js';
import type { SmcConnection } from './smc-connection.js';

/**
 * Carries an upgraded connection until it ends, on either side of the handshake: the bytes held
 * during the handshake first, then the data path. A reset the sidecar itself caused (the peer
 * sidecar vanished, the link failed, the peer broke the protocol) is counted and logged at warn;
 * then our end of the sidecars' TCP connection is closed in order.
 */
export async function carryUpgraded(
  ctx: ProxyContext,
  conn: TrackedConnection,
  app: Socket,
  tcp: Socket,
  held: ReturnType<SocketHold['release']>,
  connection: SmcConnection,
  log: Logger,
): Promise<PipeResult> {
  const result = await connection.run(
    { socket: app, pending: held.pending, ended: held.ended },
    conn.counter('rdma', ctx.metrics.byteCounter('rdma')),
  );
  log.debug({ result }, 'SMC-R connection finished');
  if (result.resetCause !== undefined) {
    ctx.metrics.appReset(result.resetCause);
    log.warn(
      { cause: result.resetCause, tx: result.tx, rx: result.rx },
      'sidecar reset the application connection',
    );
  }
  endInOrder(tcp);
  return result;
}
