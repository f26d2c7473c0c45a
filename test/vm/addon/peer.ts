// Two-node addon checks, run inside the lab VMs by test/vm/addon.test.ts (transpiled to JS first).
// node1 ("target") listens on a small TCP control channel; node0 ("initiator") connects. Over it
// they swap GID / QPN / PSN / rkey / addr and synchronise scenario by scenario. Each node prints
// `RESULT {"scenario": ..., ...}` lines that the host-side test asserts on.
//
// Env: LAB_NODE, LAB_IP, LAB_PEER_IP, LAB_RXE, LAB_OUT (set by lab-run); PEER_SCENARIOS (comma
// list, default all); PEER_LEAK_CYCLES (default 1000).
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  allocBuffer,
  debugCounters,
  openDevice,
  randomPsn,
  VerbsError,
  type CompletionQueue,
  type Context,
  type MemoryRegion,
  type ProtectionDomain,
  type QueuePair,
  type WorkCompletion,
} from '../../../native/index.js';
import { Ctl, openCtl, type Json } from './ctl.js';

const CTL_PORT = 18600;
const node = Number(process.env['LAB_NODE'] ?? '0');
const isInit = node === 0;
const peerIp = process.env['LAB_PEER_IP'] ?? '10.77.0.2';
const devName = process.env['LAB_RXE'] ?? 'rxe0';
const labOut = process.env['LAB_OUT'] ?? '/tmp';
const SGID = 1;

const result = (scenario: string, data: Json): void =>
  console.log(`RESULT ${JSON.stringify({ scenario, ...data })}`);
const log = (msg: string): void =>
  console.log(`[node${node} ${(performance.now() / 1000).toFixed(2)}s] ${msg}`);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex').slice(0, 32);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- verbs helpers ------------------------------------------------------------------------------
interface Res {
  ctx: Context;
  pd: ProtectionDomain;
  cq: CompletionQueue;
  gid: string;
}

function setup(): Res {
  const ctx = openDevice(devName);
  const gid = ctx.queryGidTable(1).find((g) => g.index === SGID);
  if (!gid) throw new Error(`no GID index ${SGID}`);
  const ch = ctx.createCompletionChannel();
  const cq = ctx.createCq(ch, 4096);
  return { ctx, pd: ctx.allocPd(), cq, gid: gid.gid };
}

interface PairOpts {
  remoteWrite?: boolean;
  timeout?: number;
  retryCnt?: number;
  pd?: ProtectionDomain;
}

/** Creates a QP on both nodes and connects them (symmetric). */
async function pair(ctl: Ctl, r: Res, name: string, o: PairOpts = {}): Promise<QueuePair> {
  const qp = (o.pd ?? r.pd).createQp({ sendCq: r.cq, maxSendWr: 256, maxRecvWr: 2048, maxInlineData: 64 });
  const psn = randomPsn();
  ctl.send(`ep:${name}`, { gid: r.gid, qpn: qp.qpn, psn });
  const remote = await ctl.recv<{ gid: string; qpn: number; psn: number }>(`ep:${name}`);
  qp.connect({
    remote,
    localPsn: psn,
    sgidIndex: SGID,
    remoteWrite: o.remoteWrite ?? false,
    timeout: o.timeout ?? 14,
    retryCnt: o.retryCnt ?? 6,
  });
  // Both sides in RTS before anyone posts: a responder still in RTR that gets a bad request goes
  // to ERR and could not reach RTS any more.
  ctl.send(`rts:${name}`);
  await ctl.recv(`rts:${name}`);
  return qp;
}

let nextWrId = 1;
const wrId = (): number => nextWrId++;

function mrInfo(mr: MemoryRegion): Json {
  return { addr: mr.addr, rkey: mr.rkey, length: mr.length };
}

async function expectOk(cq: CompletionQueue, id: number, what: string): Promise<WorkCompletion> {
  const wc = await cq.waitFor(id, 60_000);
  if (wc.status !== 'IBV_WC_SUCCESS') throw new Error(`${what}: ${wc.status}`);
  return wc;
}

// ---- scenarios ------------------------------------------------------------------------------------

