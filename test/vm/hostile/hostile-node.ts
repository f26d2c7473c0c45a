// The VM-side programs of test/vm/sidecar-hostile.test.ts, run compiled from dist/:
//   node dist/test/vm/hostile/hostile-node.js app      (node0) line echo application on :9000
//   node dist/test/vm/hostile/hostile-node.js attack   (node1) hostile peer of node0's sidecar
//
// `attack` talks to the server sidecar's SMC port directly: the sidecar preamble, then malformed
// CLC (each case on its own TCP connection; among them well-formed Proposals the server must
// decline: SMC-R v1 only, and SMC-Rv2 with another tenant's User EID), then complete SMC-Rv2
// handshakes on a real RC QP of rxe0 (v2 Proposal with the tenant's UEID, v2 Accept, v2 Confirm
// with the first-contact extension, LLC CONFIRM LINK v2) followed by CDC and LLC messages the
// server must refuse: a wrong alert token, a producer cursor past the server's RMBE, malformed v2
// LLC and CDC messages, a malformed LLC message in place of the CONFIRM LINK response, and the end
// of our data announced while write-blocked, as the Linux kernel does when its close times out
// with data still queued (more data after it, or none). Every
// connection leaves from its own source address (all listed in the server's directory, tenant
// team-a), so each one is a first contact with a link group of its own. Result lines:
// "RESULT {json}".
//
// `app` answers every line with "ECHO <line>"; a connection's first "TAG <name>" line names it in
// the "APP_EVENT <name> end|error <code>" lines printed when it ends.
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';

import {
  allocBuffer,
  openDevice,
  randomPsn,
  type CompletionChannel,
  type CompletionQueue,
  type Context,
  type MemoryRegion,
  type Mtu,
  type ProtectionDomain,
  type QueuePair,
} from '../../../native/index.js';
import { tenantUeidBytes } from '../../../sidecar/src/eid/tenant.js';
import {
  clientV2xLimits,
  firstContactHostname,
  type V2xLimits,
} from '../../../sidecar/src/handshake/negotiate.js';
import { ipv4ProposalArea } from '../../../sidecar/src/handshake/prefix-match.js';
import { parseIp } from '../../../sidecar/src/net/ip.js';
import {
  CDC_CONN_STATE_FLAG,
  CDC_MESSAGE_TYPE,
  decodeCdcMessage,
  encodeCdcMessage,
  type CdcConnectionState,
  type CdcProducerFlags,
} from '../../../sidecar/src/protocol/cdc.js';
import {
  clcMessageLength,
  decodeClcMessage,
  describeDeclineCode,
  encodeClcAcceptConfirmV2,
  encodeClcDecline,
  encodeClcProposal,
  IB_MTU,
  ibMtuToBytes,
  rmbeSizeFromCompressed,
  rmbeSizeToCompressed,
  SMC_CLC_DECL,
  SMC_CLC_OS,
  SMC_RELEASE,
  SMC_RELEASE_1,
  SMC_TYPE,
  type ClcAcceptConfirmV2,
  type ClcMessage,
} from '../../../sidecar/src/protocol/clc/index.js';
import { LLC_MESSAGE_LENGTH } from '../../../sidecar/src/protocol/llc/constants.js';
import { encodeLlcV2Message, LLC_V2_TYPE } from '../../../sidecar/src/protocol/llc/v2.js';
import { decodeLlc } from '../../../sidecar/src/smc/llc-codec.js';
import { encodePreamble } from '../../../sidecar/src/smc/preamble.js';
import { V2_MAX_CONNS, V2_MAX_LINKS } from '../../../sidecar/src/smc/smcr-v2-options.js';

const SERVER = '10.77.0.1';
const SMC_PORT = 15100;
const METRICS_PORT = 15190;
const HEALTH_PORT = 15121;
/** The line echo application behind the server sidecar. */
const APP_PORT = 9000;
const RMB_SIZE = 64 * 1024;
const RECV_SLOTS = 16;
const SLOT_SIZE = 64;
const WAIT_MS = 60_000;
/** The tenant of both pods and of every hostile address (hostile-node.sh's directory). */
const TENANT = 'team-a';
/** A tenant the server does not allow. */
const OTHER_TENANT = 'team-b';
/** The sidecars' cluster (their config leaves it at the default). */
const CLUSTER = 'cluster.local';

/** A tenant's SMC User EID as the sidecars derive it (ueidsFromConfig). */
function ueidOf(tenant: string): Buffer {
  return tenantUeidBytes({ cluster: CLUSTER, tenant });
}

/**
 * An SMC-Rv2-only Proposal as a sidecar sends it (ClcClient with offerV1 false): typeV1 N and an
 * empty local area, no IP prefix area, the v2 extension with the User EIDs and the RoCEv2 GID.
 */
function v2Proposal(o: { ueids: Buffer[]; roceV2Gid: Buffer }): Buffer {
  return encodeClcProposal({
    kind: 'proposal',
    version: 2,
    typeV1: SMC_TYPE.N,
    typeV2: SMC_TYPE.R,
    peerId: Buffer.alloc(8),
    gid: Buffer.alloc(16),
    mac: Buffer.alloc(6),
    smcd: { ismGid: 0n, ismChid: 0 },
    ipArea: null,
    v2Extension: {
      release: SMC_RELEASE,
      seid: false,
      userEids: o.ueids,
      roceV2Gid: o.roceV2Gid,
      maxConns: V2_MAX_CONNS,
      maxLinks: V2_MAX_LINKS,
      featureMask: 0,
      smcdV2: null,
    },
  });
}

/** The IPv4-mapped RoCEv2 GID of an address (as rxe0's GID index 1). */
const mappedGid = (address: string): Buffer => parseIp(`::ffff:${address}`);
const hex8 = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
const hex2 = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

