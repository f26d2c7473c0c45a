// The addon's side of the RDMA WRITE benchmark (runs in the lab VMs; see run.sh).
//
//   node bench.js bw  PORT [iters=1000] [size=65536] [depth=128]
//   node bench.js lat PORT [iters=1000] [size=64]
//   node bench.js isolation PORT [iters=200] [rmbSize=65536] [bwIters=1000] [latIters=1000]
//
// LAB_NODE=1 is the passive side (listens on PORT for the exchange), LAB_NODE=0 the active one.
// bw:  node0 RDMA WRITEs `iters` messages of `size` bytes into a ring in node1's memory, keeping
//      `depth` in flight and signalling every 16th, like ib_write_bw (tx-depth 128).
// lat: ping-pong of `size`-byte RDMA_WRITE_WITH_IMM; each side waits for the peer's write through
//      its completion channel (event-driven; ib_write_lat instead busy-polls the last byte).
//      Reported like ib_write_lat: one-way latency = round trip / 2.
// isolation: what keeps an RMB reachable through one link group's QP only, two ways:
//      pd-per-link-group (a PD per link group) and mw-type-2 (one PD, a type 2 memory window bound
//      through the link group's QP). Each node in turn measures `iters` times (median, p99) the
//      setup costs of each; then node0 runs bw and lat through the peer's MR rkey and through its
//      bound MW rkey (halves in the order MR MW MW MR, so drift hits both alike); then the isolation
//      checks (README.md).
// node0 prints `BENCH {json}`.
import {
  allocBuffer,
  debugStats,
  openDevice,
  randomPsn,
  type CompletionQueue,
  type Context,
  type MemoryRegion,
  type Mtu,
  type ProtectionDomain,
  type QueuePair,
  type WcStatus,
  type WorkCompletion,
} from '../../native/index.js';
import { openCtl, type Ctl } from '../../test/vm/addon/ctl.js';

const args = process.argv.slice(2);
const mode = args[0] ?? 'bw';
const port = Number(args[1] ?? '18700');
const isServer = process.env['LAB_NODE'] === '1';
const peerIp = process.env['LAB_PEER_IP'] ?? '10.77.0.2';
const SIGNAL_EVERY = 16;
const RING = 16; // messages in the target ring
const DEPTH = 128;

type Endpoint = {
  gid: string;
  qpn: number;
  psn: number;
  addr: number;
  rkey: number;
};

/** Where to RDMA WRITE in the peer's memory. */
type Remote = { addr: number; rkey: number };

type Device = { ctx: Context; gid: string; mtu: Mtu; cq: CompletionQueue; close(): void };

function openDev(): Device {
  const ctx = openDevice(process.env['LAB_RXE'] ?? 'rxe0');
  const gid = ctx.queryGidTable(1).find((g) => g.index === 1)?.gid;
  if (!gid) throw new Error('no GID index 1');
  const mtu = ctx.queryPort(1).activeMtu;
  const ch = ctx.createCompletionChannel();
  const cq = ctx.createCq(ch, 4096);
  return {
    ctx,
    gid,
    mtu,
    cq,
    close: () => {
      cq.close();
      ch.close();
    },
  };
}

/**
 * node0's bandwidth step: `n` RDMA WRITEs of `size` bytes from `mr` into the peer's ring, `depth`
 * in flight, every 16th signalled. Resolves with the seconds taken.
 */
function writeBurst(
  qp: QueuePair,
  cq: CompletionQueue,
  mr: MemoryRegion,
  remote: Remote,
  n: number,
  size: number,
  depth: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let posted = 0;
    let completed = 0;
    const t0 = process.hrtime.bigint();
    const post = (): void => {
      const batch = [];
      while (posted < n && posted - completed < depth) {
        const signaled = (posted + 1) % SIGNAL_EVERY === 0 || posted === n - 1;
        batch.push({
          wrId: posted,
          opcode: 'RDMA_WRITE' as const,
          signaled,
          remoteAddr: remote.addr + (posted % RING) * size,
          rkey: remote.rkey,
          sgList: [{ mr, offset: (posted % RING) * size, length: size }],
        });
        posted++;
      }
      if (batch.length > 0) qp.postSend(batch);
    };
    const off = cq.onCompletion((wc: WorkCompletion) => {
      if (wc.status !== 'IBV_WC_SUCCESS') {
        off();
        reject(new Error(`write ${wc.wrId}: ${wc.status}`));
        return;
      }
      completed = wc.wrId + 1; // signalled WRs complete everything before them
      if (completed >= n) {
        off();
        resolve(Number(process.hrtime.bigint() - t0) / 1e9);
      } else post();
    });
    post();
  });
}