/** SEND / SEND_WITH_IMM with 3-entry scatter lists at odd offsets; target gathers and hashes. */
async function sendRecv(ctl: Ctl, r: Res): Promise<void> {
  const qp = await pair(ctl, r, 'send');
  const N = 32;
  const SLOT = 8192;
  if (isInit) {
    const srcBuf = randomBytes(64 * 1024);
    const src = r.pd.registerMr(srcBuf);
    await ctl.recv('recvs-posted');
    const expected: Buffer[] = [];
    const ids: number[] = [];
    for (let i = 0; i < N; i++) {
      const a = (i * 997) % 30000;
      const sg = [
        { mr: src, offset: a, length: 1000 + i },
        { mr: src, offset: a + 7001, length: 333 },
        { mr: src, offset: 60000 - i * 13, length: 2048 },
      ];
      for (const s of sg) expected.push(srcBuf.subarray(s.offset, s.offset + s.length));
      const id = wrId();
      ids.push(id);
      qp.postSend(
        i === N - 1
          ? { wrId: id, opcode: 'SEND_WITH_IMM', immData: 0xc0ffee, sgList: sg }
          : { wrId: id, opcode: 'SEND', sgList: sg },
      );
    }
    for (const id of ids) await expectOk(r.cq, id, 'send');
    result('send_recv', { role: 'init', hash: sha(Buffer.concat(expected)), messages: N });
    src.close();
  } else {
    const dstBuf = allocBuffer(N * SLOT);
    const dst = r.pd.registerMr(dstBuf);
    const ids: number[] = [];
    for (let i = 0; i < N; i++) {
      const id = wrId();
      ids.push(id);
      // two receive SGEs per slot: the message scatters across them
      qp.postRecv({
        wrId: id,
        sgList: [
          { mr: dst, offset: i * SLOT, length: 1500 },
          { mr: dst, offset: i * SLOT + 1500, length: SLOT - 1500 },
        ],
      });
    }
    ctl.send('recvs-posted');
    const parts: Buffer[] = [];
    const wcs: WorkCompletion[] = [];
    for (let i = 0; i < N; i++) {
      const wc = await expectOk(r.cq, ids[i] as number, 'recv');
      wcs.push(wc);
      parts.push(dstBuf.subarray(i * SLOT, i * SLOT + wc.byteLen));
    }
    const last = wcs[N - 1];
    result('send_recv', {
      role: 'target',
      hash: sha(Buffer.concat(parts)),
      messages: wcs.length,
      opcodes: [...new Set(wcs.map((w) => w.opcode))],
      lastImm: last?.immData,
      byteLens: wcs.slice(0, 3).map((w) => w.byteLen),
    });
    dst.close();
  }
  qp.close();
}

/** 1 MiB of RDMA WRITEs (64 KiB each, some with 2 SGEs), the last one WITH_IMM. */
async function rdmaWrite(ctl: Ctl, r: Res): Promise<void> {
  const SIZE = 1 << 20;
  const CHUNK = 64 * 1024;
  const qp = await pair(ctl, r, 'write', { remoteWrite: !isInit });
  if (isInit) {
    const srcBuf = randomBytes(SIZE);
    const src = r.pd.registerMr(srcBuf);
    const t = await ctl.recv<{ addr: number; rkey: number; length: number }>('target-mr');
    const ids: number[] = [];
    for (let off = 0; off < SIZE; off += CHUNK) {
      const id = wrId();
      ids.push(id);
      const last = off + CHUNK >= SIZE;
      const sgList =
        (off / CHUNK) % 2 === 0
          ? [{ mr: src, offset: off, length: CHUNK }]
          : [
              { mr: src, offset: off, length: 1234 },
              { mr: src, offset: off + 1234, length: CHUNK - 1234 },
            ];
      qp.postSend(
        last
          ? {
              wrId: id,
              opcode: 'RDMA_WRITE_WITH_IMM',
              immData: 7,
              remoteAddr: t.addr + off,
              rkey: t.rkey,
              sgList,
            }
          : { wrId: id, opcode: 'RDMA_WRITE', remoteAddr: t.addr + off, rkey: t.rkey, sgList },
      );
    }
    const t0 = performance.now();
    for (const id of ids) await expectOk(r.cq, id, 'write');
    result('rdma_write', { role: 'init', hash: sha(srcBuf), ms: performance.now() - t0 });
    src.close();
  } else {
    const dstBuf = allocBuffer(SIZE);
    const dst = r.pd.registerMr(dstBuf, { remoteWrite: true });
    const id = wrId();
    qp.postRecv({ wrId: id });
    ctl.send('target-mr', mrInfo(dst));
    const wc = await expectOk(r.cq, id, 'recv imm');
    result('rdma_write', { role: 'target', hash: sha(dstBuf), opcode: wc.opcode, immData: wc.immData });
    dst.close();
  }
  qp.close();
}