function env(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set`);
  return v;
}

function result(r: Record<string, unknown>): void {
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
}

function note(msg: string): void {
  process.stdout.write(`[hostile ${(performance.now() / 1000).toFixed(1)}s] ${msg}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---- the application on node0 ------------------------------------------------------------------

function runApp(): void {
  createServer((s) => {
    let tag = '-';
    let pending = '';
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      pending += chunk;
      for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        if (tag === '-' && line.startsWith('TAG ')) tag = line.slice(4);
        s.write(`ECHO ${line}\n`);
      }
    });
    s.on('end', () => {
      process.stdout.write(`APP_EVENT ${tag} end\n`);
      s.end();
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      process.stdout.write(`APP_EVENT ${tag} error ${err.code ?? err.message}\n`);
    });
  }).listen(APP_PORT, '0.0.0.0');
}

// ---- HTTP to the server sidecar's metrics and health ports --------------------------------------

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: SERVER, port, path, timeout: 30_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function rdmaErrors(kind: string): Promise<number> {
  const { body } = await httpGet(METRICS_PORT, '/metrics');
  const line = body.split('\n').find((l) => l.startsWith(`smc_rdma_errors_total{kind="${kind}"} `));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

/** Link failures the server counted: `link-error` and work completion statuses (IBV_WC_*). */
async function linkFailures(): Promise<number> {
  const { body } = await httpGet(METRICS_PORT, '/metrics');
  let n = 0;
  for (const l of body.split('\n')) {
    if (/^smc_rdma_errors_total\{kind="(link-error|IBV_WC_[A-Z_]+)"\} /.test(l))
      n += Number(l.split(' ').pop());
  }
  return n;
}

/** Polls the server's error counter of `kind` until it reaches `atLeast` (counters are read every second). */
async function awaitRdmaErrors(kind: string, atLeast: number): Promise<number> {
  const end = Date.now() + 30_000;
  let n = await rdmaErrors(kind);
  while (n < atLeast && Date.now() < end) {
    await sleep(500);
    n = await rdmaErrors(kind);
  }
  return n;
}

// ---- TCP to the server sidecar -----------------------------------------------------------------

/** A TCP connection to the server sidecar that records what arrives and how it ends. */
class Peer {
  private buf = Buffer.alloc(0);
  /** 'fin', 'reset' (ECONNRESET) or another error code, once the server ended its side. */
  ended: string | null = null;
  closed = false;
  private wake: () => void = () => undefined;

  private constructor(readonly sock: Socket) {
    sock.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake();
    });
    sock.on('end', () => {
      this.ended ??= 'fin';
      this.wake();
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      this.ended ??= err.code === 'ECONNRESET' ? 'reset' : (err.code ?? err.message);
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.ended ??= 'close';
      this.wake();
    });
  }

  static open(source: string): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: SERVER, port: SMC_PORT, localAddress: source }, () => {
        s.off('error', reject);
        resolve(new Peer(s));
      });
      s.once('error', reject);
    });
  }

  get received(): number {
    return this.buf.byteLength;
  }

  write(b: Buffer | string): void {
    if (!this.sock.destroyed) this.sock.write(b);
  }

  /** Waits until `ready()` or the timeout; true when ready. */
  async until(ready: () => boolean, ms = WAIT_MS): Promise<boolean> {
    const end = Date.now() + ms;
    while (!ready()) {
      const left = end - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return true;
  }

  private clcReady(): number | null {
    if (this.buf.byteLength < 8) return null;
    const length = clcMessageLength(this.buf);
    return this.buf.byteLength >= length ? length : null;
  }

  /** The next CLC message, or null when the server ended the connection (or went quiet) first. */
  async readClc(ms = WAIT_MS): Promise<Buffer | null> {
    await this.until(() => this.clcReady() !== null || this.ended !== null, ms);
    const length = this.clcReady();
    if (length === null) return null;
    const msg = this.buf.subarray(0, length);
    this.buf = this.buf.subarray(length);
    return Buffer.from(msg);
  }

  /** The next text line (plain TCP relay), or null. */
  async readLine(ms = WAIT_MS): Promise<string | null> {
    await this.until(() => this.buf.includes(0x0a) || this.ended !== null, ms);
    const i = this.buf.indexOf(0x0a);
    if (i < 0) return null;
    const line = this.buf.subarray(0, i).toString('utf8');
    this.buf = this.buf.subarray(i + 1);
    return line;
  }

  async waitEnded(ms = WAIT_MS): Promise<string | null> {
    await this.until(() => this.ended !== null, ms);
    return this.ended;
  }

  destroy(): void {
    this.sock.destroy();
  }
}

// ---- RDMA ----------------------------------------------------------------------------------------

interface Device {
  context: Context;
  pd: ProtectionDomain;
  channel: CompletionChannel;
  gidIndex: number;
  gid: Buffer;
  mac: Buffer;
  ibMtu: number;
}

function openRxe(): Device {
  const context = openDevice(env('LAB_RXE'));
  const want = `::ffff:${env('LAB_IP')}`;
  const entry = context.queryGidTable(1).find((g) => g.gid === want && g.type === 'RoCEv2');
  if (entry === undefined) throw new Error(`no RoCEv2 GID ${want} on ${env('LAB_RXE')}`);
  const port = context.queryPort(1);
  const mac = Buffer.from(
    readFileSync(`/sys/class/net/${env('LAB_NETDEV')}/address`, 'utf8')
      .trim()
      .replace(/:/g, ''),
    'hex',
  );
  const channel = context.createCompletionChannel();
  channel.unref();
  return {
    context,
    pd: context.allocPd(),
    channel,
    gidIndex: entry.index,
    gid: parseIp(entry.gid),
    mac,
    ibMtu: IB_MTU[port.activeMtu],
  };
}

const NO_PRODUCER_FLAGS: CdcProducerFlags = {
  writeBlocked: false,
  urgentPending: false,
  urgentPresent: false,
  cursorUpdateRequested: false,
  failoverValidation: false,
};
const NO_CONN_STATE: CdcConnectionState = {
  peerDoneWriting: false,
  peerConnectionClosed: false,
  peerConnectionAbort: false,
};

/**
 * A hand-made SMC-R client connection: its own CQ, RC QP, 64 KiB RMB (remote-writable), receive
 * ring and send buffers, driven step by step so that each step can be replaced by a hostile one.
 */
