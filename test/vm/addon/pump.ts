// Data pump checks across the two lab nodes (run by test/vm/addon.test.ts). On each node a local
// TCP connection stands for the application: its server end (accepted with pauseOnConnect) is
// handed to a DataPump; the pumps are joined by an RC QP. Scenarios:
//   bulk:  both apps send PUMP_BYTES of random data at once, then end(); every byte arrives in
//          order (hashes), FIN travels as "peer done writing", both pumps reach 'closed'.
//   abort: node0's app resets its connection; node1's app sees ECONNRESET; pumps 'aborted'.
// Prints `RESULT {json}` lines.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';

import {
  DataPump,
  allocBuffer,
  debugCounters,
  openDevice,
  randomPsn,
  type CompletionQueue,
  type Context,
  type ProtectionDomain,
  type PumpEnd,
} from '../../../native/index.js';
import { openCtl, type Ctl, type Json } from './ctl.js';

const node = Number(process.env['LAB_NODE'] ?? '0');
const isInit = node === 0;
const peerIp = process.env['LAB_PEER_IP'] ?? '10.77.0.2';
const BYTES = Number(process.env['PUMP_BYTES'] ?? String(4 << 20));
const RMBE = Number(process.env['PUMP_RMBE'] ?? String(64 * 1024));
const role = isInit ? 'init' : 'target';

const result = (scenario: string, data: Json): void =>
  console.log(`RESULT ${JSON.stringify({ scenario, role, ...data })}`);
const log = (msg: string): void =>
  console.log(`[node${node} ${(performance.now() / 1000).toFixed(2)}s] ${msg}`);

interface Base {
  ctx: Context;
  pd: ProtectionDomain;
  gid: string;
}

/** A local TCP connection: `app` is the application's end, `fd` the pump's (paused, detached). */
async function appConnection(): Promise<{ app: Socket; fd: number; release: () => void }> {
  const server = createServer({ pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const app = connect(addr.port, '127.0.0.1');
  await new Promise((r) => app.once('connect', r));
  const inner = await accepted;
  server.close();
  const fd = (inner as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('no fd');
  return { app, fd, release: () => inner.destroy() };
}

async function pumpPair(
  ctl: Ctl,
  b: Base,
  name: string,
  fd: number,
): Promise<{ pump: DataPump; cq: CompletionQueue; close: () => void }> {
  const ch = b.ctx.createCompletionChannel();
  const cq = b.ctx.createCq(ch, 512);
  const qp = b.pd.createQp({ sendCq: cq, maxSendWr: 64, maxRecvWr: 64, maxInlineData: 64 });
  const stage = b.pd.registerMr(allocBuffer(RMBE));
  const rmb = b.pd.registerMr(allocBuffer(RMBE), { remoteWrite: true });
  const token = randomInt(1, 2 ** 32 - 1);
  const psn = randomPsn();
  ctl.send(`ep:${name}`, { gid: b.gid, qpn: qp.qpn, psn, addr: rmb.addr, rkey: rmb.rkey, size: RMBE, token });
  const remote = await ctl.recv<{
    gid: string;
    qpn: number;
    psn: number;
    addr: number;
    rkey: number;
    size: number;
    token: number;
  }>(`ep:${name}`);
  qp.connect({ remote, localPsn: psn, sgidIndex: 1, remoteWrite: true });
  ctl.send(`rts:${name}`);
  await ctl.recv(`rts:${name}`);
  const pump = new DataPump(qp, {
    fd,
    stageMr: stage,
    rmbMr: rmb,
    localToken: token,
    peer: { addr: remote.addr, rkey: remote.rkey, size: remote.size, token: remote.token },
  });
  return {
    pump,
    cq,
    close: () => {
      pump.close();
      qp.close();
      stage.close();
      rmb.close();
      cq.close();
      ch.close();
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`${what}: timeout after ${ms} ms`)), ms)),
  ]);
}

