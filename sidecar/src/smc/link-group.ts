import { randomBytes } from 'node:crypto';
import type {
  CompletionQueue,
  MemoryRegion,
  ProtectionDomain,
  QueuePair,
  SmcLink,
} from '../../../native/index.js';
import type { Logger } from '../log.js';
import type { VerbsModule } from '../native-loader.js';
import { LLC_DELETE_REASON } from '../protocol/llc/constants.js';
import { LlcChannel } from './llc-channel.js';
import { type AnyLlcMessage, asLlcVersion, decodeLlc, encodeLlc } from './llc-codec.js';
import { answerLlcRequest, PeerRkeyTable } from './llc-responder.js';
import type { RdmaDevice } from './rdma-device.js';

/**
 * A remote memory buffer of ours with one RMBE, registered local write +
 * remote write (never remote read), and the staging ring that mirrors the
 * peer's RMBE for outgoing data (local write only).
 */
export interface Rmb {
  readonly buf: Buffer;
  readonly mr: MemoryRegion;
  readonly stage: Buffer;
  readonly stageMr: MemoryRegion;
  /** The peer knows its rkey: from a first-contact CLC message or a CONFIRM RKEY it answered. */
  confirmed: boolean;
}

/** The peer's half of the link, from the first contact. */
export interface LinkPeer {
  qpn: number;
  gid: Buffer;
  mac: Buffer;
}

export type LinkGroupState = 'pending' | 'ready' | 'ended';

export interface LinkGroupOptions {
  id: string;
  role: 'client' | 'server';
  peerAddress: string;
  /** Whom the group belongs to (SmcPeer.key): the peer pod, whichever address family was used. */
  peerKey: string;
  device: RdmaDevice;
  /** Bytes per RMB and per staging ring. */
  rmbSize: number;
  /** RMBs kept for later connections (limits.rmbPoolSize); others are deleted at the peer. */
  rmbPoolSize: number;
  /** Later connections may join (native data path); otherwise the group serves one connection. */
  shareable: boolean;
  /** An idle group (no connection) ends after this long; the server's timer is the shorter one. */
  idleMs: number;
  /** LLC request/response budget (CONFIRM RKEY). */
  llcTimeoutMs: number;
  log: Logger;
  onEnded: (group: LinkGroup, reason: string) => void;
  onRdmaError: (kind: string) => void;
}

/** What a connection holds of its link group. */
export interface LinkSlot {
  readonly rmb: Rmb;
  readonly token: number;
}

interface LlcWaiter {
  match: (m: AnyLlcMessage) => boolean;
  resolve: (m: AnyLlcMessage) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** Send queue depth of a link: at most this many SENDs of ours are unacknowledged at a time. */
const SEND_WRS = 128;
/**
 * Receive slots of a link: more than the peer's send queue can have in flight,
 * so a SEND never finds the ring empty (no RNR NAK and retry; the kernel's rxe
 * has crashed in that path under load).
 */
const RECV_SLOTS = 256;

/**
 * An SMC-R link group with one link (RFC 7609 "link group"; kernel smc_core's
 * struct smc_link_group): the RC QP and its CQ, the LLC exchange on it, and
 * the RMBs of its connections. Once the first link is confirmed, the native
 * SmcLink carries every connection's CDCs and the LLC flows (CONFIRM RKEY for
 * each RMB added later, DELETE RKEY, TEST LINK, DELETE LINK). RMBs are kept
 * for reuse by later connections of the same group (only after an orderly
 * close, so no late write of an aborted peer lands in a new connection) and
 * deregistered when the group ends: an rkey is only ever known to this
 * group's peer.
 *
 * Each group has its own protection domain (the kernel's smcr_link_init
 * allocates a PD per link): its QP is the only one that can reach its RMBs,
 * so a peer holding another link group of this pod gets a remote access error
 * on its own link for any rkey of this group, guessed or learnt.
 */
export class LinkGroup {
  readonly id: string;
  readonly uid = randomBytes(4);
  readonly pd: ProtectionDomain;
  readonly cq: CompletionQueue;
  readonly qp: QueuePair;
  readonly llc: LlcChannel;
  readonly psn: number;
  state: LinkGroupState = 'pending';
  peer: LinkPeer | null = null;
  /** SMC-R version of the link (fixed by the first contact): the LLC messages' layout. */
  smcVersion: 1 | 2 = 1;
  /** Connections the group may carry: ours, or less when the peer's first contact said so (v2.1). */
  maxConnections = 1;
  native: SmcLink | null = null;
  private readonly rmbs = new Set<Rmb>();
  private readonly free: Rmb[] = [];
  /** RMBs whose DELETE RKEY is out (or went unanswered): registered, used by no connection. */
  private readonly retiring = new Set<Rmb>();
  /** The DELETE RKEY flow in progress; the next one waits for it. */
  private deleteRkeyFlow: Promise<void> = Promise.resolve();
  /** The peer's confirmed RMBs: at most SMC_RMBS_PER_LGR_MAX, however many CONFIRM RKEYs arrive. */
  private readonly peerRkeys = new PeerRkeyTable();
  /** LLC trouble already logged at info (malformed, unsupported kinds): a flood logs once per kind. */
  private readonly logged = new Set<string>();
  private readonly waiters = new Set<LlcWaiter>();
  private connections = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private reported = { unknown: 0, malformed: 0, early: 0 };
  private markEnded: () => void = () => undefined;
  /** Settles when the group ends, whoever ends it. */
  readonly whenEnded: Promise<void> = new Promise((resolve) => {
    this.markEnded = resolve;
  });