/** A warm-up burst (100 messages at most), then the measured one: seconds. */
async function bwActive(
  qp: QueuePair,
  cq: CompletionQueue,
  mr: MemoryRegion,
  remote: Remote,
  iters: number,
  size: number,
  depth: number,
): Promise<number> {
  await writeBurst(qp, cq, mr, remote, Math.min(100, iters), size, depth);
  return writeBurst(qp, cq, mr, remote, iters, size, depth);
}

/**
 * The latency ping-pong on one QP: one receive always posted per message in flight (32 posted at
 * construction), RDMA_WRITE_WITH_IMM of `size` bytes from `mr` into the peer's buffer. Several runs
 * may follow one another on the same QP.
 */
class PingPong {
  #recvId = 0;
  constructor(
    readonly qp: QueuePair,
    readonly cq: CompletionQueue,
    readonly mr: MemoryRegion,
  ) {
    for (let i = 0; i < 32; i++) this.#postRecv();
  }

  #postRecv(): void {
    this.qp.postRecv({ wrId: 1_000_000 + this.#recvId++ });
  }

  /** `iters` round trips after 100 warm-up ones; node0 gets the round-trip times in microseconds. */
  async run(ctl: Ctl, remote: Remote, iters: number, size: number): Promise<number[]> {
    const { qp, cq, mr } = this;
    let sent = 0;
    const write = (): void => {
      sent++;
      qp.postSend({
        wrId: sent,
        opcode: 'RDMA_WRITE_WITH_IMM',
        immData: sent,
        signaled: sent % SIGNAL_EVERY === 0,
        inline: false,
        remoteAddr: remote.addr,
        rkey: remote.rkey,
        sgList: [{ mr, length: size }],
      });
    };
    const total = iters + 100; // first 100 are warm-up
    const samples: number[] = [];
    // The listener is in place before 'ready' goes out: the peer's first write may overtake it.
    let got = 0;
    let lastGot = -1;
    // Watchdog: a stalled ping-pong reports its state and fails instead of hanging.
    const watchdog = setInterval(() => {
      if (got !== lastGot) {
        lastGot = got;
        return;
      }
      const diag = { got, sent, qp: qp.query(), pending: cq.pendingCount, stats: debugStats() };
      console.error(`STALL ${JSON.stringify(diag)}`);
      process.exit(3);
    }, 30_000);
    const pingPong = new Promise<void>((resolve, reject) => {
      let t = process.hrtime.bigint();
      const off = cq.onCompletion((wc: WorkCompletion) => {
        if (wc.status !== 'IBV_WC_SUCCESS') {
          off();
          reject(new Error(`${wc.opcode} ${wc.wrId}: ${wc.status}`));
          return;
        }
        if (wc.opcode !== 'RECV_RDMA_WITH_IMM') return;
        got++;
        this.#postRecv();
        if (isServer) {
          write();
          if (got >= total) {
            off();
            resolve();
          }
          return;
        }
        const now = process.hrtime.bigint();
        if (got > 100) samples.push(Number(now - t) / 1000);
        if (got >= total) {
          off();
          resolve();
          return;
        }
        t = process.hrtime.bigint();
        write();
      });
    });
    ctl.send('ready');
    await ctl.recv('ready');
    if (!isServer) write();
    await pingPong.finally(() => clearInterval(watchdog));
    return samples;
  }
}

/** One-way latency figures (round trip / 2) from round-trip samples, like ib_write_lat. */
function latFigures(rtts: number[]): { tMinUs: number; tTypicalUs: number; tAvgUs: number; t99Us: number } {
  const half = rtts.map((s) => s / 2).sort((a, b) => a - b);
  const avg = half.reduce((a, b) => a + b, 0) / half.length;
  const q = (p: number): number => half[Math.min(half.length - 1, Math.floor(p * half.length))] ?? NaN;
  return { tMinUs: q(0), tTypicalUs: q(0.5), tAvgUs: avg, t99Us: q(0.99) };
}

async function bwOrLat(): Promise<void> {
  const iters = Number(args[2] ?? '1000');
  const size = Number(args[3] ?? (mode === 'bw' ? '65536' : '64'));
  const depth = Number(args[4] ?? String(DEPTH));
  const dev = openDev();
  const { ctx, cq, gid, mtu } = dev;
  const pd = ctx.allocPd();
  const qp: QueuePair = pd.createQp({ sendCq: cq, maxSendWr: Math.max(depth, 64) + 16, maxRecvWr: 64 });
  const ringBytes = mode === 'bw' ? size * RING : size;
  const local = allocBuffer(ringBytes);
  const mr = pd.registerMr(local, { remoteWrite: true });
  const psn = randomPsn();
  const ctl = await openCtl(isServer, port, peerIp);
  ctl.send('ep', { gid, qpn: qp.qpn, psn, addr: mr.addr, rkey: mr.rkey });
  const remote = await ctl.recv<Endpoint>('ep');
  qp.connect({ remote, localPsn: psn, sgidIndex: 1, remoteWrite: true, mtu });

  if (mode === 'bw') {
    if (isServer) {
      ctl.send('ready');
      await ctl.recv('done');
    } else {
      await ctl.recv('ready');
      const sec = await bwActive(qp, cq, mr, remote, iters, size, depth);
      ctl.send('done');
      const mib = (iters * size) / 1048576 / sec;
      console.log(
        `BENCH ${JSON.stringify({ mode, size, iters, depth, seconds: sec, MiBps: mib, stats: debugStats() })}`,
      );
    }
  } else {
    const pp = new PingPong(qp, cq, mr);
    const samples = await pp.run(ctl, remote, iters, size);
    if (!isServer) {
      console.log(
        `BENCH ${JSON.stringify({ mode, size, iters, ...latFigures(samples), stats: debugStats() })}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  ctl.sock.destroy();
  qp.close();
  mr.close();
  pd.close();
  dev.close();
  ctx.close();
}

// ---- isolation ---------------------------------------------------------------------------------

/** Median and p99 (nearest rank) of samples in microseconds. */
type Stat = { medianUs: number; p99Us: number; n: number };
function stat(xs: number[]): Stat {
  const v = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => v[Math.min(v.length - 1, Math.floor(p * v.length))] ?? NaN;
  return { medianUs: q(0.5), p99Us: q(0.99), n: v.length };
}

const nowUs = (): number => performance.now() * 1000;
const WARM_UP = 10;
const WC_TIMEOUT_MS = 20_000;

function expectSuccess(wc: WorkCompletion, what: string): void {
  if (wc.status !== 'IBV_WC_SUCCESS') throw new Error(`${what}: ${wc.status}`);
}

type Costs = {
  /** pd-per-link-group: ibv_alloc_pd + ibv_dealloc_pd. */
  pdAllocDealloc: Stat;
  /** pd-per-link-group: an RMB registered for remote write in that PD, then deregistered. */
  rmbRegDereg: Stat;
  /** mw-type-2, once per RMB: registered with MW_BIND in the device's PD, then deregistered. */
  rmbMwBindRegDereg: Stat;
  /** mw-type-2: ibv_alloc_mw + ibv_dealloc_mw. */
  mwAllocDealloc: Stat;
  /** mw-type-2: BIND_MW posted on the connected QP until its completion arrives. */
  bind: Stat;
  /** mw-type-2: LOCAL_INV posted until its completion arrives. */
  localInv: Stat;
  /** mw-type-2, an RMB handed to a later connection: invalidate + bind again. */
  rebind: Stat;
  /** mw-type-2, per connection: alloc MW + bind + LOCAL_INV + dealloc MW, as one sample. */
  mwCycle: Stat;
};

/** The setup costs of both mechanisms on this node (`qp` is connected, in `pd`, on `cq`). */
async function measureCosts(
  ctx: Context,
  pd: ProtectionDomain,
  qp: QueuePair,
  cq: CompletionQueue,
  rmbSize: number,
  iters: number,
): Promise<Costs> {
  const rmb = allocBuffer(rmbSize);
  const pdS: number[] = [];
  const rmbS: number[] = [];
  for (let i = -WARM_UP; i < iters; i++) {
    const t0 = nowUs();
    const p = ctx.allocPd();
    const t1 = nowUs();
    const m = p.registerMr(rmb, { remoteWrite: true });
    m.close();
    const t2 = nowUs();
    p.close();
    const t3 = nowUs();
    if (i < 0) continue;
    pdS.push(t1 - t0 + (t3 - t2));
    rmbS.push(t2 - t1);
  }
  const regS: number[] = [];
  for (let i = -WARM_UP; i < iters; i++) {
    const t0 = nowUs();
    pd.registerMr(rmb, { mwBind: true }).close();
    const t1 = nowUs();
    if (i >= 0) regS.push(t1 - t0);
  }
  const mwMr = pd.registerMr(rmb, { mwBind: true });
  const allocS: number[] = [];
  const bindS: number[] = [];
  const invS: number[] = [];
  const rebindS: number[] = [];
  const cycleS: number[] = [];
  let wrId = 2_000_000;
  for (let i = -WARM_UP; i < iters; i++) {
    const t0 = nowUs();
    const mw = pd.allocMw();
    const t1 = nowUs();
    const bindId = wrId++;
    // No waitFor timeout in the timed loop (its timer would be timed too): node.sh's step timeout
    // ends a stalled run.
    qp.postSend({ wrId: bindId, opcode: 'BIND_MW', mw, mr: mwMr, remoteWrite: true });
    expectSuccess(await cq.waitFor(bindId), 'BIND_MW');
    const t2 = nowUs();
    const invId = wrId++;
    qp.postSend({ wrId: invId, opcode: 'LOCAL_INV', invalidateRkey: mw.rkey });
    expectSuccess(await cq.waitFor(invId), 'LOCAL_INV');
    const t3 = nowUs();
    mw.close();
    const t4 = nowUs();
    if (i < 0) continue;
    allocS.push(t1 - t0 + (t4 - t3));
    bindS.push(t2 - t1);
    invS.push(t3 - t2);
    rebindS.push(t3 - t1);
    cycleS.push(t4 - t0);
  }
  mwMr.close();
  return {
    pdAllocDealloc: stat(pdS),
    rmbRegDereg: stat(rmbS),
    rmbMwBindRegDereg: stat(regS),
    mwAllocDealloc: stat(allocS),
    bind: stat(bindS),
    localInv: stat(invS),
    rebind: stat(rebindS),
    mwCycle: stat(cycleS),
  };
}

type IsoPeer = {
  gid: string;
  qpns: number[];
  psns: number[];
  /** The ring: its MR rkey (remote write) and, once bound, its MW rkey. */
  addr: number;
  rkey: number;
  /** A buffer registered for remote write in the second PD (reached through the third QP). */
  otherAddr: number;
  otherRkey: number;
};

type Check = {
  name: string;
  expect: WcStatus;
  status: WcStatus | 'timeout';
  /** What the target's memory shows afterwards, as node1 saw it. */
  memory: 'written' | 'unchanged' | 'other';
  ok: boolean;
};

// Isolation probes: 64 bytes each, at their own offsets near the end of the target ring.
const PROBE = 64;
const probePattern = (k: number): Buffer => {
  const b = Buffer.alloc(PROBE, 0x5a);
  b.write(`isolation probe ${k}`);
  return b;
};

async function isolation(): Promise<void> {
  const iters = Number(args[2] ?? '200');
  const rmbSize = Number(args[3] ?? '65536');
  const bwIters = Number(args[4] ?? '1000');
  const latIters = Number(args[5] ?? '1000');
  const bwSize = 65536;
  const latSize = 64;
  const dev = openDev();
  const { ctx, cq, gid, mtu } = dev;
  // One PD as for the device (the MW design); a second one stands for another link group's PD.
  const pd = ctx.allocPd();
  const pdOther = ctx.allocPd();
  const mkQp = (p: ProtectionDomain): QueuePair =>
    p.createQp({ sendCq: cq, maxSendWr: DEPTH + 16, maxRecvWr: 64, maxInlineData: 0 });
  // qpA carries the data path and is the one the MW is bound through; qpB is a second QP of the
  // same PD to the same peer; qpC is in the other PD.
  const qps = [mkQp(pd), mkQp(pd), mkQp(pdOther)];
  const [qpA, qpB, qpC] = qps as [QueuePair, QueuePair, QueuePair];
  const ringBytes = bwSize * RING;
  const ring = allocBuffer(ringBytes);
  const ringMr = pd.registerMr(ring, { remoteWrite: true });
  const ringMwMr = pd.registerMr(ring, { mwBind: true }); // grants nothing until a window is bound
  const other = allocBuffer(4096);
  const otherMr = pdOther.registerMr(other, { remoteWrite: true });
  // The probes through qpC (in pdOther) send from memory of their own PD: a local MR of another
  // PD fails locally (a flush) before the peer is ever asked.
  const ringOtherMr = pdOther.registerMr(ring);
  const psns = qps.map(() => randomPsn());
  const ctl = await openCtl(isServer, port, peerIp);
  ctl.send('ep', {
    gid,
    qpns: qps.map((q) => q.qpn),
    psns,
    addr: ringMr.addr,
    rkey: ringMr.rkey,
    otherAddr: otherMr.addr,
    otherRkey: otherMr.rkey,
  });
  const peer = await ctl.recv<IsoPeer>('ep');
  qps.forEach((qp, i) => {
    const qpn = peer.qpns[i];
    const psn = peer.psns[i];
    if (qpn === undefined || psn === undefined) throw new Error('peer sent too few QPs');
    qp.connect({
      remote: { gid: peer.gid, qpn, psn },
      localPsn: psns[i] ?? 0,
      sgidIndex: 1,
      remoteWrite: true,
      mtu,
    });
  });

  // 1. Setup costs, node0 then node1 (the VMs share the host's cores).
  let own: Costs;
  let peerCosts: Costs | undefined;
  if (!isServer) {
    own = await measureCosts(ctx, pd, qpA, cq, rmbSize, iters);
    ctl.send('costs-go');
    peerCosts = (await ctl.recv<{ costs: Costs }>('costs')).costs;
  } else {
    await ctl.recv('costs-go');
    own = await measureCosts(ctx, pd, qpA, cq, rmbSize, iters);
    ctl.send('costs', { costs: own });
  }

  // 2. Data path through the peer's MR rkey and through its MW rkey, on the same QP. Each side binds
  // a window over its whole ring through qpA, as for an RMB handed to a connection.
  const pp = new PingPong(qpA, cq, ringMr); // receives posted before the peer can write
  const dataMw = pd.allocMw();
  const bindId = 3_000_000;
  qpA.postSend({ wrId: bindId, opcode: 'BIND_MW', mw: dataMw, mr: ringMwMr, remoteWrite: true });
  expectSuccess(await cq.waitFor(bindId, WC_TIMEOUT_MS), 'BIND_MW');
  ctl.send('mw', { rkey: dataMw.rkey });
  const peerMwRkey = (await ctl.recv<{ rkey: number }>('mw')).rkey;
  const paths = { mr: { addr: peer.addr, rkey: peer.rkey }, mw: { addr: peer.addr, rkey: peerMwRkey } };
  const order = ['mr', 'mw', 'mw', 'mr'] as const;
  const bwHalf = Math.ceil(bwIters / 2);
  const latHalf = Math.ceil(latIters / 2);
  const bwSec = { mr: 0, mw: 0 };
  const rtts: { mr: number[]; mw: number[] } = { mr: [], mw: [] };
  if (isServer) {
    await ctl.recv('bw-done');
  } else {
    for (const p of order) bwSec[p] += await bwActive(qpA, cq, ringMr, paths[p], bwHalf, bwSize, DEPTH);
    ctl.send('bw-done');
  }
  for (const p of order) rtts[p].push(...(await pp.run(ctl, paths[p], latHalf, latSize)));

  // 3. Isolation checks. node0 writes a probe, node1 reports what its memory shows at the end.
  const probeOff = (k: number): number => ringBytes - 4096 + k * PROBE;
  const checks: Check[] = [];
  let invalidate: WcStatus | 'timeout' | undefined; // node1's LOCAL_INV of its window
  if (!isServer) {
    let wrId = 4_000_000;
    const probe = async (
      name: string,
      k: number,
      qp: QueuePair,
      remote: Remote,
      expect: WcStatus,
    ): Promise<void> => {
      probePattern(k).copy(ring, probeOff(k));
      const id = wrId++;
      qp.postSend({
        wrId: id,
        opcode: 'RDMA_WRITE',
        remoteAddr: remote.addr,
        rkey: remote.rkey,
        sgList: [{ mr: qp === qpC ? ringOtherMr : ringMr, offset: probeOff(k), length: PROBE }],
      });
      const status = await cq.waitFor(id, WC_TIMEOUT_MS).then(
        (wc) => wc.status,
        () => 'timeout' as const,
      );
      checks.push({ name, expect, status, memory: 'other', ok: false });
    };
    const ok: WcStatus = 'IBV_WC_SUCCESS';
    const denied: WcStatus = 'IBV_WC_REM_ACCESS_ERR';
    await probe(
      'mw: WRITE through the QP the window is bound to',
      0,
      qpA,
      { addr: peer.addr + probeOff(0), rkey: peerMwRkey },
      ok,
    );
    await probe(
      'mw: same rkey through a second QP (same PD, same peer)',
      1,
      qpB,
      { addr: peer.addr + probeOff(1), rkey: peerMwRkey },
      denied,
    );
    await probe(
      "pd: WRITE into an MR of the QP's own PD",
      2,
      qpC,
      { addr: peer.otherAddr, rkey: peer.otherRkey },
      ok,
    );
    await probe(
      'pd: MR rkey of another PD through this QP',
      3,
      qpC,
      { addr: peer.addr + probeOff(3), rkey: peer.rkey },
      denied,
    );
    ctl.send('invalidate');
    const inv = await ctl.recv<{ status: WcStatus | 'timeout' }>('invalidated');
    await probe(
      'mw: old rkey after LOCAL_INV',
      4,
      qpA,
      { addr: peer.addr + probeOff(4), rkey: peerMwRkey },
      denied,
    );
    ctl.send('probed');
    const mem = (await ctl.recv<{ memory: Check['memory'][] }>('memory')).memory;
    checks.forEach((c, i) => {
      c.memory = mem[i] ?? 'other';
      const memOk = c.expect === ok ? c.memory === 'written' : c.memory === 'unchanged';
      c.ok = c.status === c.expect && memOk && (i !== 4 || inv.status === ok);
    });
    invalidate = inv.status;
  } else {
    await ctl.recv('invalidate');
    const invId = 3_000_001;
    qpA.postSend({ wrId: invId, opcode: 'LOCAL_INV', invalidateRkey: dataMw.rkey });
    const status = await cq.waitFor(invId, WC_TIMEOUT_MS).then(
      (wc) => wc.status,
      () => 'timeout',
    );
    ctl.send('invalidated', { status });
    await ctl.recv('probed');
    const target = (k: number): Buffer =>
      k === 2 ? other.subarray(0, PROBE) : ring.subarray(probeOff(k), probeOff(k) + PROBE);
    const memory = [0, 1, 2, 3, 4].map((k) => {
      const t = target(k);
      if (t.equals(probePattern(k))) return 'written';
      return t.every((b) => b === 0) ? 'unchanged' : 'other';
    });
    ctl.send('memory', { memory });
  }

  if (!isServer) {
    const bw = (p: 'mr' | 'mw'): { MiBps: number; seconds: number; iters: number } => ({
      MiBps: (2 * bwHalf * bwSize) / 1048576 / bwSec[p],
      seconds: bwSec[p],
      iters: 2 * bwHalf,
    });
    const result = {
      mode,
      iters,
      rmbSize,
      costs: { node0: own, node1: peerCosts },
      bw: { size: bwSize, depth: DEPTH, mr: bw('mr'), mw: bw('mw') },
      lat: { size: latSize, iters: 2 * latHalf, mr: latFigures(rtts.mr), mw: latFigures(rtts.mw) },
      checks,
      invalidate,
      stats: debugStats(),
    };
    console.log(`BENCH ${JSON.stringify(result)}`);
  }
  await new Promise((r) => setTimeout(r, 200));
  ctl.sock.destroy();
  dataMw.close(); // before qpA: the window holds it
  for (const qp of qps) qp.close();
  ringMr.close();
  ringMwMr.close();
  otherMr.close();
  ringOtherMr.close();
  pd.close();
  pdOther.close();
  dev.close();
  ctx.close();
}

(mode === 'isolation' ? isolation() : bwOrLat()).catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
