import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import type { MemoryRegion } from '../../../native/index.js';
import type { DataPath, SidecarConfig } from '../config/schema.js';
import type { LocalRdmaParams, NegotiatedLink } from '../handshake/types.js';
import type { Logger } from '../log.js';
import { FallbackReason } from '../policy/reasons.js';
import { ibMtuToBytes, rmbeSizeToCompressed } from '../protocol/clc/constants.js';
import type { LlcConfirmLink } from '../protocol/llc/confirm-link.js';
import { LinkSetupError } from './link-errors.js';
import {
  type LinkCommit,
  type LinkGroupManager,
  type LinkGroupStats,
  NO_LINK_GROUPS,
  type PreparedSmcConnection,
  type ReleaseOptions,
  type SmcPeer,
} from './link-group-manager.js';
import { LinkGroup, type LinkSlot, type Rmb } from './link-group.js';
import { asLlcVersion } from './llc-codec.js';
import { makePeerId } from './peer-id.js';
import type { RdmaDevice } from './rdma-device.js';
import type { SmcConnection } from './smc-connection.js';
import { NativeSmcConnection } from './native-smc-connection.js';

/** Links per link group we advertise: one (no second link for failover yet). */
const MAX_LINKS = 1;
/** Connections per link group: SMC_RMBS_PER_LGR_MAX for a shared link, one otherwise. */
const MAX_CONNS_SHARED = 255;
/** The client keeps an idle link group 10 s longer than the server, as SMC_LGR_FREE_DELAY_CLNT does. */
const CLIENT_IDLE_EXTRA_MS = 10_000;

