// Single-node checks of the addon on a real rxe device (run inside a lab VM): queries, a loopback
// RC connection between two QPs of the same device, SEND/RECV, RDMA WRITE (+IMM), access errors,
// cross-PD protection and a leak loop. Prints one JSON line per check: {"check": name, ...}.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';

import {
  allocBuffer,
  releaseBuffer,
  debugCounters,
  getOriginalDst,
  listDevices,
  openDevice,
  randomPsn,
  type WorkCompletion,
} from '../../../native/index.js';

const out = (check: string, data: object): void => console.log(JSON.stringify({ check, ...data }));
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex').slice(0, 16);

async function main(): Promise<void> {
  const devName = process.env['LAB_RXE'] ?? 'rxe0';
  out('devices', { devices: listDevices() });
  const ctx = openDevice(devName);
  const port = ctx.queryPort(1);
  out('port', { port });
  out('device', { device: ctx.queryDevice() });
  const gids = ctx.queryGidTable(1);
  out('gids', { gids });
  out('pkeys', { pkeys: ctx.queryPkeyTable(1).slice(0, 4) });
  const gid1 = gids.find((g) => g.index === 1);
  if (!gid1) throw new Error('no GID index 1');

  const ch = ctx.createCompletionChannel();
  const cqA = ctx.createCq(ch, 64);
  const cqB = ctx.createCq(ch, 64);
  const pdA = ctx.allocPd();
  const pdB = ctx.allocPd();
  const qpA = pdA.createQp({ sendCq: cqA, maxInlineData: 64 });
  const qpB = pdB.createQp({ sendCq: cqB });
  const psnA = randomPsn();
  const psnB = randomPsn();
  qpA.connect({ remote: { gid: gid1.gid, qpn: qpB.qpn, psn: psnB }, localPsn: psnA, sgidIndex: 1 });
  qpB.connect({
    remote: { gid: gid1.gid, qpn: qpA.qpn, psn: psnA },
    localPsn: psnB,
    sgidIndex: 1,
    remoteWrite: true,
  });
  out('qp', { a: qpA.query(), b: qpB.query(), cap: qpA.cap });

  const srcBuf = allocBuffer(8192);
  for (let i = 0; i < srcBuf.length; i++) srcBuf[i] = (i * 7) & 0xff;
  const dstBuf = allocBuffer(8192);
  const src = pdA.registerMr(srcBuf);
  const dst = pdB.registerMr(dstBuf, { remoteWrite: true });
  const noRemote = pdB.registerMr(allocBuffer(4096));

  // SEND with two SGEs -> RECV
  qpB.postRecv({ wrId: 1, sgList: [{ mr: dst, offset: 0, length: 4096 }] });
  qpA.postSend({
    wrId: 2,
    opcode: 'SEND_WITH_IMM',
    immData: 0xdeadbeef,
    sgList: [
      { mr: src, offset: 100, length: 1000 },
      { mr: src, offset: 5000, length: 24 },
    ],
  });
  const [r1, s1] = await Promise.all([cqB.waitFor(1, 10_000), cqA.waitFor(2, 10_000)]);
  const expect1 = Buffer.concat([srcBuf.subarray(100, 1100), srcBuf.subarray(5000, 5024)]);
  out('send', { recv: r1, send: s1, ok: sha(dstBuf.subarray(0, 1024)) === sha(expect1) });

  // RDMA WRITE with IMM
  dstBuf.fill(0);
  qpB.postRecv({ wrId: 3 });
  qpA.postSend({
    wrId: 4,
    opcode: 'RDMA_WRITE_WITH_IMM',
    immData: 42,
    remoteAddr: dst.addr + 64,
    rkey: dst.rkey,
    sgList: [{ mr: src, offset: 0, length: 8000 }],
  });
  const [r2, s2] = await Promise.all([cqB.waitFor(3, 10_000), cqA.waitFor(4, 10_000)]);
  out('write_imm', {
    recv: r2,
    send: s2,
    ok: sha(dstBuf.subarray(64, 8064)) === sha(srcBuf.subarray(0, 8000)) && dstBuf[63] === 0,
  });

  // inline SEND
  qpB.postRecv({ wrId: 5, sgList: [{ mr: dst }] });
  qpA.postSend({ wrId: 6, opcode: 'SEND', inline: true, sgList: [{ mr: src, length: 32 }] });
  const [r3, s3] = await Promise.all([cqB.waitFor(5, 10_000), cqA.waitFor(6, 10_000)]);
  out('inline', { recv: r3, send: s3 });

  // bad rkey -> REM_ACCESS_ERR (QP goes to error; further WRs flush)
  const before = sha(dstBuf);
  qpA.postSend({
    wrId: 7,
    opcode: 'RDMA_WRITE',
    remoteAddr: noRemote.addr,
    rkey: noRemote.rkey,
    sgList: [{ mr: src, length: 64 }],
  });
  const s4: WorkCompletion = await cqA.waitFor(7, 20_000);
  out('no_remote_write', { send: s4, unchanged: sha(dstBuf) === before, stateA: qpA.query().state });

  // cross-PD: MR of pdB used by a QP of pdA -> local protection error
  const qpC = pdA.createQp({ sendCq: cqA });
  const qpD = pdB.createQp({ sendCq: cqB });
  const psnC = randomPsn();
  const psnD = randomPsn();
  qpC.connect({ remote: { gid: gid1.gid, qpn: qpD.qpn, psn: psnD }, localPsn: psnC, sgidIndex: 1 });
  qpD.connect({ remote: { gid: gid1.gid, qpn: qpC.qpn, psn: psnC }, localPsn: psnD, sgidIndex: 1 });
  qpD.postRecv({ wrId: 8, sgList: [{ mr: dst }] });
  qpC.postSend({ wrId: 9, opcode: 'SEND', sgList: [{ mr: dst, length: 16 }] });
  const s5 = await cqA.waitFor(9, 20_000);
  await new Promise((r) => setTimeout(r, 1000));
  const restA: WorkCompletion[] = [];
  const restB: WorkCompletion[] = [];
  while (cqA.pendingCount > 0) restA.push(await cqA.next());
  while (cqB.pendingCount > 0) restB.push(await cqB.next());
  out('cross_pd', { send: s5, restA, restB });

  // close in order; parent-before-child refused
  let busy = '';
  try {
    pdA.close();
  } catch (e) {
    busy = (e as { code?: string }).code ?? String(e);
  }
  // A registered buffer's pages are pinned by the device: releasing them is refused until its MR
  // is closed.
  let releasePinned = '';
  try {
    releaseBuffer(dstBuf);
  } catch (e) {
    releasePinned = (e as { code?: string }).code ?? String(e);
  }
  for (const o of [qpA, qpB, qpC, qpD, src, dst, noRemote]) o.close();
  releaseBuffer(dstBuf);
  for (const o of [cqA, cqB, ch, pdA, pdB, ctx]) o.close();
  out('close', {
    busy,
    releasePinned,
    releasedReadsZero: dstBuf.every((b) => b === 0),
    counters: debugCounters(),
  });

  // async events: the port goes down and up with its netdev
  {
    const c = openDevice(devName);
    const seen: string[] = [];
    const got = new Promise<void>((resolve) => {
      c.addAsyncEventListener((ev) => {
        seen.push(`${ev.type}:${ev.port ?? ''}`);
        if (ev.type === 'IBV_EVENT_PORT_ACTIVE') resolve();
      });
    });
    const netdev = process.env['LAB_NETDEV'] ?? 'eth0';
    execFileSync('ip', ['link', 'set', netdev, 'down']);
    await new Promise((r) => setTimeout(r, 500));
    const downState = c.queryPort(1).state;
    execFileSync('ip', ['link', 'set', netdev, 'up']);
    await Promise.race([got, new Promise((r) => setTimeout(r, 20_000))]);
    out('async_events', { seen, downState, upState: c.queryPort(1).state });
    c.close();
  }

  // getOriginalDst on REDIRECTed connections: IPv4 to a dual-stack and to an IPv4 listener, IPv6
  try {
    execFileSync('iptables', [
      '-t',
      'nat',
      '-A',
      'OUTPUT',
      '-p',
      'tcp',
      '--dport',
      '8080',
      '-j',
      'REDIRECT',
      '--to-ports',
      '15001',
    ]);
    execFileSync('ip6tables', [
      '-t',
      'nat',
      '-A',
      'OUTPUT',
      '-p',
      'tcp',
      '--dport',
      '8080',
      '-j',
      'REDIRECT',
      '--to-ports',
      '15001',
    ]);
    const cases: [string, string][] = [
      ['::', process.env['LAB_IP'] ?? '10.77.0.1'],
      ['0.0.0.0', process.env['LAB_IP'] ?? '10.77.0.1'],
      ['::', '::1'],
    ];
    const got: unknown[] = [];
    for (const [listen, dest] of cases) {
      const srv = createServer({ pauseOnConnect: true });
      await new Promise<void>((r) => srv.listen(15001, listen, r));
      const acc = new Promise<Socket>((r) => srv.once('connection', r));
      const c = connect(8080, dest);
      c.on('error', () => undefined);
      const s = await acc;
      const fd = (s as unknown as { _handle: { fd: number } })._handle.fd;
      got.push({ listen, dest, orig: getOriginalDst(fd) });
      c.destroy();
      s.destroy();
      await new Promise((r) => srv.close(r));
    }
    out('original_dst', { got });
  } catch (e) {
    out('original_dst', { error: String(e) });
  }

  // leak loop
  const n = Number(process.env['SMOKE_CYCLES'] ?? '200');
  const rss0 = process.memoryUsage().rss;
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    const c = openDevice(devName);
    const chn = c.createCompletionChannel();
    const cq = c.createCq(chn, 16);
    const pd = c.allocPd();
    const mr = pd.registerMr(Buffer.alloc(4096), { remoteWrite: true });
    const qp = pd.createQp({ sendCq: cq });
    qp.modifyToInit({ remoteWrite: true });
    qp.close();
    mr.close();
    pd.close();
    cq.close();
    chn.close();
    c.close();
  }
  out('leak', {
    cycles: n,
    ms: Date.now() - t0,
    rssDelta: process.memoryUsage().rss - rss0,
    counters: debugCounters(),
  });
}

main().then(
  () => out('done', {}),
  (e: unknown) => {
    out('error', { error: String(e), stack: e instanceof Error ? e.stack : undefined });
    process.exitCode = 1;
  },
);
