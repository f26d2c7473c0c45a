import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../log.js';
import { LLC_FLAG_RKEY_NEG } from '../protocol/llc/constants.js';
import { LinkGroup, type LinkGroupOptions, type LinkSlot } from './link-group.js';
import { type AnyLlcMessage, decodeLlc, encodeLlc } from './llc-codec.js';
import type { RdmaDevice } from './rdma-device.js';

// Issue 12 item 4 on a whole LinkGroup: LLC requests arrive through a fake SmcLink (no RDMA device)
// and every answer the group posts is captured. Whatever a peer sends, the per-peer tables stay at
// their protocol bounds and the group keeps running.

interface FakeLink {
  state: 'up' | 'closed';
  sent: Buffer[];
  deliver(bytes: Buffer): void;
}

/** Rkeys of the memory regions the fake device deregistered. */
const closedRkeys: number[] = [];

/** Just enough of the verbs objects for a LinkGroup to be made, activated and ended. */
function fakeDevice(): { device: RdmaDevice; link: () => FakeLink } {
  let current: FakeLink | null = null;
  const closable = { close: () => undefined };
  let nextRkey = 1;
  const mr = (buf: Buffer) => {
    const rkey = nextRkey++;
    return { close: () => closedRkeys.push(rkey), addr: 0x10000, rkey, length: buf.byteLength };
  };
  class SmcLink {
    state: 'up' | 'closed' = 'up';
    sent: Buffer[] = [];
    private llc: ((d: { data?: Buffer }) => void) | null = null;
    constructor() {
      // eslint-disable-next-line @typescript-eslint/no-this-alias
      current = this;
    }
    expect(): void {}
    forget(): void {}
    inject(): void {}
    on(type: string, l: (d: { data?: Buffer }) => void): void {
      if (type === 'llc') this.llc = l;
    }
    sendLlc(m: Uint8Array): void {
      this.sent.push(Buffer.from(m));
    }
    stats() {
      return { unknownToken: 0, badCdc: 0, earlyDropped: 0 };
    }
    close(): void {
      this.state = 'closed';
    }
    deliver(bytes: Buffer): void {
      this.llc?.({ data: bytes });
    }
  }
  const device = {
    verbs: {
      allocBuffer: (n: number) => Buffer.alloc(n),
      releaseBuffer: (b: Buffer) => b.fill(0),
      randomPsn: () => 1,
      SmcLink,
    },
    context: {
      createCq: () => ({ ...closable, pendingCount: 0 }),
      allocPd: () => ({
        ...closable,
        createQp: () => ({ ...closable, qpn: 7, modifyToInit: () => undefined, postRecv: () => undefined }),
        registerMr: mr,
      }),
    },
    channel: {},
    ibPort: 1,
  } as unknown as RdmaDevice;
  return {
    device,
    link: () => {
      if (current === null) throw new Error('no link yet');
      return current;
    },
  };
}

const groups: LinkGroup[] = [];
afterEach(() => groups.splice(0).forEach((g) => g.end('test over', false)));

async function readyGroup(
  over: Partial<Pick<LinkGroupOptions, 'rmbPoolSize' | 'llcTimeoutMs'>> = {},
): Promise<{ g: LinkGroup; link: FakeLink; errors: Map<string, number> }> {
  const { device, link } = fakeDevice();
  closedRkeys.length = 0;
  const errors = new Map<string, number>();
  const g = new LinkGroup({
    id: 'lg-test',
    role: 'server',
    peerAddress: '10.0.0.2',
    peerKey: 'lab/peer',
    device,
    rmbSize: 16384,
    rmbPoolSize: 16,
    shareable: true,
    idleMs: 60_000,
    llcTimeoutMs: 1000,
    log: silentLogger(),
    onEnded: () => undefined,
    onRdmaError: (kind) => errors.set(kind, (errors.get(kind) ?? 0) + 1),
    ...over,
  });
  groups.push(g);
  await g.activate(
    { qpn: 9, gid: Buffer.alloc(16), mac: Buffer.alloc(6) },
    { rkey: 0xabc, vaddr: 0x1000n },
    1,
  );
  return { g, link: link(), errors };
}