/** The peer's RMBE as the data paths address it: where to write, with which rkey, how much, and its token. */
function peerRmbe(n: NegotiatedLink): { addr: bigint; rkey: number; size: number; token: number } {
  return {
    addr: n.peer.rmbVirtualAddress,
    rkey: n.peer.rmbRkey,
    size: n.peer.rmbeSizeBytes,
    token: n.peer.rmbeAlertToken,
  };
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
 * SMC-R resources on a real RoCE device, in link groups (one link each) per
 * peer sidecar and role. With the native data path a link group is shared:
 * the first connection with a peer creates it (first contact: new QP, CLC,
 * LLC CONFIRM LINK), later ones join it with a new or pooled RMB (CONFIRM
 * RKEY over the link) and the server's Accept naming the existing link, as in
 * smc_conn_create. First contacts to one peer are serialised (the kernel's
 * smc_client_lgr_pending / smc_server_lgr_pending), so a burst of connections
 * shares one link group. An idle group ends after timeouts.linkGroupIdleMs
 * with DELETE LINK. The link-only data path gives each connection a link
 * group of its own.
 */
export class VerbsLinkGroupManager implements LinkGroupManager {
  readonly peerId: Buffer;
  private readonly groups = new Set<LinkGroup>();
  /** First contacts in progress, by `${role}|${peer key}`. */
  private readonly pendingFirstContact = new Map<string, Promise<void>>();
  private nextAlertToken = randomInt(1, 0x7fffffff);
  private nextGroupId = 1;

  constructor(private readonly opts: VerbsLinkGroupManagerOptions) {
    this.peerId = makePeerId(opts.device.mac);
    if (opts.dataPath !== 'link-only' && !this.nativePump) {
      opts.log.warn(
        `dataPath ${opts.dataPath} but the verbs addon has no DataPump: every connection relays over TCP`,
      );
    }
  }

  /** The data path SMC-R connections use (`none`: SMC-R is not attempted), for logs and metrics. */
  get dataPath(): 'native' | 'link-only' | 'none' {
    return this.effectiveDataPath() ?? 'none';
  }

  private get nativePump(): boolean {
    return typeof (this.opts.device.verbs as unknown as Record<string, unknown>)['DataPump'] === 'function';
  }

  /** The data path connections will use, or null when none can carry bytes. */
  private effectiveDataPath(): 'native' | 'link-only' | null {
    switch (this.opts.dataPath) {
      case 'auto':
      case 'native':
        return this.nativePump ? 'native' : null;
      case 'link-only':
        return 'link-only';
    }
  }

  available(): boolean {
    return this.effectiveDataPath() !== null;
  }

  stats(): LinkGroupStats {
    const st = { ...NO_LINK_GROUPS };
    for (const g of this.groups) {
      if (g.state === 'ended') continue;
      st.linkGroups++;
      st.links++;
      st.registeredBytes += g.registeredBytes;
      const rmbs = g.rmbCounts;
      st.rmbsInUse += rmbs.inUse;
      st.rmbsPooled += rmbs.pooled;
      st.rmbsRetiring += rmbs.retiring;
    }
    return st;
  }

  private token(): number {
    const t = this.nextAlertToken;
    this.nextAlertToken = (this.nextAlertToken % 0x7fffffff) + 1;
    return t;
  }

  private rdmaParams(g: LinkGroup, rmb: Rmb, token: number): LocalRdmaParams {
    const { device } = this.opts;
    return {
      gid: device.gid,
      mac: device.mac,
      qpn: g.qp.qpn,
      rmbRkey: rmb.mr.rkey,
      rmbeIndex: 1,
      rmbeAlertToken: token,
      rmbeSize: rmbeSizeToCompressed(rmb.buf.byteLength),
      qpMtu: device.ibMtu,
      rmbVirtualAddress: BigInt(rmb.mr.addr),
      initialPsn: g.psn,
    };
  }

  private connLog(peer: SmcPeer, g: LinkGroup): Logger {
    return this.opts.log.child({ conn: peer.connId, link: g.id, peer: peer.address, role: peer.role });
  }

  /** A ready, shared group with this peer in this role that has room for one more connection. */
  private reusable(peer: SmcPeer): LinkGroup | null {
    for (const g of this.groups) {
      if (
        g.shareable &&
        g.state === 'ready' &&
        g.role === peer.role &&
        g.peerKey === peer.key &&
        g.native?.state === 'up' &&
        g.connectionCount < g.maxConnections
      )
        return g;
    }
    return null;
  }

  async prepare(peer: SmcPeer): Promise<PreparedSmcConnection> {
    const shareable = this.effectiveDataPath() === 'native';
    if (!shareable) return this.prepareFirstContact(peer, false);
    const key = `${peer.role}|${peer.key}`;
    for (let pending = this.pendingFirstContact.get(key); pending !== undefined;) {
      await pending;
      pending = this.pendingFirstContact.get(key);
    }
    const group = this.reusable(peer);
    if (group !== null) return this.prepareJoin(group, peer);
    let done: () => void = () => undefined;
    this.pendingFirstContact.set(key, new Promise<void>((resolve) => (done = resolve)));
    const settle = (): void => {
      if (this.pendingFirstContact.get(key) !== undefined) this.pendingFirstContact.delete(key);
      done();
    };
    try {
      return this.prepareFirstContact(peer, true, settle);
    } catch (err) {
      settle();
      throw err;
    }
  }

  private createGroup(peer: SmcPeer, shareable: boolean): LinkGroup {
    const { device, config, log } = this.opts;
    const idle = config.timeouts.linkGroupIdleMs + (peer.role === 'client' ? CLIENT_IDLE_EXTRA_MS : 0);
    const id = `lg${(this.nextGroupId++).toString(16)}`;
    try {
      const g = new LinkGroup({
        id,
        role: peer.role,
        peerAddress: peer.address,
        peerKey: peer.key,
        device,
        rmbSize: config.limits.rmbSize,
        rmbPoolSize: config.limits.rmbPoolSize,
        shareable,
        idleMs: idle,
        llcTimeoutMs: config.timeouts.linkSetupMs,
        log,
        onEnded: (ended) => this.groups.delete(ended),
        onRdmaError: (kind) => this.opts.onRdmaError?.(kind),
      });
      this.groups.add(g);
      return g;
    } catch (err) {
      throw new LinkSetupError(FallbackReason.BufferRegistrationFailed, 'cannot create link resources', {
        cause: err,
      });
    }
  }

  /** First contact: a new link group whose first link the CLC exchange and CONFIRM LINK set up. */
  private prepareFirstContact(
    peer: SmcPeer,
    shareable: boolean,
    settle: () => void = () => undefined,
  ): PreparedSmcConnection {
    const g = this.createGroup(peer, shareable);
    let rmb: Rmb;
    try {
      rmb = g.newRmb();
    } catch (err) {
      g.end('no RMB', false);
      throw new LinkSetupError(FallbackReason.BufferRegistrationFailed, 'cannot register an RMB', {
        cause: err,
      });
    }
    rmb.confirmed = true; // the CLC Accept/Confirm carries it
    g.join();
    const slot: LinkSlot = { rmb, token: this.token() };
    const log = this.connLog(peer, g);
    let released = false;
    return {
      rdma: this.rdmaParams(g, rmb, slot.token),
      firstContact: true,
      establish: async (n: NegotiatedLink, tcp: Socket, gate?: LinkCommit) => {
        try {
          return await this.establishFirstContact(g, slot, n, tcp, log, gate);
        } finally {
          settle();
        }
      },
      release: () => {
        settle();
        if (released) return;
        released = true;
        g.end('handshake fell back', false);
      },
    };
  }

  /** A connection joining a ready link group: the server's Accept names the existing link. */
  private async prepareJoin(g: LinkGroup, peer: SmcPeer): Promise<PreparedSmcConnection> {
    g.join();
    let rmb: Rmb;
    try {
      rmb = await g.rmbForJoin();
    } catch (err) {
      g.leave(null, false);
      throw new LinkSetupError(FallbackReason.LinkSetupFailed, 'CONFIRM RKEY failed on the link group', {
        cause: err,
      });
    }
    const slot: LinkSlot = { rmb, token: this.token() };
    g.native?.expect(slot.token);
    const log = this.connLog(peer, g);
    const linkPeer = g.peer;
    let released = false;
    // The server may start a new link group although we offered this one (client only).
    let fresh: PreparedSmcConnection | null = null;
    const release = (o?: ReleaseOptions): void => {
      fresh?.release(o);
      if (released) return;
      released = true;
      if (o?.terminateLinkGroup === true) g.end('peer does not know this link group', false);
      else g.leave(slot, o?.committed !== true);
    };
    return {
      rdma: this.rdmaParams(g, rmb, slot.token),
      firstContact: false,
      ...(linkPeer === null
        ? {}
        : { reuse: { peerQpn: linkPeer.qpn, peerGid: linkPeer.gid, peerMac: linkPeer.mac } }),
      ...(peer.role === 'client'
        ? {
            rdmaForFirstContact: () => {
              try {
                fresh = this.prepareFirstContact(peer, true);
                return fresh.rdma;
              } catch (err) {
                log.info({ err }, 'no resources for the new link group the server started');
                return null;
              }
            },
          }
        : {}),
      establish: async (n: NegotiatedLink, tcp: Socket, gate?: LinkCommit) => {
        if (n.firstContact) {
          if (fresh === null)
            throw new LinkSetupError(FallbackReason.LinkSetupFailed, 'unexpected first contact');
          // Our offer to reuse is void: this connection lives on the new group.
          if (!released) {
            released = true;
            g.leave(slot, true);
          }
          return fresh.establish(n, tcp, gate);
        }
        return this.establishJoin(g, slot, n, tcp, log, gate);
      },
      release,
    };
  }

  private async establishJoin(
    g: LinkGroup,
    slot: LinkSlot,
    n: NegotiatedLink,
    tcp: Socket,
    log: Logger,
    gate?: LinkCommit,
  ): Promise<SmcConnection> {
    // The client runs its data path once its Confirm is out: from here a failure is an abort.
    if (gate !== undefined && !gate.commit()) {
      throw new LinkSetupError(FallbackReason.LinkSetupFailed, 'handshake gave up before joining the link');
    }
    const p = g.peer;
    if (g.state !== 'ready' || g.native === null || p === null) {
      throw new LinkSetupError(
        FallbackReason.LinkSetupFailed,
        `link group ${g.id} ended during the handshake`,
      );
    }
    // Nothing from the peer is used unchecked: the same link and version, and an RMB it confirmed on
    // this group.
    if ((n.smcVersion ?? 1) !== g.smcVersion) {
      throw new LinkSetupError(
        FallbackReason.LinkSetupFailed,
        `SMC-R v${n.smcVersion ?? 1} on a v${g.smcVersion} link`,
      );
    }
    if (n.peer.qpn !== p.qpn || !n.peer.gid.equals(p.gid)) {
      throw new LinkSetupError(
        FallbackReason.LinkSetupFailed,
        `peer names QP ${n.peer.qpn}, not link ${g.id}`,
      );
    }
    if (!g.peerKnows(n.peer.rmbRkey, n.peer.rmbVirtualAddress)) {
      throw new LinkSetupError(
        FallbackReason.LinkSetupFailed,
        'peer RMB was not confirmed on this link group',
      );
    }
    log.debug({ token: slot.token }, 'connection joins the link group');
    return this.nativeConnection(g, slot, n, tcp, log);
  }

  private async establishFirstContact(
    g: LinkGroup,
    slot: LinkSlot,
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
      g.qp.modifyToRtr({
        remoteQpn: n.peer.qpn,
        remotePsn: n.peer.initialPsn,
        remoteGid: n.peer.gid,
        sgidIndex: device.gidIndex,
        port: device.ibPort,
        ...(mtuBytes === null ? {} : { mtu: mtuBytes as 256 | 512 | 1024 | 2048 | 4096 }),
      });
      g.qp.modifyToRts({ psn: g.psn });
    } catch (err) {
      throw new LinkSetupError(FallbackReason.LinkSetupFailed, 'QP did not reach RTS', { cause: err });
    }
    // SMC-Rv2 (the sidecars' default) speaks the v2 LLC layouts; its first contact may lower the
    // group's connection limit (SMC-Rv2.1 max_conns).
    const version = n.smcVersion ?? 1;
    g.smcVersion = version;
    g.maxConnections = g.shareable
      ? Math.min(MAX_CONNS_SHARED, n.v2?.limits?.maxConns ?? MAX_CONNS_SHARED)
      : 1;
    const confirm = (response: boolean): LlcConfirmLink =>
      asLlcVersion(
        {
          kind: 'confirm-link',
          response,
          noRmbeEyecatcher: true,
          senderMac: device.mac,
          senderGid: device.gid,
          senderQpn: g.qp.qpn,
          linkNum: 1,
          linkUid: g.uid,
          maxLinks: MAX_LINKS,
          maxConns: g.maxConnections,
        },
        version,
      );
    try {
      if (n.role === 'server') {
        // As smcr_serv_conf_first_link, but the client decides: it commits by answering, and
        // declines over TCP instead when it gives up first. So we wait for either.
        commit('CONFIRM LINK');
        await g.llc.send(confirm(false), committedMs);
        const answer = await g.llc.receive(committedMs);
        if (answer.kind !== 'confirm-link' || !answer.response || ('version' in answer ? 2 : 1) !== version) {
          throw new LinkSetupError(
            FallbackReason.LinkSetupFailed,
            `expected CONFIRM LINK response, got ${answer.kind}`,
          );
        }
      } else {
        const request = await g.llc.receive(setupMs);
        if (
          request.kind !== 'confirm-link' ||
          request.response ||
          ('version' in request ? 2 : 1) !== version
        ) {
          throw new LinkSetupError(
            FallbackReason.LinkSetupFailed,
            `expected CONFIRM LINK, got ${request.kind}`,
          );
        }
        // The response is our commit: the server starts its data path when it arrives.
        commit('the CONFIRM LINK response');
        await g.llc.send(confirm(true), committedMs);
      }
    } catch (err) {
      if (err instanceof LinkSetupError) throw err;
      throw new LinkSetupError(FallbackReason.LinkSetupFailed, 'LLC CONFIRM LINK failed', { cause: err });
    }
    log.info({ peerQpn: n.peer.qpn, mtu: mtuBytes, smcVersion: version }, 'SMC-R link confirmed');
    const path = this.effectiveDataPath();
    if (path === 'native') {
      try {
        await g.activate(
          { qpn: n.peer.qpn, gid: n.peer.gid, mac: n.peer.mac },
          { rkey: n.peer.rmbRkey, vaddr: n.peer.rmbVirtualAddress },
          slot.token,
        );
      } catch (err) {
        throw new LinkSetupError(FallbackReason.LinkSetupFailed, 'the native link did not start', {
          cause: err,
        });
      }
      return this.nativeConnection(g, slot, n, tcp, log);
    }
    if (n.role === 'client') {
      // Link-only: the server declines once it holds our CONFIRM LINK response. Declining first
      // would race that response (it travels over RDMA, the Decline over TCP), so the client waits
      // for the server's Decline to end the group, and declines itself only if none comes.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        g.whenEnded,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, committedMs);
        }),
      ]);
      clearTimeout(timer);
    }
    throw new LinkSetupError(
      FallbackReason.LinkSetupFailed,
      'link confirmed; data path disabled (link-only)',
      {
        declineAfterCommit: true,
      },
    );
  }

  private nativeConnection(
    g: LinkGroup,
    slot: LinkSlot,
    n: NegotiatedLink,
    tcp: Socket,
    log: Logger,
  ): SmcConnection {
    const { device } = this.opts;
    const link = g.native;
    if (link === null)
      throw new LinkSetupError(FallbackReason.LinkSetupFailed, 'link group has no native link');
    // The staging ring mirrors the peer's RMBE: it must be at least that large.
    let stageMr = slot.rmb.stageMr;
    let ownStage: MemoryRegion | null = null;
    let ownStageBuf: Buffer | null = null;
    if (n.peer.rmbeSizeBytes > slot.rmb.stage.byteLength) {
      try {
        ownStageBuf = device.verbs.allocBuffer(n.peer.rmbeSizeBytes);
        ownStage = g.pd.registerMr(ownStageBuf, { localWrite: true });
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
      g.extraStagingBytes += n.peer.rmbeSizeBytes;
    }
    let left = false;
    const native = new NativeSmcConnection({
      id: `${slot.token.toString(16)}`,
      linkId: g.id,
      verbs: device.verbs,
      link,
      stageMr,
      rmbMr: slot.rmb.mr,
      localToken: slot.token,
      peer: peerRmbe(n),
      tcp,
      log,
      onClosed: (outcome) => {
        native.dispose();
        if (ownStage !== null && ownStageBuf !== null) {
          ownStage.close();
          device.verbs.releaseBuffer(ownStageBuf);
          g.extraStagingBytes -= n.peer.rmbeSizeBytes;
        }
        if (left) return;
        left = true;
        g.leave(slot, outcome === 'closed');
      },
      onRdmaError: (kind) => this.opts.onRdmaError?.(kind),
    });
    return native;
  }

  async close(): Promise<void> {
    const groups = [...this.groups];
    for (const g of groups) g.end('sidecar stopping', true);
    // end() lets a DELETE LINK leave the send queue before tearing the group down.
    if (groups.length > 0) await new Promise((resolve) => setTimeout(resolve, 300));
    this.opts.device.close();
  }
}