/** Many small signaled SENDs: every completion arrives through the channel, none lost. */
async function manySends(ctl: Ctl, r: Res): Promise<void> {
  const N = 2000;
  const qp = await pair(ctl, r, 'many');
  const buf = allocBuffer(64 * 1024);
  const mr = r.pd.registerMr(buf);
  let count = 0;
  let bytes = 0;
  const done = new Promise<void>((resolve, reject) => {
    const off = r.cq.onCompletion((wc) => {
      if (wc.status !== 'IBV_WC_SUCCESS') reject(new Error(wc.status));
      count++;
      bytes += wc.byteLen;
      if (count === N) {
        off();
        resolve();
      }
    });
  });
  const t0 = performance.now();
  if (isInit) {
    await ctl.recv('recvs-posted');
    for (let posted = 0; posted < N; posted += 100) {
      // keep the send queue under maxSendWr (256)
      while (posted - count > 150) await sleep(1);
      const batch = [];
      for (let k = 0; k < 100; k++) {
        batch.push({ wrId: wrId(), opcode: 'SEND' as const, sgList: [{ mr, offset: k * 64, length: 64 }] });
      }
      qp.postSend(batch);
    }
  } else {
    const batch = [];
    for (let i = 0; i < N; i++)
      batch.push({ wrId: wrId(), sgList: [{ mr, offset: (i % 1000) * 64, length: 64 }] });
    for (let i = 0; i < N; i += 500) qp.postRecv(batch.slice(i, i + 500));
    ctl.send('recvs-posted');
  }
  await done;
  result('many_sends', { role: isInit ? 'init' : 'target', count, bytes, ms: performance.now() - t0 });
  qp.close();
  mr.close();
}

/**
 * RDMA WRITEs the target must refuse: wrong rkey, past the end of the region, a region without
 * remote write, a QP without remote write. Each gets a fresh QP pair (an access error moves the
 * QPs to ERR). The target hashes its memory before and after.
 */
async function security(ctl: Ctl, r: Res): Promise<void> {
  const cases = ['wrong_rkey', 'beyond_end', 'mr_no_remote_write', 'qp_no_remote_write'] as const;
  if (isInit) {
    const srcBuf = randomBytes(4096);
    const src = r.pd.registerMr(srcBuf);
    const t = await ctl.recv<{
      victim: { addr: number; rkey: number; length: number };
      ro: { addr: number; rkey: number; length: number };
    }>('target-mrs');
    const statuses: Record<string, string> = {};
    for (const c of cases) {
      const qp = await pair(ctl, r, `sec-${c}`, { timeout: 12, retryCnt: 3 });
      let addr = t.victim.addr;
      let rkey = t.victim.rkey;
      let len = 256;
      if (c === 'wrong_rkey') rkey = (t.victim.rkey ^ 0x5a5a5a00) >>> 0;
      if (c === 'beyond_end') {
        addr = t.victim.addr + t.victim.length - 100;
        len = 200;
      }
      if (c === 'mr_no_remote_write') {
        addr = t.ro.addr;
        rkey = t.ro.rkey;
      }
      const id = wrId();
      qp.postSend({
        wrId: id,
        opcode: 'RDMA_WRITE',
        remoteAddr: addr,
        rkey,
        sgList: [{ mr: src, length: len }],
      });
      const wc = await r.cq.waitFor(id, 60_000);
      statuses[c] = wc.status;
      log(`${c}: ${wc.status}`);
      ctl.send(`sec-done-${c}`);
      await ctl.recv(`sec-ack-${c}`);
      qp.close();
    }
    result('security', { role: 'init', statuses });
    src.close();
  } else {
    const victimBuf = allocBuffer(64 * 1024);
    victimBuf.fill(0xab);
    const roBuf = allocBuffer(64 * 1024);
    roBuf.fill(0xcd);
    // An MR adjacent to the victim's end must not be reachable through "beyond_end" either.
    const victim = r.pd.registerMr(victimBuf, { remoteWrite: true });
    const ro = r.pd.registerMr(roBuf);
    const before = { victim: sha(victimBuf), ro: sha(roBuf) };
    ctl.send('target-mrs', { victim: mrInfo(victim), ro: mrInfo(ro) });
    const states: Record<string, string> = {};
    for (const c of cases) {
      const qp = await pair(ctl, r, `sec-${c}`, { remoteWrite: c !== 'qp_no_remote_write' });
      await ctl.recv(`sec-done-${c}`);
      states[c] = qp.query().state;
      ctl.send(`sec-ack-${c}`);
      qp.close();
    }
    const after = { victim: sha(victimBuf), ro: sha(roBuf) };
    result('security', {
      role: 'target',
      unchanged: before.victim === after.victim && before.ro === after.ro,
      before,
      after,
      targetQpStates: states,
    });
    victim.close();
    ro.close();
  }
}