  constructor(private readonly o: LinkGroupOptions) {
    this.id = o.id;
    const { verbs, context, channel } = o.device;
    const made: { close(): void }[] = [];
    try {
      const pd = context.allocPd();
      this.pd = pd;
      made.push(pd);
      // Room for a shared link: RECV_SLOTS native receive slots beside the LLC ring, CQEs for every
      // posted receive and every signalled send, 44-byte inline CDCs.
      this.cq = context.createCq(channel, 1024);
      made.unshift(this.cq);
      this.qp = pd.createQp({
        sendCq: this.cq,
        maxSendWr: SEND_WRS,
        maxRecvWr: RECV_SLOTS + 16,
        maxSendSge: 2,
        maxRecvSge: 1,
        maxInlineData: 64,
      });
      made.unshift(this.qp);
      this.llc = new LlcChannel(verbs, pd, this.qp, this.cq);
      made.unshift(this.llc);
      this.qp.modifyToInit({ port: o.device.ibPort, remoteWrite: true });
      this.llc.postReceives();
      this.psn = verbs.randomPsn();
    } catch (err) {
      for (const m of made) m.close();
      throw err;
    }
  }

  get role(): 'client' | 'server' {
    return this.o.role;
  }

  get peerAddress(): string {
    return this.o.peerAddress;
  }

  get peerKey(): string {
    return this.o.peerKey;
  }

  get shareable(): boolean {
    return this.o.shareable;
  }

  get connectionCount(): number {
    return this.connections;
  }

  /** State read after an await (TypeScript keeps the narrowing from before it). */
  private get ended(): boolean {
    return this.state === 'ended';
  }

  /** RMBs registered: in use by a connection, pooled for the next one, or retiring. */
  get rmbCounts(): { inUse: number; pooled: number; retiring: number } {
    const pooled = this.free.length;
    const retiring = this.retiring.size;
    return { inUse: this.rmbs.size - pooled - retiring, pooled, retiring };
  }

  /** Bytes registered for this group: RMBs with their staging rings, the LLC ring, extra staging rings. */
  get registeredBytes(): number {
    if (this.state === 'ended') return 0;
    let bytes = this.llc.registeredBytes + this.extraStagingBytes;
    for (const r of this.rmbs) bytes += r.buf.byteLength + r.stage.byteLength;
    return bytes;
  }

  /** Staging rings a connection registered beside its RMB (a peer RMBE larger than ours). */
  extraStagingBytes = 0;

