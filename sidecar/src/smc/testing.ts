import type { LocalRdmaParams } from '../handshake/types.js';
import { FallbackReason } from '../policy/reasons.js';
import { LinkSetupError } from './link-errors.js';
import {
  type LinkGroupManager,
  type LinkGroupStats,
  NO_LINK_GROUPS,
  type PreparedSmcConnection,
  type SmcPeer,
} from './link-group-manager.js';
import { makePeerId } from './peer-id.js';
import type { SmcConnection } from './smc-connection.js';

/** Plausible RDMA parameters for CLC messages in tests (no device behind them). */
export function fakeRdmaParams(seed = 1): LocalRdmaParams {
  return {
    gid: Buffer.from(`fe800000000000000000000000000${seed.toString(16).padStart(3, '0')}`, 'hex'),
    mac: Buffer.from([0x02, 0, 0, 0, 0, seed & 0xff]),
    qpn: 0x100 + seed,
    rmbRkey: 0x1000 + seed,
    rmbeIndex: 1,
    rmbeAlertToken: 0x20000 + seed,
    rmbeSize: 2,
    qpMtu: 3,
    rmbVirtualAddress: 0x7f0000000000n + BigInt(seed),
    initialPsn: 0x1234 + seed,
  };
}

export interface FakeLinkGroupManagerOptions {
  /** What establish() does after the CLC exchange; default: fail like a QP that never reaches RTS. */
  establish?: (peer: SmcPeer) => Promise<SmcConnection>;
  /** prepare() fails with this reason. */
  prepareFails?: LinkSetupError['reason'];
  seed?: number;
}

/** A link group manager that runs the whole CLC exchange but has no RDMA device behind it. */
export class FakeLinkGroupManager implements LinkGroupManager {
  readonly peerId = makePeerId(null);
  readonly prepared: SmcPeer[] = [];
  released = 0;

  constructor(private readonly opts: FakeLinkGroupManagerOptions = {}) {}

  available(): boolean {
    return true;
  }

  prepare(peer: SmcPeer): Promise<PreparedSmcConnection> {
    if (this.opts.prepareFails !== undefined) {
      return Promise.reject(new LinkSetupError(this.opts.prepareFails, 'fake prepare failure'));
    }
    this.prepared.push(peer);
    const establish =
      this.opts.establish ??
      (() =>
        Promise.reject(new LinkSetupError(FallbackReason.LinkSetupFailed, 'fake: QP did not reach RTS')));
    let released = false;
    return Promise.resolve({
      rdma: fakeRdmaParams(this.opts.seed ?? 1),
      firstContact: true,
      establish: () => establish(peer),
      release: () => {
        if (!released) this.released++;
        released = true;
      },
    });
  }

  stats(): LinkGroupStats {
    return { ...NO_LINK_GROUPS };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