async function bulk(ctl: Ctl, b: Base): Promise<void> {
  const { app, fd, release } = await appConnection();
  const p = await pumpPair(ctl, b, 'bulk', fd);
  release();
  const data = randomBytes(BYTES);
  const rxHash = createHash('sha256');
  let rxBytes = 0;
  const received = new Promise<void>((resolve, reject) => {
    app.on('data', (d: Buffer) => {
      rxHash.update(d);
      rxBytes += d.length;
    });
    app.once('end', () => resolve());
    app.once('error', reject);
  });
  const events: string[] = [];
  p.pump.on('eof', () => events.push('eof'));
  p.pump.on('peerDone', () => events.push('peerDone'));
  const t0 = performance.now();
  // write in pieces so both directions interleave
  for (let off = 0; off < data.length; off += 256 * 1024) {
    if (!app.write(data.subarray(off, off + 256 * 1024))) await new Promise((r) => app.once('drain', r));
  }
  app.end();
  await withTimeout(received, 300_000, 'receive');
  const end: PumpEnd = await withTimeout(p.pump.done, 60_000, 'pump end');
  const ms = performance.now() - t0;
  result('bulk', {
    sentHash: createHash('sha256').update(data).digest('hex').slice(0, 32),
    receivedHash: rxHash.digest('hex').slice(0, 32),
    sent: data.length,
    received: rxBytes,
    end: end.type,
    events,
    state: p.pump.state,
    stats: p.pump.stats(),
    MiBps: Math.round(((2 * BYTES) / 1048576 / (ms / 1000)) * 10) / 10,
  });
  app.destroy();
  p.close();
}

async function abort(ctl: Ctl, b: Base): Promise<void> {
  const { app, fd, release } = await appConnection();
  const p = await pumpPair(ctl, b, 'abort', fd);
  release();
  const appError = new Promise<string>((resolve) => {
    app.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? String(e)));
    app.once('close', () => resolve('closed without error'));
  });
  app.write(randomBytes(1000));
  if (isInit) {
    await new Promise((r) => setTimeout(r, 500));
    app.resetAndDestroy();
    const end = await withTimeout(p.pump.done, 60_000, 'pump end');
    result('abort', { end: end.type, detail: { ...end.detail }, state: p.pump.state });
  } else {
    const end = await withTimeout(p.pump.done, 60_000, 'pump end');
    const appSaw = await withTimeout(appError, 30_000, 'app error');
    result('abort', { end: end.type, detail: { ...end.detail }, state: p.pump.state, appSaw });
  }
  ctl.send('abort-done');
  await ctl.recv('abort-done');
  p.close();
}

/** A pump over memory of another protection domain is refused before anything is posted. */
async function foreignPd(b: Base): Promise<void> {
  const { fd, release } = await appConnection();
  const other = b.ctx.allocPd();
  const ch = b.ctx.createCompletionChannel();
  const cq = b.ctx.createCq(ch, 16);
  const qp = b.pd.createQp({ sendCq: cq, maxSendWr: 16, maxRecvWr: 64, maxInlineData: 64 });
  const stage = other.registerMr(allocBuffer(RMBE));
  const rmb = b.pd.registerMr(allocBuffer(RMBE), { remoteWrite: true });
  let code = 'none';
  let message = '';
  try {
    new DataPump(qp, {
      fd,
      stageMr: stage,
      rmbMr: rmb,
      localToken: 1,
      peer: { addr: 0, rkey: 1, size: RMBE, token: 2 },
    });
  } catch (e) {
    code = (e as { code?: string }).code ?? String(e);
    message = (e as Error).message;
  }
  result('foreign-pd', { code, message });
  release();
  qp.close();
  stage.close();
  rmb.close();
  other.close();
  cq.close();
  ch.close();
}

async function main(): Promise<void> {
  const ctx = openDevice(process.env['LAB_RXE'] ?? 'rxe0');
  const gid = ctx.queryGidTable(1).find((g) => g.index === 1)?.gid;
  if (!gid) throw new Error('no GID index 1');
  const b: Base = { ctx, pd: ctx.allocPd(), gid };
  const ctl = await openCtl(!isInit, 18610, peerIp);
  log('control channel up');
  await foreignPd(b);
  await bulk(ctl, b);
  log('bulk done');
  await abort(ctl, b);
  log('abort done');
  b.pd.close();
  ctx.close();
  result('done', { counters: debugCounters() });
  ctl.sock.destroy();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