  /** The group takes one more connection (cancels the idle timer). */
  join(): void {
    this.connections++;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /**
   * A connection of the group is over. Its RMB goes back to the pool when it
   * ended in order and the pool has room; otherwise it is retired.
   */
  leave(slot: LinkSlot | null, orderly: boolean): void {
    if (slot !== null) {
      this.native?.forget(slot.token);
      if (this.state !== 'ended' && this.rmbs.has(slot.rmb)) {
        if (orderly && this.free.length < this.o.rmbPoolSize) this.free.push(slot.rmb);
        else void this.retire(slot.rmb);
      }
    }
    this.connections = Math.max(0, this.connections - 1);
    if (this.state === 'ended') return;
    if (!this.o.shareable) {
      this.end('connection closed', false);
      return;
    }
    if (this.connections === 0 && this.state === 'ready') {
      this.idleTimer = setTimeout(() => this.end('idle', true), this.o.idleMs);
      this.idleTimer.unref();
    }
  }

  /** A new RMB registered for remote write, not yet known to the peer. */
  newRmb(): Rmb {
    const { verbs } = this.o.device;
    const { pd } = this;
    const buf = verbs.allocBuffer(this.o.rmbSize);
    const mr = pd.registerMr(buf, { localWrite: true, remoteWrite: true });
    let stageMr: MemoryRegion;
    const stage = verbs.allocBuffer(this.o.rmbSize);
    try {
      stageMr = pd.registerMr(stage, { localWrite: true });
    } catch (err) {
      mr.close();
      throw err;
    }
    const rmb: Rmb = { buf, mr, stage, stageMr, confirmed: false };
    this.rmbs.add(rmb);
    return rmb;
  }

  /**
   * An RMB for a connection joining the ready group: a pooled one, or a new
   * one whose rkey the peer confirms over LLC (CONFIRM RKEY) before any CLC
   * message names it, as smcr_lgr_reg_rmbs does.
   */
  async rmbForJoin(): Promise<Rmb> {
    const pooled = this.free.pop();
    if (pooled !== undefined) return pooled;
    const rmb = this.newRmb();
    try {
      await this.confirmRkey(rmb);
    } catch (err) {
      this.dropRmb(rmb);
      throw err;
    }
    return rmb;
  }

  /**
   * An RMB no connection will use again. The peer first deletes its rkey
   * (DELETE RKEY, as the kernel's smcr_buf_unuse): after its answer, RC
   * ordering guarantees no WRITE of an aborted connection is still to land, and
   * the RMB is deregistered. Without an answer it stays registered, used by no
   * connection, until the group ends: a late WRITE never reaches a new
   * connection's data. An RMB the peer never learnt is deregistered at once.
   */
  private async retire(rmb: Rmb): Promise<void> {
    if (!rmb.confirmed) {
      this.dropRmb(rmb);
      return;
    }
    if (this.state !== 'ready') return; // the group is being set up or torn down: teardown frees it
    this.retiring.add(rmb);
    const rkey = rmb.mr.rkey >>> 0;
    // One DELETE RKEY at a time, as the kernel runs one LLC flow at a time: its response does not
    // name the rkey (smc_llc_rmt_delete_rkey clears the list), so only order tells them apart.
    const request: AnyLlcMessage =
      this.smcVersion === 2
        ? {
            kind: 'delete-rkey',
            version: 2,
            response: false,
            negative: false,
            invalidCount: 0,
            rkeys: [rkey],
          }
        : { kind: 'delete-rkey', response: false, negative: false, errorMask: 0, rkeys: [rkey] };
    const turn = this.deleteRkeyFlow.then(() =>
      this.ended ? undefined : this.request(request, (m) => m.kind === 'delete-rkey' && m.response),
    );
    this.deleteRkeyFlow = turn.then(
      () => undefined,
      () => undefined,
    );
    try {
      await turn;
    } catch (err) {
      if (this.ended) return;
      this.o.log[this.firstTime('delete-rkey-unanswered') ? 'info' : 'debug'](
        { err, link: this.id, rkey },
        'DELETE RKEY unanswered: the RMB stays registered, unused, until the link group ends',
      );
      return;
    }
    // A negative answer (the peer did not hold the rkey) also means it will not write there.
    if (this.ended || !this.retiring.delete(rmb)) return;
    this.dropRmb(rmb);
    this.o.log.debug({ link: this.id, rkey }, 'RMB retired: the peer deleted its rkey, deregistered');
  }

  private dropRmb(rmb: Rmb): void {
    this.rmbs.delete(rmb);
    closeRmb(this.o.device.verbs, rmb);
  }

  private async confirmRkey(rmb: Rmb): Promise<void> {
    const vaddr = BigInt(rmb.mr.addr);
    const answer = await this.request(
      asLlcVersion(
        {
          kind: 'confirm-rkey',
          response: false,
          negative: false,
          retry: false,
          numRkeys: 0,
          own: { rmbKey: rmb.mr.rkey, rmbVaddr: vaddr },
          others: [],
        },
        this.smcVersion,
      ),
      (m) => m.kind === 'confirm-rkey' && m.response && m.own.rmbKey === rmb.mr.rkey >>> 0,
    );
    if (answer.kind === 'confirm-rkey' && answer.negative) throw new Error('peer refused CONFIRM RKEY');
    rmb.confirmed = true;
  }

  /** The peer confirmed this rkey of its RMB (first contact CLC, or CONFIRM RKEY). */
  peerKnows(rkey: number, vaddr: bigint): boolean {
    return this.peerRkeys.has(rkey, vaddr);
  }

  /** How many peer RMBs the group holds (bounded by SMC_RMBS_PER_LGR_MAX). */
  get peerRkeyCount(): number {
    return this.peerRkeys.size;
  }

  /** After the first link is confirmed: the native link takes the QP and carries every connection. */
  async activate(
    peer: LinkPeer,
    firstPeerRmb: { rkey: number; vaddr: bigint },
    firstToken: number,
  ): Promise<void> {
    this.peer = peer;
    this.peerRkeys.add(firstPeerRmb.rkey, firstPeerRmb.vaddr);
    // Messages that arrived before the link (CDCs the peer's pump sent right after CONFIRM LINK)
    // sit in the CQ's queue; only microtasks run until the link owns the CQ, so none is missed.
    const early: Buffer[] = [];
    while (this.cq.pendingCount > 0) {
      const wc = await this.cq.next();
      if (wc.status !== 'IBV_WC_SUCCESS')
        throw new Error(`work completion ${wc.status} before the link started`);
      if (wc.opcode.startsWith('RECV') && wc.wrId < this.llc.slotCount)
        early.push(this.llc.takeSlot(wc.wrId));
    }
    const { verbs } = this.o.device;
    const ring = this.llc.receiveRing;
    const link = new verbs.SmcLink(this.qp, {
      recvSlots: RECV_SLOTS,
      postedRecvs: { mr: ring.mr, slots: this.llc.slotCount, slotSize: ring.slotSize },
    });
    this.native = link;
    link.expect(firstToken);
    link.on('llc', (d) => {
      if (d.data !== undefined) this.onLlc(d.data);
    });
    link.on('error', (d) => {
      this.o.onRdmaError(d.reason ?? 'link-error');
      this.end(`link failed: ${d.reason ?? 'unknown'}`, false);
    });
    for (const m of early) link.inject(m);
    this.state = 'ready';
    this.statsTimer = setInterval(() => this.reportStats(), 1000);
    this.statsTimer.unref();
  }

  /** CDCs the link dropped (wrong token or length, or too many before their pump) reach the metrics. */
  private reportStats(): void {
    const link = this.native;
    if (link === null || link.state === 'closed') return;
    const st = link.stats();
    const count = (kind: string, from: number, to: number): void => {
      for (let i = from; i < to; i++) this.o.onRdmaError(kind);
    };
    count('cdc-bad-token', this.reported.unknown, st.unknownToken);
    count('cdc-malformed', this.reported.malformed, st.badCdc);
    count('cdc-early-dropped', this.reported.early, st.earlyDropped);
    if (st.unknownToken + st.badCdc > this.reported.unknown + this.reported.malformed)
      this.o.log.info({ link: this.id, unknownToken: st.unknownToken, badLength: st.badCdc }, 'CDCs dropped');
    this.reported = { unknown: st.unknownToken, malformed: st.badCdc, early: st.earlyDropped };
  }

  private send(m: AnyLlcMessage): void {
    if (this.native === null || this.native.state !== 'up') throw new Error('link is not up');
    this.native.sendLlc(encodeLlc(m));
  }

  private request(m: AnyLlcMessage, match: (m: AnyLlcMessage) => boolean): Promise<AnyLlcMessage> {
    return new Promise((resolve, reject) => {
      const w: LlcWaiter = {
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          reject(new Error(`no LLC ${m.kind} response within ${this.o.llcTimeoutMs} ms`));
        }, this.o.llcTimeoutMs),
      };
      this.waiters.add(w);
      try {
        this.send(m);
      } catch (err) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** LLC messages on the running link (smc_llc_rx_handler's requests and responses). */
  private onLlc(data: Buffer): void {
    let m: AnyLlcMessage;
    try {
      m = decodeLlc(data);
    } catch (err) {
      // As the kernel: an LLC message it cannot parse is dropped; the link stays up.
      this.o.onRdmaError('llc-malformed');
      this.o.log[this.firstTime('malformed') ? 'info' : 'debug'](
        { err, link: this.id, type: data[0] },
        'malformed LLC message dropped',
      );
      return;
    }
    if (m.response) {
      for (const w of this.waiters) {
        if (!w.match(m)) continue;
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.resolve(m);
        return;
      }
      this.o.log.debug({ llc: m.kind, link: this.id }, 'unsolicited LLC response ignored');
      return;
    }
    const answer = answerLlcRequest(m, this.peerRkeys);
    if (answer.refused !== null) {
      this.o.onRdmaError(answer.refused);
      this.o.log[this.firstTime(`${answer.refused}:${m.kind}`) ? 'info' : 'debug'](
        { llc: m.kind, link: this.id, rkeys: this.peerRkeys.size },
        answer.refused === 'llc-rkey-refused'
          ? 'CONFIRM RKEY refused: the link group holds SMC_RMBS_PER_LGR_MAX peer RMBs'
          : 'LLC request not supported on this link; ignored',
      );
    }
    if (m.kind === 'delete-link')
      this.o.log.info({ link: this.id, reason: m.reason, orderly: m.orderly }, 'peer deleted the link');
    try {
      if (answer.reply !== null) this.send(answer.reply);
    } catch (err) {
      // E.g. a full send queue under a flood of requests: that answer is lost, the link stays.
      this.o.log[this.firstTime('send-failed') ? 'info' : 'debug'](
        { err, llc: m.kind, link: this.id },
        'LLC response could not be sent',
      );
    }
    if (answer.endLink) this.end('peer deleted the link', false);
  }

  /** True the first time `what` happens on this group (bounded: one entry per LLC kind and refusal). */
  private firstTime(what: string): boolean {
    if (this.logged.has(what)) return false;
    this.logged.add(what);
    return true;
  }

  /**
   * Ends the group: DELETE LINK to the peer when we end it in order, then the
   * native link (its pumps end with an error), the QP, CQ and every RMB.
   */
  end(reason: string, tellPeer: boolean): void {
    if (this.state === 'ended') return;
    const wasReady = this.state === 'ready';
    this.state = 'ended';
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    this.statsTimer = null;
    this.reportStats();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new Error(`link group ended: ${reason}`));
    }
    this.waiters.clear();
    if (tellPeer && wasReady) {
      try {
        this.send(
          asLlcVersion(
            {
              kind: 'delete-link',
              response: false,
              all: true,
              orderly: true,
              linkNum: 1,
              reason: LLC_DELETE_REASON.PROG_INIT_TERM,
            },
            this.smcVersion,
          ),
        );
      } catch (err) {
        this.o.log.debug({ err, link: this.id }, 'DELETE LINK not sent');
      }
    }
    this.o.log.info({ link: this.id, reason, peer: this.o.peerAddress }, 'link group ended');
    this.o.onEnded(this, reason);
    this.markEnded();
    // Let a DELETE LINK leave the send queue before the QP goes to ERR.
    const teardown = (): void => this.teardown();
    if (tellPeer && wasReady) setTimeout(teardown, 200).unref();
    else teardown();
  }

  private teardown(): void {
    const steps: (() => void)[] = [
      () => this.native?.close(),
      () => this.qp.close(),
      () => this.llc.close(),
      ...[...this.rmbs].map((r) => () => closeRmb(this.o.device.verbs, r)),
      () => this.cq.close(),
      () => this.pd.close(),
    ];
    this.rmbs.clear();
    this.free.length = 0;
    this.retiring.clear();
    for (const step of steps) {
      try {
        step();
      } catch (err) {
        this.o.log.warn({ err, link: this.id }, 'releasing link group resources failed');
      }
    }
  }
}

/** Deregisters an RMB and gives its pages back at once: a burst's RMBs do not wait for a GC. */
function closeRmb(verbs: Pick<VerbsModule, 'releaseBuffer'>, rmb: Rmb): void {
  rmb.stageMr.close();
  rmb.mr.close();
  verbs.releaseBuffer(rmb.stage);
  verbs.releaseBuffer(rmb.buf);
}