function confirmRkey(i: number, version: 1 | 2): Buffer {
  const m: AnyLlcMessage = {
    kind: 'confirm-rkey',
    response: false,
    negative: false,
    retry: false,
    numRkeys: 0,
    own: { rmbKey: 0x1000 + i, rmbVaddr: 0x7f0000000000n + BigInt(i) * 0x10000n },
    others: [],
    ...(version === 2 ? { version: 2 as const } : {}),
  };
  return encodeLlc(m);
}

describe('LinkGroup under an LLC flood', () => {
  it('10,000 CONFIRM RKEYs: 255 peer RMBs kept (first contact included), the rest refused and counted', async () => {
    const { g, link, errors } = await readyGroup();
    for (let i = 0; i < 10_000; i++) link.deliver(confirmRkey(i, i % 2 === 0 ? 1 : 2));
    expect(g.peerRkeyCount).toBe(255);
    expect(link.sent).toHaveLength(10_000);
    const negative = link.sent.filter((b) => ((b[3] ?? 0) & LLC_FLAG_RKEY_NEG) !== 0).length;
    expect(negative).toBe(10_000 - 254);
    expect(errors.get('llc-rkey-refused')).toBe(10_000 - 254);
    expect(g.peerKnows(0xabc, 0x1000n)).toBe(true);
    expect(g.peerKnows(0x1000 + 9999, 0x7f0000000000n + 9999n * 0x10000n)).toBe(false);
    expect(g.state).toBe('ready');
  });

  it('10,000 of every other LLC type, malformed ones and stray responses: no table grows, the link stays', async () => {
    const { g, link, errors } = await readyGroup();
    const floods: Buffer[] = [
      encodeLlc({ kind: 'test-link', response: false, userData: Buffer.alloc(16, 1) }),
      encodeLlc({ kind: 'delete-rkey', response: false, negative: false, errorMask: 0, rkeys: [1, 2, 3] }),
      encodeLlc({
        kind: 'add-link',
        response: false,
        rejected: false,
        rejectReason: 0,
        senderMac: Buffer.alloc(6),
        senderGid: Buffer.alloc(16),
        senderQpn: 5,
        linkNum: 2,
        qpMtu: 3,
        initialPsn: 1,
      }),
      // A CONFIRM RKEY response nobody asked for.
      encodeLlc({
        kind: 'confirm-rkey',
        response: true,
        negative: false,
        retry: false,
        numRkeys: 0,
        own: { rmbKey: 5, rmbVaddr: 5n },
        others: [],
      }),
      // Malformed: an unknown type byte.
      Buffer.concat([Buffer.from([0x7e, 44]), Buffer.alloc(42)]),
    ];
    for (const bytes of floods) for (let i = 0; i < 10_000; i++) link.deliver(bytes);
    expect(g.peerRkeyCount).toBe(1);
    expect(g.state).toBe('ready');
    expect(errors.get('llc-unsupported')).toBe(10_000);
    expect(errors.get('llc-malformed')).toBe(10_000);
    // Answers only to TEST LINK and DELETE RKEY; nothing queued beyond what was sent.
    expect(link.sent).toHaveLength(20_000);
  });

  it('DELETE LINK ends the group after answering it', async () => {
    const { g, link } = await readyGroup();
    link.deliver(
      encodeLlc({
        kind: 'delete-link',
        response: false,
        all: true,
        orderly: true,
        linkNum: 1,
        reason: 0x00030000,
      }),
    );
    expect(link.sent).toHaveLength(1);
    expect(g.state).toBe('ended');
  });
});

/** The peer answers our last LLC request positively, as a correct peer does. */
function answerLast(link: FakeLink): AnyLlcMessage {
  const request = decodeLlc(link.sent[link.sent.length - 1] ?? Buffer.alloc(0));
  link.deliver(encodeLlc({ ...request, response: true } as AnyLlcMessage));
  return request;
}