class HostileLink {
  readonly cq: CompletionQueue;
  readonly qp: QueuePair;
  private readonly rmb = allocBuffer(RMB_SIZE);
  private readonly rmbMr: MemoryRegion;
  private readonly ring = allocBuffer(RECV_SLOTS * SLOT_SIZE);
  private readonly ringMr: MemoryRegion;
  private readonly out = allocBuffer(RMB_SIZE);
  private readonly outMr: MemoryRegion;
  readonly psn = randomPsn();
  readonly token = randomInt(1, 0x7fffffff);
  readonly peerId: Buffer;
  private nextSlot = 0;
  private wr = 1000;
  private seq = 0;
  /** The server's v2 Accept. */
  accept: ClcAcceptConfirmV2 | null = null;
  /** Release and link-group limits of the first contact (the server's Accept is final). */
  limits: V2xLimits | null = null;
  /** The server's CONFIRM LINK request: type byte, link number and id, its limits. */
  serverConfirmLink: {
    type: string;
    linkNum: number;
    linkUid: Buffer;
    maxConns: number;
    maxLinks: number;
  } | null = null;
  /** Bytes we wrote into the server's RMBE, bytes the server wrote into ours, bytes we consumed. */
  private prod = 0;
  private peerProd = 0;
  private cons = 0;
  /** Connection state bytes (CDC byte 25) of every CDC the server sent. */
  readonly serverConnFlags: number[] = [];
  tcp: Peer | null = null;

  constructor(
    private readonly dev: Device,
    readonly source: string,
  ) {
    this.peerId = Buffer.concat([randomBytes(2), dev.mac]);
    this.cq = dev.context.createCq(dev.channel, 256);
    this.qp = dev.pd.createQp({
      sendCq: this.cq,
      maxSendWr: 32,
      maxRecvWr: 64,
      maxSendSge: 1,
      maxRecvSge: 1,
      maxInlineData: 64,
    });
    this.rmbMr = dev.pd.registerMr(this.rmb, { localWrite: true, remoteWrite: true });
    this.ringMr = dev.pd.registerMr(this.ring, { localWrite: true });
    this.outMr = dev.pd.registerMr(this.out, { localWrite: true });
    this.qp.modifyToInit({ port: 1, remoteWrite: true });
    for (let i = 0; i < RECV_SLOTS; i++) this.postRecv(i);
  }

  private postRecv(slot: number): void {
    this.qp.postRecv({
      wrId: slot,
      sgList: [{ mr: this.ringMr, offset: slot * SLOT_SIZE, length: SLOT_SIZE }],
    });
  }

  private get peer(): ClcAcceptConfirmV2 {
    if (this.accept === null) throw new Error('no Accept yet');
    return this.accept;
  }

  get peerToken(): number {
    return this.peer.rmbeAlertToken;
  }

  get peerRmbeSize(): number {
    return rmbeSizeFromCompressed(this.peer.rmbeSize);
  }

  /** The server's RMB for this connection (rkey and address from its Accept) and our cursor in it. */
  get serverRmb(): { rkey: number; vaddr: bigint; produced: number } {
    return { rkey: this.peer.rmbRkey, vaddr: this.peer.rmbVirtualAddress, produced: this.prod };
  }

  /** One RDMA WRITE of `text` to any rkey and address on our QP; the completion's status. */
  async rawWrite(rkey: number, addr: bigint, text: string): Promise<string> {
    const data = Buffer.from(text);
    data.copy(this.out, 0);
    const wrId = this.wr++;
    this.qp.postSend({
      wrId,
      opcode: 'RDMA_WRITE',
      remoteAddr: addr,
      rkey,
      sgList: [{ mr: this.outMr, offset: 0, length: data.byteLength }],
    });
    return (await this.cq.waitFor(wrId, WAIT_MS)).status;
  }

  /**
   * Preamble, SMC-Rv2 Proposal with the tenant's UEID, v2 Accept (must be a first contact with
   * that EID), QP to RTS, v2 Confirm as ClcClient.onAcceptV2 sends it: the EID, the first-contact
   * extension echoing the server's release and limits, and our RoCEv2 GID list.
   */
  async clc(o: { rmbeSize?: number } = {}): Promise<void> {
    const tcp = await Peer.open(this.source);
    this.tcp = tcp;
    const ueid = ueidOf(TENANT);
    tcp.write(encodePreamble({ clc: true, port: APP_PORT }));
    tcp.write(v2Proposal({ ueids: [ueid], roceV2Gid: this.dev.gid }));
    const bytes = await tcp.readClc();
    if (bytes === null) throw new Error(`no Accept from the server (connection ${tcp.ended ?? 'silent'})`);
    const m = decodeClcMessage(bytes);
    if (m.kind === 'decline')
      throw new Error(`server declined the Proposal: ${describeDeclineCode(m.peerDiagnosis)}`);
    if (m.kind !== 'accept' || m.version !== 2)
      throw new Error(`expected a v2 Accept, got ${m.kind} v${m.version}`);
    if (!m.firstContact || m.firstContactExt === null) {
      throw new Error(
        `the server's Accept to ${this.source} is not a first contact: it reused a link group for a new source address, so the hostile cases would not be independent`,
      );
    }
    if (!m.eid.equals(ueid)) throw new Error(`the server's Accept names EID ${m.eid.toString('latin1')}`);
    const fce = m.firstContactExt;
    const negotiated = clientV2xLimits(fce, SMC_RELEASE);
    if (!negotiated.ok) throw new Error(`the server's first-contact limits: ${negotiated.detail}`);
    const limits = negotiated.value;
    this.accept = m;
    this.limits = limits;
    const mtu = Math.min(m.qpMtu, this.dev.ibMtu);
    this.qp.modifyToRtr({
      remoteQpn: m.qpn,
      remotePsn: m.initialPsn,
      remoteGid: m.gid,
      sgidIndex: this.dev.gidIndex,
      port: 1,
      mtu: (ibMtuToBytes(mtu) ?? 1024) as Mtu,
    });
    this.qp.modifyToRts({ psn: this.psn });
    tcp.write(
      encodeClcAcceptConfirmV2({
        kind: 'confirm',
        version: 2,
        firstContact: true,
        peerId: this.peerId,
        gid: this.dev.gid,
        mac: this.dev.mac,
        qpn: this.qp.qpn,
        rmbRkey: this.rmbMr.rkey,
        rmbeIndex: 1,
        rmbeAlertToken: this.token,
        rmbeSize: o.rmbeSize ?? rmbeSizeToCompressed(RMB_SIZE),
        qpMtu: mtu,
        rmbVirtualAddress: BigInt(this.rmbMr.addr),
        initialPsn: this.psn,
        eid: m.eid,
        firstContactExt: {
          v2Direct: fce.v2Direct,
          osType: SMC_CLC_OS.LINUX,
          release: limits.release,
          hostname: firstContactHostname('hostile'),
          v2x:
            limits.release >= SMC_RELEASE_1
              ? { maxConns: limits.maxConns, maxLinks: limits.maxLinks, featureMask: 0, vendorOptions: 0 }
              : { maxConns: 0, maxLinks: 0, featureMask: 0, vendorOptions: 0 },
        },
        gidList: [Buffer.from(this.dev.gid)],
      }),
    );
  }

