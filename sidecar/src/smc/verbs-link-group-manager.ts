import { randomBytes, randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import type { CompletionQueue, MemoryRegion, QueuePair } from '../../../native/index.js';
import type { DataPath, SidecarConfig } from '../config/schema.js';
import type { LocalRdmaParams, NegotiatedLink } from '../handshake/types.js';
import type { Logger } from '../log.js';
import { FallbackReason } from '../policy/reasons.js';
import { ibMtuToBytes, rmbeSizeToCompressed } from '../protocol/clc/constants.js';
import type { LlcConfirmLink } from '../protocol/llc/confirm-link.js';
import { LinkSetupError } from './link-errors.js';
import type {
  LinkCommit,
  LinkGroupManager,
  LinkGroupStats,
  PreparedSmcConnection,
  SmcPeer,
} from './link-group-manager.js';
import { LlcChannel } from './llc-channel.js';
import { makePeerId } from './peer-id.js';
import type { RdmaDevice } from './rdma-device.js';
import type { SmcConnection } from './smc-connection.js';
import { JsSmcConnection } from './js-smc-connection.js';
import { NativeSmcConnection } from './native-smc-connection.js';

/** SMC_LINKS_PER_LGR_MAX / SMC_RMBS_PER_LGR_MAX as we advertise them: one link, one connection. */
const MAX_LINKS = 1;
const MAX_CONNS = 1;

/** Per-link resources: its own CQ, the RC QP, the RMB (remote-writable) and the send ring for the pump. */
interface Link {
  readonly id: string;
  readonly uid: Buffer;
  readonly cq: CompletionQueue;
  readonly qp: QueuePair;
  readonly rmb: Buffer;
  readonly rmbMr: MemoryRegion;
  readonly sendRing: Buffer;
  readonly sendMr: MemoryRegion;
  readonly llc: LlcChannel;
  readonly psn: number;
  readonly alertToken: number;
  /** The data path using this link, released first on teardown. */
  connection: { dispose(): void } | null;
  closed: boolean;
}

export interface VerbsLinkGroupManagerOptions {
  device: RdmaDevice;
  config: SidecarConfig;
  log: Logger;
  /** See `rdma.dataPath` in the config schema. */
  dataPath: DataPath;
  onRdmaError?: (kind: string) => void;
}

/**
 * SMC-R resources on a real RoCE device. Because the native data pump takes
 * a QP exclusively, every SMC connection gets its own link group with one
 * link (first contact each time): CQ, RC QP, RMB and send ring. After CLC the
 * QP goes to RTS and the first link is confirmed over LLC (the server sends
 * CONFIRM LINK, the client answers), as in smcr_serv_conf_first_link /
 * smcr_clnt_conf_first_link.
 */
export class VerbsLinkGroupManager implements LinkGroupManager {
  readonly peerId: Buffer;
  private readonly links = new Set<Link>();
  private nextAlertToken = randomInt(1, 0x7fffffff);

  constructor(private readonly opts: VerbsLinkGroupManagerOptions) {
    this.peerId = makePeerId(opts.device.mac);
    if (opts.dataPath === 'auto' && !this.nativePump) {
      opts.log.warn(
        'the verbs addon has no DataPump: SMC-R connections use the JavaScript data path (dataPath auto -> js)',
      );
    } else if (opts.dataPath === 'native' && !this.nativePump) {
      opts.log.warn('dataPath native but the verbs addon has no DataPump: every connection relays over TCP');
    }
  }

  /** The data path SMC-R connections use (`none`: SMC-R is not attempted), for logs and metrics. */
  get dataPath(): 'native' | 'js' | 'link-only' | 'none' {
    return this.effectiveDataPath() ?? 'none';
  }

  private get nativePump(): boolean {
    return typeof (this.opts.device.verbs as unknown as Record<string, unknown>)['DataPump'] === 'function';
  }

  /** The data path connections will use, or null when none can carry bytes. */
  private effectiveDataPath(): 'native' | 'js' | 'link-only' | null {
    switch (this.opts.dataPath) {
      case 'auto':
        return this.nativePump ? 'native' : 'js';
      case 'native':
        return this.nativePump ? 'native' : null;
      case 'js':
      case 'link-only':
        return this.opts.dataPath;
    }
  }

  available(): boolean {
    return this.effectiveDataPath() !== null;
  }

  stats(): LinkGroupStats {
    return { linkGroups: this.links.size, links: this.links.size };
  }

  prepare(peer: SmcPeer): Promise<PreparedSmcConnection> {
    const link = this.createLink(peer);
    this.links.add(link);
    const { device } = this.opts;
    const rdma: LocalRdmaParams = {
      gid: device.gid,
      mac: device.mac,
      qpn: link.qp.qpn,
      rmbRkey: link.rmbMr.rkey,
      rmbeIndex: 1,
      rmbeAlertToken: link.alertToken,
      rmbeSize: rmbeSizeToCompressed(link.rmb.byteLength),
      qpMtu: device.ibMtu,
      rmbVirtualAddress: BigInt(link.rmbMr.addr),
      initialPsn: link.psn,
    };
    const log = this.opts.log.child({
      conn: peer.connId,
      link: link.id,
      peer: peer.address,
      role: peer.role,
    });
    return Promise.resolve({
      rdma,
      firstContact: true,
      establish: (negotiated: NegotiatedLink, tcp: Socket, gate?: LinkCommit) =>
        this.establish(link, negotiated, tcp, log, gate),
      release: () => this.destroyLink(link),
    });
  }

  private createLink(peer: SmcPeer): Link {
    const { device, config } = this.opts;
    const { verbs, context, pd, channel } = device;
    const made: { close(): void }[] = [];
    try {
      // Room for the native pump: 32 receive slots of its own beside the LLC ring, 44-byte inline CDCs.
      const cq = context.createCq(channel, 256);
      made.push(cq);
      const qp = pd.createQp({
        sendCq: cq,
        maxSendWr: 32,
        maxRecvWr: 64,
        maxSendSge: 2,
        maxRecvSge: 1,
        maxInlineData: 64,
      });
      made.unshift(qp);
      const rmb = verbs.allocBuffer(config.limits.rmbSize);
      const rmbMr = pd.registerMr(rmb, { localWrite: true, remoteWrite: true });
      made.unshift(rmbMr);
      const sendRing = verbs.allocBuffer(config.limits.rmbSize);
      const sendMr = pd.registerMr(sendRing, { localWrite: true });
      made.unshift(sendMr);
      const llc = new LlcChannel(verbs, pd, qp, cq);
      made.unshift(llc);
      qp.modifyToInit({ port: device.ibPort, remoteWrite: true });
      llc.postReceives();
      const alertToken = this.nextAlertToken;
      this.nextAlertToken = (this.nextAlertToken % 0x7fffffff) + 1;
      return {
        id: `${peer.connId}/${qp.qpn.toString(16)}`,
        uid: randomBytes(4),
        cq,
        qp,
        rmb,
        rmbMr,
        sendRing,
        sendMr,
        llc,
        psn: verbs.randomPsn(),
        alertToken,
        connection: null,
        closed: false,
      };
    } catch (err) {
      for (const m of made) m.close();
      throw new LinkSetupError(FallbackReason.BufferRegistrationFailed, 'cannot create link resources', {
        cause: err,
      });
    }
  }

  private async establish(
    link: Link,
    n: NegotiatedLink,
    tcp: Socket,
    log: Logger,
    gate?: LinkCommit,
  ): Promise<SmcConnection> {
    const { device, config } = this.opts;
    // Before our commit: the link setup budget. After it: long enough for the peer to either
    // answer or decline over TCP (which ends the handshake through the CLC driver).
    const setupMs = config.timeouts.linkSetupMs;
    const committedMs = setupMs + config.timeouts.clcHandshakeMs;
    const commit = (what: string): void => {
      if (gate !== undefined && !gate.commit()) {
        throw new LinkSetupError(FallbackReason.LinkSetupFailed, `handshake gave up before ${what}`);
      }
    };
    const mtuBytes = ibMtuToBytes(n.qpMtu);
    try {
      link.qp.modifyToRtr({
        remoteQpn: n.peer.qpn,
        remotePsn: n.peer.initialPsn,
        remoteGid: n.peer.gid,
        sgidIndex: device.gidIndex,
        port: device.ibPort,
        ...(mtuBytes === null ? {} : { mtu: mtuBytes as 256 | 512 | 1024 | 2048 | 4096 }),
      });
      link.qp.modifyToRts({ psn: link.psn });
    } catch (err) {
      throw new LinkSetupError(FallbackReason.LinkSetupFailed, 'QP did not reach RTS', { cause: err });
    }
    const confirm = (response: boolean): LlcConfirmLink => ({
      kind: 'confirm-link',
      response,
      noRmbeEyecatcher: true,
      senderMac: device.mac,
      senderGid: device.gid,
      senderQpn: link.qp.qpn,
      linkNum: 1,
      linkUid: link.uid,
      maxLinks: MAX_LINKS,
      maxConns: MAX_CONNS,
    });
    try {
      if (n.role === 'server') {
        // As smcr_serv_conf_first_link, but the client decides: it commits by answering, and
        // declines over TCP instead when it gives up first. So we wait for either.
        commit('CONFIRM LINK');
        await link.llc.send(confirm(false), committedMs);
        const answer = await link.llc.receive(committedMs);
        if (answer.kind !== 'confirm-link' || !answer.response) {
          throw new LinkSetupError(
            FallbackReason.LinkSetupFailed,
            `expected CONFIRM LINK response, got ${answer.kind}`,
          );
        }
      } else {
        const request = await link.llc.receive(setupMs);
        if (request.kind !== 'confirm-link' || request.response) {
          throw new LinkSetupError(
            FallbackReason.LinkSetupFailed,
            `expected CONFIRM LINK, got ${request.kind}`,
          );
        }
        // The response is our commit: the server starts its data path when it arrives.
        commit('the CONFIRM LINK response');
        await link.llc.send(confirm(true), committedMs);
      }
    } catch (err) {
      if (err instanceof LinkSetupError) throw err;
      throw new LinkSetupError(FallbackReason.LinkSetupFailed, 'LLC CONFIRM LINK failed', { cause: err });
    }
    log.info({ peerQpn: n.peer.qpn, mtu: mtuBytes }, 'SMC-R link confirmed');
    const path = this.effectiveDataPath();
    if (path === 'js') {
      const connection = new JsSmcConnection({
        id: `${link.alertToken.toString(16)}`,
        linkId: link.id,
        verbs: device.verbs,
        pd: device.pd,
        qp: link.qp,
        cq: link.cq,
        llc: link.llc,
        rmb: link.rmb,
        sendRing: link.sendRing,
        sendMr: link.sendMr,
        localToken: link.alertToken,
        peer: {
          addr: n.peer.rmbVirtualAddress,
          rkey: n.peer.rmbRkey,
          size: n.peer.rmbeSizeBytes,
          token: n.peer.rmbeAlertToken,
        },
        log,
        onClosed: () => this.destroyLink(link),
        onRdmaError: (kind) => this.opts.onRdmaError?.(kind),
      });
      link.connection = connection;
      return connection;
    }
    if (path === 'native') {
      // The staging ring mirrors the peer's RMBE: it must be at least that large.
      let stageMr = link.sendMr;
      let ownStage: MemoryRegion | null = null;
      if (n.peer.rmbeSizeBytes > link.sendRing.byteLength) {
        try {
          ownStage = device.pd.registerMr(device.verbs.allocBuffer(n.peer.rmbeSizeBytes), {
            localWrite: true,
          });
        } catch (err) {
          throw new LinkSetupError(
            FallbackReason.BufferRegistrationFailed,
            'cannot register the staging ring',
            {
              cause: err,
            },
          );
        }
        stageMr = ownStage;
      }
      const ring = link.llc.receiveRing;
      const native = new NativeSmcConnection({
        id: `${link.alertToken.toString(16)}`,
        linkId: link.id,
        verbs: device.verbs,
        qp: link.qp,
        cq: link.cq,
        llc: link.llc,
        llcRecvMr: ring.mr,
        llcSlotSize: ring.slotSize,
        stageMr,
        rmbMr: link.rmbMr,
        localToken: link.alertToken,
        peer: {
          addr: n.peer.rmbVirtualAddress,
          rkey: n.peer.rmbRkey,
          size: n.peer.rmbeSizeBytes,
          token: n.peer.rmbeAlertToken,
        },
        tcp,
        log,
        onClosed: () => this.destroyLink(link),
        onRdmaError: (kind) => this.opts.onRdmaError?.(kind),
      });
      link.connection = {
        dispose: () => {
          native.dispose();
          ownStage?.close();
        },
      };
      return native;
    }
    throw new LinkSetupError(
      FallbackReason.LinkSetupFailed,
      'link confirmed; data path disabled (link-only)',
      {
        declineAfterCommit: true,
      },
    );
  }

  private destroyLink(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    this.links.delete(link);
    const steps = [
      () => link.connection?.dispose(),
      () => link.qp.close(),
      () => link.llc.close(),
      () => link.sendMr.close(),
      () => link.rmbMr.close(),
      () => link.cq.close(),
    ];
    for (const step of steps) {
      try {
        step();
      } catch (err) {
        this.opts.log.warn({ err, link: link.id }, 'releasing link resources failed');
      }
    }
  }

  close(): Promise<void> {
    for (const link of [...this.links]) this.destroyLink(link);
    this.opts.device.close();
    return Promise.resolve();
  }
}
