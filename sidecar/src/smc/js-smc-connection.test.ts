import type { Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type {
  CompletionQueue,
  MemoryRegion,
  ProtectionDomain,
  QueuePair,
  SendWr,
  WorkCompletion,
} from '../../../native/index.js';
import { silentLogger } from '../log.js';
import type { VerbsModule } from '../native-loader.js';
import { CDC_MESSAGE_LENGTH } from '../protocol/cdc.js';
import type { PipeResult } from '../relay/pipe.js';
import { closeAll, collect, loopbackPair } from '../relay/testing.js';
import { JsSmcConnection } from './js-smc-connection.js';
import type { LlcChannel } from './llc-channel.js';

/*
 * Two JsSmcConnections joined by an in-memory "RC link": RDMA WRITEs copy into
 * the other side's RMB, SENDs land in its receive slots, completions are
 * delivered asynchronously and in order, as a real QP would.
 */

interface FakeMr {
  buffer: Buffer;
  close(): void;
}

class FakeCq {
  private listener: ((wc: WorkCompletion) => void) | null = null;
  private readonly queued: WorkCompletion[] = [];
  get pendingCount(): number {
    return this.queued.length;
  }
  next(): Promise<WorkCompletion> {
    const wc = this.queued.shift();
    return wc === undefined ? Promise.reject(new Error('empty')) : Promise.resolve(wc);
  }
  onCompletion(l: (wc: WorkCompletion) => void): () => void {
    this.listener = l;
    return () => (this.listener = null);
  }
  deliver(wc: WorkCompletion): void {
    setImmediate(() => (this.listener === null ? this.queued.push(wc) : this.listener(wc)));
  }
}

const wc = (wrId: number, opcode: WorkCompletion['opcode']): WorkCompletion => ({
  wrId,
  status: 'IBV_WC_SUCCESS',
  opcode,
  byteLen: 0,
  qpNum: 1,
  srcQp: 2,
  wcFlags: 0,
  vendorErr: 0,
});

class FakeSide {
  readonly cq = new FakeCq();
  readonly rmb: Buffer;
  readonly sendRing: Buffer;
  readonly sendMr: FakeMr;
  readonly slots: Buffer[] = [];
  private nextSlot = 0;
  peer: FakeSide | null = null;
  posted = 0;

  constructor(rmbSize: number, sendSize: number) {
    this.rmb = Buffer.alloc(rmbSize);
    this.sendRing = Buffer.alloc(sendSize);
    this.sendMr = { buffer: this.sendRing, close: () => undefined };
  }

  readonly llc = {
    slotCount: 4,
    takeSlot: (slot: number): Buffer => Buffer.from(this.slots[slot] ?? Buffer.alloc(0)),
  };

  readonly qp = {
    postSend: (wrs: SendWr | SendWr[]): void => {
      const peer = this.peer;
      if (peer === null) throw new Error('not connected');
      for (const wr of Array.isArray(wrs) ? wrs : [wrs]) {
        this.posted++;
        const sge = wr.sgList?.[0];
        const src = (sge?.mr as unknown as FakeMr).buffer.subarray(
          sge?.offset ?? 0,
          (sge?.offset ?? 0) + (sge?.length ?? 0),
        );
        if (wr.opcode === 'RDMA_WRITE') {
          src.copy(peer.rmb, Number(BigInt(wr.remoteAddr ?? 0)));
        } else {
          const slot = peer.nextSlot;
          peer.nextSlot = (slot + 1) % 4;
          peer.slots[slot] = Buffer.from(src.subarray(0, CDC_MESSAGE_LENGTH));
          peer.cq.deliver(wc(slot, 'RECV'));
        }
        if (wr.signaled !== false) this.cq.deliver(wc(wr.wrId ?? 0, 'SEND'));
      }
    },
  };

  readonly pd = { registerMr: (buffer: Buffer): FakeMr => ({ buffer, close: () => undefined }) };
}

const verbs = { allocBuffer: (n: number) => Buffer.alloc(n) } as unknown as VerbsModule;

function connection(side: FakeSide, token: number, peerToken: number, peerSize: number): JsSmcConnection {
  return new JsSmcConnection({
    id: `c${token}`,
    linkId: `l${token}`,
    verbs,
    pd: side.pd as unknown as ProtectionDomain,
    qp: side.qp as unknown as QueuePair,
    cq: side.cq as unknown as CompletionQueue,
    llc: side.llc as unknown as LlcChannel,
    rmb: side.rmb,
    sendRing: side.sendRing,
    sendMr: side.sendMr as unknown as MemoryRegion,
    localToken: token,
    peer: { addr: 0n, rkey: 1, size: peerSize, token: peerToken },
    log: silentLogger(),
    onClosed: () => undefined,
    onRdmaError: () => undefined,
  });
}

/** app A <-> [conn A] <-fake link-> [conn B] <-> app B; returns the app-side sockets and results. */
async function setup(servers: Server[], rmb = 64, send = 48) {
  const a = new FakeSide(rmb, send);
  const b = new FakeSide(rmb + 16, send);
  a.peer = b;
  b.peer = a;
  const ca = connection(a, 11, 22, b.rmb.byteLength);
  const cb = connection(b, 22, 11, a.rmb.byteLength);
  const results: Promise<PipeResult>[] = [];
  const pairs: Socket[][] = [];
  for (const conn of [ca, cb]) {
    const [app, inner] = await loopbackPair(servers);
    results.push(conn.run({ socket: inner }, () => undefined));
    pairs.push([app, inner]);
  }
  const appA = pairs[0]?.[0];
  const appB = pairs[1]?.[0];
  if (appA === undefined || appB === undefined) throw new Error('setup failed');
  return { appA, appB, results, sides: [a, b] };
}

describe('JsSmcConnection over a simulated link', () => {
  const servers: Server[] = [];
  afterEach(() => closeAll(servers.splice(0)));

  it('carries data both ways across many RMBE laps and forwards half-closes', async () => {
    const { appA, appB, results } = await setup(servers);
    const up = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    const down = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 253));
    const gotB = collect(appB);
    const gotA = collect(appA);
    appA.end(up);
    // B answers only after A's FIN arrived: the half-open direction keeps working.
    await gotB.ending;
    appB.end(down);
    expect((await gotB.data).equals(up)).toBe(true);
    expect((await gotA.data).equals(down)).toBe(true);
    const [ra, rb] = await Promise.all(results);
    expect(ra).toEqual({ tx: 5000, rx: 3000, outcome: 'closed' });
    expect(rb).toEqual({ tx: 3000, rx: 5000, outcome: 'closed' });
  });

  it('turns an application reset into a reset on the other side', async () => {
    const { appA, appB, results } = await setup(servers);
    const gotB = collect(appB);
    appA.write('hello');
    await new Promise<void>((r) => appB.once('data', () => r()));
    appA.resetAndDestroy();
    expect(await gotB.ending).toBe('ECONNRESET');
    const [ra, rb] = await Promise.all(results);
    expect(ra?.outcome).toBe('reset');
    expect(rb?.outcome).toBe('reset');
  });

  it('delivers bytes held during the handshake first', async () => {
    const a = new FakeSide(64, 48);
    const b = new FakeSide(64, 48);
    a.peer = b;
    b.peer = a;
    const ca = connection(a, 1, 2, 64);
    const cb = connection(b, 2, 1, 64);
    const mk = async () => {
      const [app, inner] = await loopbackPair(servers);
      return { app, inner };
    };
    const x = await mk();
    const y = await mk();
    const gotY = collect(y.app);
    void ca.run({ socket: x.inner, pending: Buffer.from('held-'), ended: false }, () => undefined);
    void cb.run({ socket: y.inner }, () => undefined);
    x.app.end('live');
    expect((await gotY.data).toString()).toBe('held-live');
    y.app.end();
  });
});