  /** What the v2 handshake settled, for the result lines. */
  handshake(): Record<string, unknown> {
    const fce = this.accept?.firstContactExt ?? null;
    const cl = this.serverConfirmLink;
    return {
      accept: this.accept === null ? null : { version: this.accept.version, release: fce?.release ?? null },
      limits: this.limits,
      confirmLink:
        cl === null
          ? null
          : { type: cl.type, linkNum: cl.linkNum, maxConns: cl.maxConns, maxLinks: cl.maxLinks },
    };
  }

  /** The next message the server SENT on the QP (LLC or CDC). */
  async receive(ms = WAIT_MS): Promise<Buffer> {
    const slot = this.nextSlot;
    const wc = await this.cq.waitFor(slot, ms);
    if (wc.status !== 'IBV_WC_SUCCESS') throw new Error(`receive completion ${wc.status}`);
    const bytes = Buffer.from(this.ring.subarray(slot * SLOT_SIZE, slot * SLOT_SIZE + wc.byteLen));
    this.postRecv(slot);
    this.nextSlot = (slot + 1) % RECV_SLOTS;
    return bytes;
  }

  /** A SEND of `bytes` (any length up to 64, any content). */
  async send(bytes: Buffer): Promise<void> {
    bytes.copy(this.out, 0);
    const wrId = this.wr++;
    this.qp.postSend({
      wrId,
      opcode: 'SEND',
      sgList: [{ mr: this.outMr, offset: 0, length: bytes.byteLength }],
    });
    const wc = await this.cq.waitFor(wrId, WAIT_MS);
    if (wc.status !== 'IBV_WC_SUCCESS') throw new Error(`send completion ${wc.status}`);
  }

  /** Waits for the server's LLC CONFIRM LINK request: the SMC-Rv2 layout (type 0x21) on a v2 link. */
  async awaitConfirmLink(): Promise<void> {
    const bytes = await this.receive();
    const m = decodeLlc(bytes);
    if (m.kind !== 'confirm-link' || m.response || !('version' in m)) {
      throw new Error(
        `expected CONFIRM LINK v2, got ${m.kind}${m.kind === 'confirm-link' && m.response ? ' response' : ''} (type ${hex2(bytes[0] ?? 0)})`,
      );
    }
    this.serverConfirmLink = {
      type: hex2(bytes[0] ?? 0),
      linkNum: m.linkNum,
      linkUid: m.linkUid,
      maxConns: m.maxConns,
      maxLinks: m.maxLinks,
    };
  }

  /**
   * The CONFIRM LINK v2 response a real client sends (smcr_clnt_conf_first_link): the link number
   * and id of the request, our MAC, GID and QP, the v2.1 limits of the first contact.
   */
  async confirmLink(): Promise<void> {
    const request = this.serverConfirmLink;
    const limits = this.limits;
    if (request === null || limits === null) throw new Error('no CONFIRM LINK request yet');
    await this.send(
      encodeLlcV2Message({
        kind: 'confirm-link',
        version: 2,
        response: true,
        noRmbeEyecatcher: true,
        senderMac: this.dev.mac,
        senderGid: this.dev.gid,
        senderQpn: this.qp.qpn,
        linkNum: request.linkNum,
        linkUid: request.linkUid,
        maxLinks: limits.maxLinks,
        maxConns: limits.maxConns,
      }),
    );
  }

  cdc(
    o: {
      token?: number;
      producerCount?: number;
      consumerCount?: number;
      state?: Partial<CdcConnectionState>;
      writeBlocked?: boolean;
    } = {},
  ): Buffer {
    this.seq = (this.seq + 1) & 0xffff;
    return encodeCdcMessage({
      kind: 'cdc',
      seqno: this.seq,
      token: o.token ?? this.peerToken,
      producer: { wrap: 0, count: o.producerCount ?? this.prod },
      consumer: { wrap: 0, count: o.consumerCount ?? this.cons },
      producerFlags: { ...NO_PRODUCER_FLAGS, writeBlocked: o.writeBlocked ?? false },
      connectionState: { ...NO_CONN_STATE, ...o.state },
    });
  }

  /** RDMA WRITEs `text` into the server's RMBE at our producer cursor, then a CDC announcing it. */
  async sendData(
    text: string,
    cdc: { state?: Partial<CdcConnectionState>; writeBlocked?: boolean } = {},
  ): Promise<void> {
    const data = Buffer.from(text);
    if (this.prod + data.byteLength >= this.peerRmbeSize) throw new Error('this test never wraps the RMBE');
    data.copy(this.out, 0);
    const wrId = this.wr++;
    this.qp.postSend({
      wrId,
      opcode: 'RDMA_WRITE',
      remoteAddr: this.peer.rmbVirtualAddress + BigInt(this.prod),
      rkey: this.peer.rmbRkey,
      sgList: [{ mr: this.outMr, offset: 0, length: data.byteLength }],
    });
    const wc = await this.cq.waitFor(wrId, WAIT_MS);
    if (wc.status !== 'IBV_WC_SUCCESS') throw new Error(`RDMA WRITE completion ${wc.status}`);
    this.prod += data.byteLength;
    await this.send(this.cdc(cdc));
  }