/** A connection joins the ready group with a new RMB, which the peer confirms. */
async function joinWithNewRmb(g: LinkGroup, link: FakeLink, token: number): Promise<LinkSlot> {
  g.join();
  const rmb = g.rmbForJoin();
  await Promise.resolve();
  answerLast(link);
  return { rmb: await rmb, token };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('LinkGroup RMB pool (issue 15 item 3)', () => {
  it('keeps at most rmbPoolSize RMBs of orderly closed connections; the peer deletes the others, then they are deregistered', async () => {
    const { g, link } = await readyGroup({ rmbPoolSize: 2 });
    const slots: LinkSlot[] = [];
    for (let i = 0; i < 4; i++) slots.push(await joinWithNewRmb(g, link, 10 + i));
    expect(g.rmbCounts).toEqual({ inUse: 4, pooled: 0, retiring: 0 });
    const registered = g.registeredBytes;
    const before = link.sent.length;
    for (const slot of slots) g.leave(slot, true);
    expect(g.rmbCounts).toEqual({ inUse: 0, pooled: 2, retiring: 2 });
    // One DELETE RKEY flow at a time, each answered as the kernel answers (no rkey in the response);
    // an RMB stays registered until its answer.
    const rkeys: number[] = [];
    for (let i = 0; i < 2; i++) {
      await settle();
      const sent = link.sent.slice(before).map((b) => decodeLlc(b));
      expect(sent).toHaveLength(i + 1);
      const m = sent[i];
      if (m?.kind !== 'delete-rkey') throw new Error(`expected DELETE RKEY, got ${String(m?.kind)}`);
      rkeys.push(...m.rkeys);
      expect(g.registeredBytes).toBe(registered - i * 2 * 16384);
      link.deliver(encodeLlc({ ...m, response: true, rkeys: [0] }));
    }
    expect(rkeys).toEqual([slots[2]?.rmb.mr.rkey, slots[3]?.rmb.mr.rkey]);
    await settle();
    expect(g.rmbCounts).toEqual({ inUse: 0, pooled: 2, retiring: 0 });
    expect(g.registeredBytes).toBe(registered - 2 * 2 * 16384);
    expect(closedRkeys).toEqual(expect.arrayContaining(rkeys));
    // A pooled RMB serves the next join without CONFIRM RKEY.
    const sent = link.sent.length;
    g.join();
    const reused = await g.rmbForJoin();
    expect(link.sent.length).toBe(sent);
    expect([slots[0]?.rmb, slots[1]?.rmb]).toContain(reused);
  });

  it("an aborted connection's RMB is never pooled: DELETE RKEY, and without an answer it stays registered and unused", async () => {
    const { g, link } = await readyGroup({ llcTimeoutMs: 20 });
    const slot = await joinWithNewRmb(g, link, 7);
    const registered = g.registeredBytes;
    g.leave(slot, false);
    await settle();
    const request = decodeLlc(link.sent[link.sent.length - 1] ?? Buffer.alloc(0));
    expect(request).toMatchObject({ kind: 'delete-rkey', response: false, rkeys: [slot.rmb.mr.rkey] });
    await new Promise((r) => setTimeout(r, 60));
    expect(g.rmbCounts).toEqual({ inUse: 0, pooled: 0, retiring: 1 });
    expect(g.registeredBytes).toBe(registered);
    expect(closedRkeys).not.toContain(slot.rmb.mr.rkey);
    // Never handed to a later connection: the next join registers a new RMB.
    const next = await joinWithNewRmb(g, link, 8);
    expect(next.rmb).not.toBe(slot.rmb);
    expect(g.state).toBe('ready');
  });

  it('an RMB the peer never learnt is deregistered at once, without LLC', async () => {
    const { g, link } = await readyGroup();
    g.join();
    const rmb = g.newRmb();
    const sent = link.sent.length;
    g.leave({ rmb, token: 3 }, false);
    expect(link.sent.length).toBe(sent);
    expect(closedRkeys).toContain(rmb.mr.rkey);
    expect(g.rmbCounts).toEqual({ inUse: 0, pooled: 0, retiring: 0 });
  });
});