/** A QP of one PD given an MR of another PD: the device refuses it (local protection). */
async function crossPd(ctl: Ctl, r: Res): Promise<void> {
  const otherPd = r.ctx.allocPd();
  const qp = await pair(ctl, r, 'xpd');
  const buf = allocBuffer(4096);
  buf.fill(0x11);
  const foreign = otherPd.registerMr(buf);
  if (isInit) {
    await ctl.recv('recv-posted');
    const id = wrId();
    qp.postSend({ wrId: id, opcode: 'SEND', sgList: [{ mr: foreign, length: 128 }] });
    const wc = await r.cq.waitFor(id, 60_000);
    result('cross_pd', { role: 'init', status: wc.status, qpState: qp.query().state });
    ctl.send('xpd-done');
  } else {
    const rb = allocBuffer(4096);
    const rmr = r.pd.registerMr(rb);
    const id = wrId();
    qp.postRecv({ wrId: id, sgList: [{ mr: rmr }] });
    ctl.send('recv-posted');
    await ctl.recv('xpd-done');
    await sleep(200);
    qp.modifyToError(); // flushes the receive
    const wc = await r.cq.waitFor(id, 10_000).catch(() => undefined);
    result('cross_pd', {
      role: 'target',
      recvStatus: wc?.status ?? 'none',
      received: rb.some((x) => x !== 0),
    });
    rmr.close();
  }
  if (!qp.closed) qp.close();
  foreign.close();
  otherPd.close();
}

/** RTR with bad GIDs / GID index: does modify fail, or do sends fail? (initiator only) */
async function badGid(r: Res): Promise<void> {
  const cases: { name: string; gid: string; sgidIndex: number }[] = [
    { name: 'unreachable_in_subnet', gid: '::ffff:10.77.0.99', sgidIndex: SGID },
    { name: 'no_route', gid: '::ffff:192.0.2.1', sgidIndex: SGID },
    { name: 'zero_gid', gid: '::', sgidIndex: SGID },
    { name: 'bad_sgid_index', gid: `::ffff:${peerIp}`, sgidIndex: 77 },
  ];
  const buf = allocBuffer(4096);
  const mr = r.pd.registerMr(buf);
  const out: Record<string, Json> = {};
  for (const c of cases) {
    const qp = r.pd.createQp({ sendCq: r.cq });
    const t0 = performance.now();
    try {
      qp.modifyToInit({});
      qp.modifyToRtr({ remoteGid: c.gid, remoteQpn: 0x1234, remotePsn: 0, sgidIndex: c.sgidIndex });
      qp.modifyToRts({ psn: 0, timeout: 10, retryCnt: 2 });
    } catch (e) {
      out[c.name] = {
        modify: e instanceof VerbsError ? e.code : String(e),
        ms: Math.round(performance.now() - t0),
      };
      log(`${c.name}: modify failed ${String(e)}`);
      qp.close();
      continue;
    }
    const id = wrId();
    qp.postSend({ wrId: id, opcode: 'SEND', sgList: [{ mr, length: 64 }] });
    const wc = await r.cq
      .waitFor(id, 120_000)
      .catch((e: unknown) => ({ status: `no completion: ${String(e)}` }));
    out[c.name] = { modify: 'ok', wc: wc.status, ms: Math.round(performance.now() - t0) };
    log(`${c.name}: ${wc.status}`);
    qp.close();
  }
  mr.close();
  result('bad_gid', { role: 'init', cases: out });
}

/** Creates full object trees and drops them (a plain function: no suspended frame keeps them). */
function dropObjects(n: number): number {
  for (let i = 0; i < n; i++) {
    const c = openDevice(devName);
    const ch = c.createCompletionChannel();
    const cq = c.createCq(ch, 16);
    const pd = c.allocPd();
    pd.registerMr(allocBuffer(4096), { remoteWrite: true });
    pd.createQp({ sendCq: cq }).modifyToInit({});
  }
  return n;
}

