// The addon's side of the RDMA WRITE benchmark (runs in the lab VMs; see run.sh).
//
//   node bench.js bw  PORT [iters=1000] [size=65536] [depth=128]
//   node bench.js lat PORT [iters=1000] [size=64]
//
// LAB_NODE=1 is the passive side (listens on PORT for the exchange), LAB_NODE=0 the active one.
// bw:  node0 RDMA WRITEs `iters` messages of `size` bytes into a ring in node1's memory, keeping
//      `depth` in flight and signalling every 16th, like ib_write_bw (tx-depth 128).
// lat: ping-pong of `size`-byte RDMA_WRITE_WITH_IMM; each side waits for the peer's write through
//      its completion channel (event-driven; ib_write_lat instead busy-polls the last byte).
//      Reported like ib_write_lat: one-way latency = round trip / 2.
// node0 prints `BENCH {json}`.
import {
  allocBuffer,
  debugStats,
  openDevice,
  randomPsn,
  type QueuePair,
  type WorkCompletion,
} from '../../native/index.js';
import { openCtl } from '../../test/vm/addon/ctl.js';

const [mode = 'bw', portArg = '18700', itersArg, sizeArg, depthArg] = process.argv.slice(2);
const port = Number(portArg);
const isServer = process.env['LAB_NODE'] === '1';
const peerIp = process.env['LAB_PEER_IP'] ?? '10.77.0.2';
const iters = Number(itersArg ?? '1000');
const size = Number(sizeArg ?? (mode === 'bw' ? '65536' : '64'));
const depth = Number(depthArg ?? '128');
const SIGNAL_EVERY = 16;
const RING = 16; // messages in the target ring

type Endpoint = {
  gid: string;
  qpn: number;
  psn: number;
  addr: number;
  rkey: number;
};

async function main(): Promise<void> {
  const ctx = openDevice(process.env['LAB_RXE'] ?? 'rxe0');
  const gid = ctx.queryGidTable(1).find((g) => g.index === 1)?.gid;
  if (!gid) throw new Error('no GID index 1');
  const mtu = ctx.queryPort(1).activeMtu;
  const ch = ctx.createCompletionChannel();
  const cq = ctx.createCq(ch, 4096);
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
      const run = (n: number): Promise<number> =>
        new Promise((resolve, reject) => {
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
      await run(Math.min(100, iters)); // warm-up
      const sec = await run(iters);
      ctl.send('done');
      const mib = (iters * size) / 1048576 / sec;
      console.log(
        `BENCH ${JSON.stringify({ mode, size, iters, depth, seconds: sec, MiBps: mib, stats: debugStats() })}`,
      );
    }
  } else {
    // lat: one receive always posted; WRITE_WITH_IMM into the peer's buffer.
    let wrId = 0;
    const postRecv = (): void => qp.postRecv({ wrId: 1_000_000 + wrId++ });
    for (let i = 0; i < 32; i++) postRecv();
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
        postRecv();
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
    if (!isServer) {
      samples.sort((a, b) => a - b);
      const half = samples.map((s) => s / 2);
      const avg = half.reduce((a, b) => a + b, 0) / half.length;
      const q = (p: number): number => half[Math.min(half.length - 1, Math.floor(p * half.length))] ?? NaN;
      console.log(
        `BENCH ${JSON.stringify({ mode, size, iters, tMinUs: q(0), tTypicalUs: q(0.5), tAvgUs: avg, t99Us: q(0.99), stats: debugStats() })}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  ctl.sock.destroy();
  qp.close();
  mr.close();
  cq.close();
  ch.close();
  pd.close();
  ctx.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