  /**
   * Reads the server's CDCs until `done(received text)` or a CDC with the abort flag; returns the
   * text the server wrote into our RMBE meanwhile.
   */
  async readData(done: (text: string) => boolean, ms = WAIT_MS): Promise<string> {
    let text = '';
    const end = Date.now() + ms;
    while (!done(text)) {
      const msg = await this.receive(Math.max(1, end - Date.now()));
      if (msg[0] !== CDC_MESSAGE_TYPE) continue;
      const cdc = decodeCdcMessage(msg.subarray(0, 44), {
        localRmbeSize: RMB_SIZE,
        peerRmbeSize: this.peerRmbeSize,
      });
      if (cdc.token !== this.token)
        throw new Error(`server CDC carries token ${cdc.token}, ours is ${this.token}`);
      this.serverConnFlags.push(msg[25] ?? 0);
      if (cdc.producer.count > this.peerProd) {
        text += this.rmb.subarray(this.peerProd, cdc.producer.count).toString('utf8');
        this.peerProd = cdc.producer.count;
        this.cons = this.peerProd;
      }
      if (cdc.connectionState.peerConnectionAbort) break;
    }
    return text;
  }

  /** Sends a line over SMC-R and waits for the application's echo. */
  async exchange(line: string): Promise<string> {
    await this.sendData(`${line}\n`);
    const got = await this.readData((t) => t.includes('\n'));
    return got.trimEnd();
  }

  /** Orderly close: our done-writing, then the server's done-writing and closed flags, then its FIN. */
  async close(): Promise<{ serverFlags: string; tcp: string | null }> {
    await this.send(this.cdc({ state: { peerDoneWriting: true } }));
    await this.readData(() =>
      this.serverConnFlags.some((f) => (f & CDC_CONN_STATE_FLAG.peerConnectionClosed) !== 0),
    );
    this.tcp?.sock.end();
    const tcp = (await this.tcp?.waitEnded()) ?? null;
    return { serverFlags: this.flagsText(), tcp };
  }

  flagsText(): string {
    return this.serverConnFlags.map((f) => `0x${f.toString(16).padStart(2, '0')}`).join(',');
  }

  dispose(): void {
    this.tcp?.destroy();
    for (const step of [
      () => this.qp.close(),
      () => this.rmbMr.close(),
      () => this.ringMr.close(),
      () => this.outMr.close(),
      () => this.cq.close(),
    ]) {
      try {
        step();
      } catch (err) {
        note(`cleanup: ${errText(err)}`);
      }
    }
  }
}

// ---- the cases -------------------------------------------------------------------------------------

function declineOf(m: ClcMessage | null): Record<string, unknown> | null {
  if (m === null || m.kind !== 'decline') return null;
  return {
    code: hex8(m.peerDiagnosis),
    name: describeDeclineCode(m.peerDiagnosis),
    outOfSync: m.outOfSync,
    version: m.version,
  };
}

/**
 * After the server's Decline: ours in the same version (so both sides agree on the TCP fallback),
 * then a tagged line over the plain relay; the application's echo.
 */
async function answerDeclineAndRelay(peer: Peer, version: 1 | 2, tag: string): Promise<string | null> {
  const v2 = version === 2;
  peer.write(
    encodeClcDecline({
      kind: 'decline',
      version,
      eyecatcher: 'SMC-R',
      outOfSync: false,
      peerId: Buffer.alloc(8),
      peerDiagnosis: SMC_CLC_DECL.PEERDECL,
      osType: v2 ? SMC_CLC_OS.LINUX : 0,
      diagnosisV2: v2 ? [0, 0, 0, 0] : null,
    }),
  );
  peer.write(`TAG ${tag}\n`);
  return peer.readLine();
}

/**
 * One malformed CLC exchange: `bytes` after the preamble (optionally a half-close), then whatever
 * the server answers. When it declines, we answer with our own Decline in the version of its
 * Decline (so both sides agree on the TCP fallback) and check the plain relay to the application
 * with a tagged line. `ms`: from the preamble until the server answered or ended the connection.
 */
async function clcCase(
  name: string,
  source: string,
  bytes: Buffer,
  o: { preamble?: Buffer; halfClose?: boolean; answerDecline?: boolean } = {},
): Promise<void> {
  const peer = await Peer.open(source);
  try {
    const t0 = performance.now();
    peer.write(o.preamble ?? encodePreamble({ clc: true, port: APP_PORT }));
    peer.write(bytes);
    if (o.halfClose === true) peer.sock.end();
    const frame = await peer.readClc();
    const ms = Math.round(performance.now() - t0);
    let message: ClcMessage | null = null;
    let decodeError: string | null = null;
    if (frame !== null) {
      try {
        message = decodeClcMessage(frame);
      } catch (err) {
        decodeError = errText(err);
      }
    }
    let relay: string | null = null;
    const halfClosed = o.halfClose === true;
    if (message?.kind === 'decline' && o.answerDecline !== false && !halfClosed) {
      relay = await answerDeclineAndRelay(peer, message.version, name);
      peer.sock.end();
    } else if (message !== null && !halfClosed) {
      peer.sock.end();
    }
    const ended = await peer.waitEnded();
    result({
      check: 'clc',
      case: name,
      source,
      answer: message?.kind ?? null,
      decline: declineOf(message),
      decodeError,
      relay,
      ended,
      ms,
      extraBytes: peer.received,
    });
  } finally {
    peer.destroy();
  }
}

/** The Proposal a correct sidecar sends (SMC-Rv2 only, the tenant's UEID), the base of the malformed ones. */
function validProposal(source: string): Buffer {
  return v2Proposal({ ueids: [ueidOf(TENANT)], roceV2Gid: mappedGid(source) });
}