/** Open/close cycles on the real device, then the finalizer safety net. */
async function leak(r: Res): Promise<void> {
  const cycles = Number(process.env['PEER_LEAK_CYCLES'] ?? '1000');
  const base = debugCounters();
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  let rssMid = 0;
  for (let i = 0; i < cycles; i++) {
    const ch = r.ctx.createCompletionChannel();
    const cq = r.ctx.createCq(ch, 16);
    const pd = r.ctx.allocPd();
    const mr = pd.registerMr(Buffer.alloc(8192), { remoteWrite: true });
    const qp = pd.createQp({ sendCq: cq });
    qp.modifyToInit({ remoteWrite: true });
    qp.close();
    mr.close();
    pd.close();
    cq.close();
    ch.close();
    if (i === Math.floor(cycles / 10)) {
      gc?.();
      rssMid = process.memoryUsage().rss;
    }
  }
  gc?.();
  const rss1 = process.memoryUsage().rss;
  const after = debugCounters();
  // Whole contexts too (fewer: opening a device is slower).
  for (let i = 0; i < cycles / 10; i++) openDevice(devName).close();
  // Dropped without close(): finalizers release everything, in whatever order they run.
  let dropped = 0;
  if (gc) {
    dropped = dropObjects(50);
    for (let i = 0; i < 10; i++) {
      gc();
      await sleep(50);
    }
  }
  const afterGc = debugCounters();
  result('leak', {
    role: isInit ? 'init' : 'target',
    cycles,
    ms: Math.round(performance.now() - t0),
    base,
    after,
    afterGc,
    dropped,
    gcAvailable: !!gc,
    rssGrowthKiB: Math.round((rss1 - rss0) / 1024),
    rssGrowthAfterWarmupKiB: Math.round((rss1 - rssMid) / 1024),
  });
}

/** The target's VM is killed; the initiator's WRs must end in error completions, not hang. */
async function peerDeath(ctl: Ctl, r: Res): Promise<void> {
  const qp = await pair(ctl, r, 'death', { remoteWrite: !isInit, timeout: 14, retryCnt: 6 });
  if (isInit) {
    const t = await ctl.recv<{ addr: number; rkey: number; length: number }>('dying');
    // lab-run polls for poweroff-now every 0.2 s; give it ample time to kill the VM.
    await sleep(3000);
    const buf = allocBuffer(4096);
    const mr = r.pd.registerMr(buf);
    const w1 = wrId();
    const w2 = wrId();
    const t0 = performance.now();
    qp.postSend({ wrId: w1, opcode: 'RDMA_WRITE', remoteAddr: t.addr, rkey: t.rkey, sgList: [{ mr }] });
    qp.postSend({ wrId: w2, opcode: 'SEND', sgList: [{ mr, length: 16 }] });
    const diag = setInterval(() => log(`qp state ${qp.query().state}, unclaimed ${r.cq.pendingCount}`), 5000);
    const [a, b] = await Promise.all([r.cq.waitFor(w1, 120_000), r.cq.waitFor(w2, 120_000)]).finally(() =>
      clearInterval(diag),
    );
    result('peer_death', {
      role: 'init',
      write: a.status,
      send: b.status,
      ms: Math.round(performance.now() - t0),
      qpState: qp.query().state,
    });
    qp.close();
    mr.close();
  } else {
    const buf = allocBuffer(4096);
    const mr = r.pd.registerMr(buf, { remoteWrite: true });
    ctl.send('dying', mrInfo(mr));
    await sleep(100);
    log('requesting poweroff');
    writeFileSync(join(labOut, 'poweroff-now'), 'peer_death\n');
    await sleep(600_000);
  }
}

async function main(): Promise<void> {
  const all = [
    'send_recv',
    'rdma_write',
    'many_sends',
    'security',
    'cross_pd',
    'bad_gid',
    'leak',
    'peer_death',
  ];
  const want = (process.env['PEER_SCENARIOS'] ?? all.join(',')).split(',');
  const r = setup();
  log(`device ${r.ctx.name} gid ${r.gid}`);
  const ctl = await openCtl(!isInit, CTL_PORT, peerIp);
  log('control channel up');
  const run = async (name: string, fn: () => Promise<void>): Promise<void> => {
    if (!want.includes(name)) return;
    log(`scenario ${name}`);
    ctl.send(`begin:${name}`);
    await ctl.recv(`begin:${name}`);
    try {
      await fn();
    } catch (e) {
      result(name, { role: isInit ? 'init' : 'target', error: String(e), stack: (e as Error).stack });
      throw e;
    }
  };
  await run('send_recv', () => sendRecv(ctl, r));
  await run('rdma_write', () => rdmaWrite(ctl, r));
  await run('many_sends', () => manySends(ctl, r));
  await run('security', () => security(ctl, r));
  await run('cross_pd', () => crossPd(ctl, r));
  await run('bad_gid', () => (isInit ? badGid(r) : Promise.resolve()));
  await run('leak', () => leak(r));
  await run('peer_death', () => peerDeath(ctl, r));
  result('done', { role: isInit ? 'init' : 'target', counters: debugCounters() });
  ctl.sock.destroy();
  process.exit(0);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