async function clcCases(): Promise<void> {
  // Bytes that are no CLC message at all (an HTTP request where the Proposal belongs).
  await clcCase('garbage', '10.77.0.20', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  // A Proposal whose header carries the SMC-D eyecatcher: framed, but not an SMC-R Proposal.
  const smcd = validProposal('10.77.0.21');
  Buffer.from([0xe2, 0xd4, 0xc3, 0xc4]).copy(smcd, 0);
  await clcCase('bad-eyecatcher', '10.77.0.21', smcd);
  // A Proposal whose length field says 20 bytes: the frame ends mid-message.
  const short = validProposal('10.77.0.22');
  short.writeUInt16BE(20, 5);
  await clcCase('length-too-short', '10.77.0.22', short);
  // A Proposal whose length field says 2000 bytes: the server waits for the rest, then gives up.
  const long = validProposal('10.77.0.23');
  long.writeUInt16BE(2000, 5);
  await clcCase('length-too-long', '10.77.0.23', long, { answerDecline: false });
  // Half a Proposal, then FIN.
  await clcCase('truncated-then-close', '10.77.0.24', validProposal('10.77.0.24').subarray(0, 30), {
    halfClose: true,
  });
  // SMC version 3 in the header.
  const v3 = validProposal('10.77.0.25');
  v3.writeUInt8(((v3[7] ?? 0) & 0x0f) | 0x30, 7);
  await clcCase('unknown-version', '10.77.0.25', v3);
  // Not even a valid sidecar preamble.
  await clcCase('bad-preamble', '10.77.0.25', Buffer.alloc(0), {
    preamble: Buffer.from('SMCQ\x01\x01\x23\x28'),
  });
  // A well-formed SMC-R v1 Proposal (the local area and the prefix of our subnet, no EIDs): the
  // server speaks SMC-Rv2 only between sidecars, and a client without a User EID gets NOUEID.
  await clcCase(
    'v1-only',
    '10.77.0.26',
    encodeClcProposal({
      kind: 'proposal',
      version: 1,
      typeV1: SMC_TYPE.R,
      peerId: randomBytes(8),
      gid: mappedGid('10.77.0.26'),
      mac: Buffer.alloc(6, 0x22),
      growthArea: Buffer.alloc(0),
      ipArea: ipv4ProposalArea(parseIp('10.77.0.26'), 24),
    }),
  );
  // A well-formed SMC-Rv2 Proposal from an address the directory lists as team-a, carrying only
  // the User EID of another tenant: no common EID, so NOSMCDEV (the kernel's code) whatever the
  // directory says.
  await clcCase(
    'other-tenant-eid',
    '10.77.0.27',
    v2Proposal({ ueids: [ueidOf(OTHER_TENANT)], roceV2Gid: mappedGid('10.77.0.27') }),
  );
}

async function rdmaCase(
  dev: Device,
  name: string,
  source: string,
  body: (link: HostileLink) => Promise<Record<string, unknown>>,
): Promise<void> {
  const link = new HostileLink(dev, source);
  try {
    const r = await body(link);
    result({ check: 'rdma', case: name, source, ...link.handshake(), ...r });
  } catch (err) {
    result({
      check: 'rdma',
      case: name,
      source,
      ...link.handshake(),
      error: errText(err),
      tcp: link.tcp?.ended ?? null,
    });
  } finally {
    link.dispose();
  }
}

/** Link statistics reach the server's metrics once a second: long enough for a late count to show. */
const STATS_SETTLE_MS = 2500;

async function rdmaCases(dev: Device): Promise<void> {
  // (a) A CDC with a wrong alert token that, were it taken, would abort the connection.
  await rdmaCase(dev, 'bad-token', '10.77.0.30', async (link) => {
    await link.clc();
    await link.awaitConfirmLink();
    await link.confirmLink();
    const before = await link.exchange('TAG bad-token');
    const badTokenBefore = await rdmaErrors('cdc-bad-token');
    const wrong = (link.peerToken ^ 0x5a5a5a5a) >>> 0;
    await link.send(link.cdc({ token: wrong, state: { peerConnectionAbort: true } }));
    await awaitRdmaErrors('cdc-bad-token', badTokenBefore + 1);
    await sleep(STATS_SETTLE_MS);
    const badToken = await rdmaErrors('cdc-bad-token');
    const after = await link.exchange('PING after-bad-token');
    const closed = await link.close();
    return { before, after, badTokenBefore, badToken, ...closed };
  });

  // (b) A CDC whose producer cursor points at the end of the server's RMBE (count == size).
  await rdmaCase(dev, 'cursor-past-rmbe', '10.77.0.31', async (link) => {
    await link.clc();
    await link.awaitConfirmLink();
    await link.confirmLink();
    const before = await link.exchange('TAG cursor-past-rmbe');
    const protocolBefore = await rdmaErrors('cdc-protocol');
    const badTokenBefore = await rdmaErrors('cdc-bad-token');
    await link.send(link.cdc({ producerCount: link.peerRmbeSize }));
    await link.readData(() => false);
    const abortSeen = link.serverConnFlags.some((f) => (f & CDC_CONN_STATE_FLAG.peerConnectionAbort) !== 0);
    const tcp = await link.tcp?.waitEnded();
    await awaitRdmaErrors('cdc-protocol', protocolBefore + 1);
    await sleep(STATS_SETTLE_MS);
    return {
      before,
      peerRmbeSize: link.peerRmbeSize,
      abortSeen,
      serverFlags: link.flagsText(),
      tcp,
      protocolBefore,
      protocol: await rdmaErrors('cdc-protocol'),
      badTokenBefore,
      badToken: await rdmaErrors('cdc-bad-token'),
    };
  });

  // (b2) A CDC whose consumer cursor claims we consumed more than the server ever produced: taken
  // as is, it would let the server overwrite RMBE bytes we have not read.
  await rdmaCase(dev, 'consumer-past-producer', '10.77.0.36', async (link) => {
    await link.clc();
    await link.awaitConfirmLink();
    await link.confirmLink();
    const before = await link.exchange('TAG consumer-past-producer');
    const protocolBefore = await rdmaErrors('cdc-protocol');
    // The server has produced only the echo above (tens of bytes) into our RMBE.
    await link.send(link.cdc({ consumerCount: 4096 }));
    await link.readData(() => false);
    const abortSeen = link.serverConnFlags.some((f) => (f & CDC_CONN_STATE_FLAG.peerConnectionAbort) !== 0);
    const tcp = await link.tcp?.waitEnded();
    await awaitRdmaErrors('cdc-protocol', protocolBefore + 1);
    await sleep(STATS_SETTLE_MS);
    return { before, abortSeen, tcp, protocolBefore, protocol: await rdmaErrors('cdc-protocol') };
  });

  // (c) Malformed SMC-Rv2 LLC messages and a malformed CDC on an established connection.
  await rdmaCase(dev, 'malformed-llc', '10.77.0.32', async (link) => {
    await link.clc();
    await link.awaitConfirmLink();
    await link.confirmLink();
    const before = await link.exchange('TAG malformed-llc');
    const llcBefore = await rdmaErrors('llc-malformed');
    const badCdcBefore = await rdmaErrors('cdc-malformed');
    // A v2 type the protocol does not define (0x2A), length_v2 44.
    const unknownType = randomBytes(LLC_MESSAGE_LENGTH);
    unknownType[0] = 0x2a;
    unknownType.writeUInt16LE(LLC_MESSAGE_LENGTH, 1);
    // A DELETE LINK v2 (all, disorderly) whose length_v2 says 16: below the 44-byte minimum.
    const badLength = encodeLlcV2Message({
      kind: 'delete-link',
      version: 2,
      response: false,
      all: true,
      orderly: false,
      linkNum: 1,
      reason: 0,
    });
    badLength.writeUInt16LE(0x10, 1);
    // A TEST LINK v2 whose length_v2 says 44 in a SEND of 8 bytes.
    const truncated = Buffer.from([LLC_V2_TYPE.testLink, LLC_MESSAGE_LENGTH, 0, 0, 1, 2, 3, 4]);
    // A CDC (with the abort flag) whose length byte says 32.
    const badCdc = link.cdc({ state: { peerConnectionAbort: true } });
    badCdc[1] = 0x20;
    for (const m of [unknownType, badLength, truncated, badCdc]) await link.send(m);
    const after = await link.exchange('PING after-malformed-llc');
    await awaitRdmaErrors('llc-malformed', llcBefore + 3);
    await awaitRdmaErrors('cdc-malformed', badCdcBefore + 1);
    await sleep(STATS_SETTLE_MS);
    const llcMalformed = await rdmaErrors('llc-malformed');
    const malformedCdcs = await rdmaErrors('cdc-malformed');
    const closed = await link.close();
    return { before, after, llcBefore, llcMalformed, badCdcBefore, badCdc: malformedCdcs, ...closed };
  });

  // (d) A malformed LLC message where the CONFIRM LINK response belongs: the v2 type 0x21 with
  // length_v2 0.
  await rdmaCase(dev, 'malformed-confirm-response', '10.77.0.33', async (link) => {
    await link.clc();
    await link.awaitConfirmLink();
    const m = Buffer.alloc(LLC_MESSAGE_LENGTH);
    m[0] = LLC_V2_TYPE.confirmLink;
    m.writeUInt16LE(0, 1);
    m[3] = 0x80; // response
    await link.send(m);
    const tcp = await link.tcp?.waitEnded();
    return { tcp, extraBytes: link.tcp?.received ?? 0 };
  });

  // (e) The end of our data announced while write-blocked, as a kernel whose close gave up waiting
  // for RMBE space sends it: done-writing with write-blocked after a line, then the data it still
  // had queued, then its last write clearing write-blocked. Everything must reach the application
  // before its end of file.
  const doneWriting = { peerDoneWriting: true };
  const serverDone = (link: HostileLink): boolean =>
    link.serverConnFlags.some((f) => (f & CDC_CONN_STATE_FLAG.peerDoneWriting) !== 0);
  await rdmaCase(dev, 'blocked-end', '10.77.0.34', async (link) => {
    await link.clc();
    await link.awaitConfirmLink();
    await link.confirmLink();
    const before = await link.exchange('TAG blocked-end');
    await link.sendData('PING queued-1\n', { state: doneWriting, writeBlocked: true });
    const first = (await link.readData((t) => t.includes('\n'))).trimEnd();
    await link.sendData('PING queued-2\n', { state: doneWriting, writeBlocked: true });
    const second = (await link.readData((t) => t.includes('\n'))).trimEnd();
    await link.sendData('PING last\n', { state: doneWriting });
    const last = (await link.readData((t) => t.includes('\n'))).trimEnd();
    await link.readData(() => serverDone(link));
    const closed = await link.close();
    return { before, first, second, last, ...closed };
  });

  // (f) The same, but the write-blocked end was the last write (the kernel's queued data ended
  // exactly at the window): no further CDC comes, and the application still gets its end of file.
  await rdmaCase(dev, 'blocked-end-exact', '10.77.0.35', async (link) => {
    await link.clc();
    await link.awaitConfirmLink();
    await link.confirmLink();
    const before = await link.exchange('TAG blocked-end-exact');
    const t0 = performance.now();
    await link.sendData('PING last\n', { state: doneWriting, writeBlocked: true });
    const last = (await link.readData((t) => t.includes('\n'))).trimEnd();
    await link.readData(() => serverDone(link));
    const endAfterMs = Math.round(performance.now() - t0);
    const closed = await link.close();
    return { before, last, endAfterMs, ...closed };
  });
}

/** A series of the server's metrics (first sample of that exact name and labels), or 0. */
async function serverMetric(series: string): Promise<number> {
  const { body } = await httpGet(METRICS_PORT, '/metrics');
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

/** What the server holds: registered bytes, link groups, RMBs in use, its resident memory. */
async function serverHoldings(): Promise<Record<string, number>> {
  return {
    registered: await serverMetric('smc_registered_memory_bytes'),
    linkGroups: await serverMetric('smc_link_groups'),
    rmbsInUse: await serverMetric('smc_rmbs{state="in-use"}'),
    rss: await serverMetric('process_resident_memory_bytes'),
  };
}

/** A link of ours up to the first exchanged line. */
async function establish(link: HostileLink, tag: string): Promise<string> {
  await link.clc();
  await link.awaitConfirmLink();
  await link.confirmLink();
  return link.exchange(`TAG ${tag}`);
}

/**
 * Isolation between link groups and bounded state: a peer writing into another link group's RMB,
 * a peer RMBE the server must not pin, and floods of LLC and CLC messages.
 */
async function isolationCases(dev: Device): Promise<void> {
  // (g) Two link groups with the server (two first contacts): the attacker RDMA WRITEs on its own,
  // valid link with the rkey and address of the victim's RMB, which it learnt as any peer could.
  const victim = new HostileLink(dev, '10.77.0.37');
  const attacker = new HostileLink(dev, '10.77.0.38');
  try {
    const before = await establish(victim, 'cross-victim');
    const attackerBefore = await establish(attacker, 'cross-attacker');
    const target = victim.serverRmb;
    const linkErrorsBefore = await linkFailures();
    const write = await attacker.rawWrite(target.rkey, target.vaddr + BigInt(target.produced), 'EVIL\n');
    // Its link is gone on the server too: the attacker's connection ends.
    const attackerTcp = (await attacker.tcp?.waitEnded()) ?? null;
    const after = await victim.exchange('PING cross-victim-after');
    const closed = await victim.close();
    await sleep(STATS_SETTLE_MS);
    result({
      check: 'isolation',
      case: 'cross-link-group-write',
      rkeys: { victim: target.rkey, attacker: attacker.serverRmb.rkey },
      before,
      attackerBefore,
      write,
      attackerTcp,
      after,
      linkErrorsBefore,
      linkErrors: await linkFailures(),
      ...closed,
    });
  } catch (err) {
    result({ check: 'isolation', case: 'cross-link-group-write', error: errText(err) });
  } finally {
    victim.dispose();
    attacker.dispose();
  }

  // (h) A Confirm offering the largest RMBE the protocol can name (512 MiB): were it taken, the
  // server would register a staging ring that large. Declined (MEM) before anything is allocated.
  const big = new HostileLink(dev, '10.77.0.39');
  try {
    const held = await serverHoldings();
    await big.clc({ rmbeSize: 15 });
    const tcp = big.tcp;
    if (tcp === null) throw new Error('no TCP connection');
    const frame = await tcp.readClc();
    const message = frame === null ? null : decodeClcMessage(frame);
    const relay =
      message?.kind === 'decline'
        ? await answerDeclineAndRelay(tcp, message.version, 'peer-rmbe-too-large')
        : null;
    tcp.sock.end();
    await sleep(STATS_SETTLE_MS);
    result({
      check: 'isolation',
      case: 'peer-rmbe-too-large',
      decline: declineOf(message),
      relay,
      refused: await rdmaErrors('peer-rmb-too-large'),
      before: held,
      after: await serverHoldings(),
    });
  } catch (err) {
    result({ check: 'isolation', case: 'peer-rmbe-too-large', error: errText(err) });
  } finally {
    big.dispose();
  }

  // (i) Floods on one valid link: CONFIRM RKEY requests for 1,000 distinct RMBs (the server may
  // hold 255), 500 TEST LINKs, 1,000 messages of an undefined LLC type; then 100 first contacts
  // from one address abandoned right after the server's Accept (the server made a QP and an RMB
  // for each). The server's registered memory and link groups return to where they were, its
  // resident memory stays near.
  const flood = new HostileLink(dev, '10.77.0.40');
  try {
    const before = await establish(flood, 'flood');
    await sleep(STATS_SETTLE_MS);
    const held = await serverHoldings();
    let rkeyAnswers = 0;
    let rkeyRefused = 0;
    for (let i = 0; i < 1000; i++) {
      await flood.send(
        encodeLlcV2Message({
          kind: 'confirm-rkey',
          version: 2,
          response: false,
          negative: false,
          retry: false,
          numRkeys: 0,
          own: { rmbKey: 0x1000 + i, rmbVaddr: BigInt(0x10000000 + i * RMB_SIZE) },
          others: [],
        }),
      );
      const answer = decodeLlc(await flood.receive());
      if (answer.kind === 'confirm-rkey' && answer.response) {
        rkeyAnswers++;
        if (answer.negative) rkeyRefused++;
      }
    }
    let testLinkAnswers = 0;
    for (let i = 0; i < 500; i++) {
      await flood.send(
        encodeLlcV2Message({ kind: 'test-link', version: 2, response: false, userData: randomBytes(16) }),
      );
      const answer = decodeLlc(await flood.receive());
      if (answer.kind === 'test-link' && answer.response) testLinkAnswers++;
    }
    const unknownType = Buffer.alloc(LLC_MESSAGE_LENGTH);
    unknownType[0] = 0x2a;
    unknownType.writeUInt16LE(LLC_MESSAGE_LENGTH, 1);
    for (let i = 0; i < 1000; i++) await flood.send(unknownType);
    const afterLlc = await flood.exchange('PING after-llc-flood');
    let accepts = 0;
    for (let i = 0; i < 100; i++) {
      const peer = await Peer.open('10.77.0.41');
      try {
        peer.write(encodePreamble({ clc: true, port: APP_PORT }));
        peer.write(validProposal('10.77.0.41'));
        const frame = await peer.readClc();
        if (frame !== null && decodeClcMessage(frame).kind === 'accept') accepts++;
      } finally {
        peer.destroy();
      }
    }
    // The server drops an abandoned first contact when its connection ends; give it a moment.
    let after = await serverHoldings();
    for (let i = 0; i < 40 && (after['registered'] ?? 0) > (held['registered'] ?? 0); i++) {
      await sleep(500);
      after = await serverHoldings();
    }
    const closed = await flood.close();
    result({
      check: 'isolation',
      case: 'flood',
      before,
      afterLlc,
      rkeyAnswers,
      rkeyRefused,
      testLinkAnswers,
      accepts,
      held,
      after,
      ...closed,
    });
  } catch (err) {
    result({ check: 'isolation', case: 'flood', error: errText(err) });
  } finally {
    flood.dispose();
  }
}

async function attack(): Promise<void> {
  const dev = openRxe();
  note(`rxe GID index ${dev.gidIndex}`);
  await clcCases();
  await rdmaCases(dev);
  await isolationCases(dev);
  const ready = await httpGet(HEALTH_PORT, '/healthz/ready');
  result({ check: 'server-ready', status: ready.status });
  const { body } = await httpGet(METRICS_PORT, '/metrics');
  result({
    check: 'server-metrics',
    lines: body.split('\n').filter((l) => l.startsWith('smc_rdma_errors_total{')),
  });
}

const role = process.argv[2];
if (role === 'app') {
  runApp();
} else if (role === 'attack') {
  attack().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
} else {
  process.stderr.write('usage: hostile-node.js app|attack\n');
  process.exit(2);
}
