import type { Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ClcClient } from '../handshake/client.js';
import { ClcServer } from '../handshake/server.js';
import { ipv4ProposalArea } from '../handshake/prefix-match.js';
import { silentLogger } from '../log.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { decodeClcMessage } from '../protocol/clc/message.js';
import { FallbackReason } from '../policy/reasons.js';
import { closeAll, collect, loopbackPair } from '../relay/testing.js';
import { type ClcOutcome, runClcHandshake } from './clc-driver.js';
import { LinkSetupError } from './link-errors.js';
import type { PreparedSmcConnection } from './link-group-manager.js';
import { makePeerId } from './peer-id.js';
import type { SmcConnection } from './smc-connection.js';
import { fakeRdmaParams } from './testing.js';

const LOCAL = { family: 'ipv4' as const, address: Uint8Array.of(127, 0, 0, 1), prefixLength: 8 };

function prepared(
  establish: PreparedSmcConnection['establish'],
): PreparedSmcConnection & { releases: number } {
  const p = {
    rdma: fakeRdmaParams(3),
    firstContact: true,
    releases: 0,
    establish,
    release: () => {
      p.releases++;
    },
  };
  return p;
}

const failingLink = () => Promise.reject(new LinkSetupError(FallbackReason.LinkSetupFailed, 'no QP'));

const sockets: Socket[] = [];

async function socketPair(servers: Server[]): Promise<[Socket, Socket]> {
  const pair = await loopbackPair(servers);
  pair[0].pause();
  sockets.push(...pair);
  return pair;
}

function client(
  socket: Socket,
  p: PreparedSmcConnection | null,
  clcTimeoutMs = 2000,
  linkTimeoutMs = 2000,
  kernelPeer = false,
) {
  const peerId = makePeerId(null);
  return runClcHandshake({
    machine: new ClcClient({
      peerId,
      clcTimeoutMs,
      linkTimeoutMs,
      rdma: fakeRdmaParams(1),
      peerIndicatedSmc: true,
      ipArea: ipv4ProposalArea(Uint8Array.of(127, 0, 0, 1), 8),
      firstContact: true,
    }),
    socket,
    prepared: p,
    peerId,
    syncTimeoutMs: 300,
    kernelPeer,
    expectServerReply: true,
    log: silentLogger(),
  });
}

function server(
  socket: Socket,
  p: PreparedSmcConnection | null,
  policyCode?: number,
  linkTimeoutMs = 2000,
  kernelPeer = false,
) {
  const peerId = makePeerId(null);
  return runClcHandshake({
    machine: new ClcServer({
      peerId,
      linkTimeoutMs,
      rdma: fakeRdmaParams(2),
      peerIndicatedSmc: true,
      localAddresses: [LOCAL],
      firstContact: true,
      ...(policyCode === undefined ? {} : { policy: () => ({ allow: false, reasonCode: policyCode }) }),
    }),
    socket,
    prepared: p,
    peerId,
    syncTimeoutMs: 300,
    kernelPeer,
    log: silentLogger(),
  });
}

function fakeConnection(id: string): SmcConnection & { aborted: number } {
  const c = {
    id,
    linkId: `link-${id}`,
    aborted: 0,
    run: () => Promise.resolve({ tx: 0, rx: 0, outcome: 'closed' as const }),
    abort: () => {
      c.aborted++;
    },
  };
  return c;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * LLC CONFIRM LINK between two fake links, with the commit points of the real
 * one: the server commits and "posts" CONFIRM LINK (arriving after
 * `requestDelayMs`); the client waits for it up to `clientWaitMs`, commits and
 * answers (arriving after `responseDelayMs`); the server waits up to
 * `serverWaitMs` for the answer. Records who committed and who came up.
 */
function fakeConfirmLink(o: {
  requestDelayMs: number;
  responseDelayMs: number;
  clientWaitMs: number;
  serverWaitMs: number;
}) {
  let deliverRequest = (): void => undefined;
  const request = new Promise<void>((r) => (deliverRequest = r));
  let deliverResponse = (): void => undefined;
  const response = new Promise<void>((r) => (deliverResponse = r));
  const within = (p: Promise<void>, ms: number, what: string) =>
    Promise.race([
      p,
      sleep(ms).then(() => {
        throw new LinkSetupError(FallbackReason.LinkSetupFailed, `no ${what}`);
      }),
    ]);
  const state = {
    clientCommit: null as boolean | null,
    serverCommit: null as boolean | null,
    clientConn: fakeConnection('client'),
    serverConn: fakeConnection('server'),
  };
  const serverEstablish: PreparedSmcConnection['establish'] = async (_link, _tcp, gate) => {
    state.serverCommit = gate?.commit() ?? true;
    if (!state.serverCommit) throw new LinkSetupError(FallbackReason.LinkSetupFailed, 'gave up');
    setTimeout(deliverRequest, o.requestDelayMs);
    await within(response, o.serverWaitMs, 'CONFIRM LINK response');
    return state.serverConn;
  };
  const clientEstablish: PreparedSmcConnection['establish'] = async (_link, _tcp, gate) => {
    await within(request, o.clientWaitMs, 'CONFIRM LINK');
    state.clientCommit = gate?.commit() ?? true;
    if (!state.clientCommit) throw new LinkSetupError(FallbackReason.LinkSetupFailed, 'gave up');
    if (Number.isFinite(o.responseDelayMs)) setTimeout(deliverResponse, o.responseDelayMs);
    return state.clientConn;
  };
  return { state, serverEstablish, clientEstablish };
}

function fallback(o: ClcOutcome): Extract<ClcOutcome, { kind: 'fallback' }> {
  if (o.kind !== 'fallback') throw new Error(`expected fallback, got ${o.kind}`);
  return o;
}

/** After the handshake: each side sends a line and FIN; each must read exactly the other's line. */
async function exchangeAfter(
  a: Socket,
  aResidual: Buffer,
  b: Socket,
  bResidual: Buffer,
): Promise<[string, string]> {
  const ga = collect(a);
  const gb = collect(b);
  a.resume();
  b.resume();
  a.end('from-a');
  b.end('from-b');
  const ra = Buffer.concat([aResidual, await ga.data]).toString();
  const rb = Buffer.concat([bResidual, await gb.data]).toString();
  return [ra, rb];
}

describe('runClcHandshake', () => {
  const servers: Server[] = [];
  afterEach(() => {
    sockets.splice(0).forEach((s) => s.destroy());
    return closeAll(servers.splice(0));
  });

  it('falls back on both sides when the link cannot come up, with clean data afterwards', async () => {
    const [c, s] = await socketPair(servers);
    const pc = prepared(failingLink);
    const ps = prepared(failingLink);
    const [oc, os] = await Promise.all([client(c, pc), server(s, ps)]);
    expect(fallback(oc)).toMatchObject({ reason: 'link-setup-failed', code: SMC_CLC_DECL.ERR_RDYLNK });
    expect(fallback(os).reason).toMatch(/link-setup-failed|peer-declined/);
    expect(pc.releases).toBe(1);
    expect(ps.releases).toBe(1);
    const [atClient, atServer] = await exchangeAfter(c, fallback(oc).residual, s, fallback(os).residual);
    expect(atClient).toBe('from-b');
    expect(atServer).toBe('from-a');
  });

  it('falls back when the server declines the Proposal; the client answers with its own Decline', async () => {
    const [c, s] = await socketPair(servers);
    const [oc, os] = await Promise.all([
      client(c, prepared(failingLink)),
      server(s, null, SMC_CLC_DECL.CNFERR),
    ]);
    expect(fallback(oc)).toMatchObject({
      origin: 'peer',
      reason: 'peer-declined',
      code: SMC_CLC_DECL.CNFERR,
    });
    expect(fallback(os)).toMatchObject({ origin: 'local', code: SMC_CLC_DECL.CNFERR });
    const [atClient, atServer] = await exchangeAfter(c, fallback(oc).residual, s, fallback(os).residual);
    expect([atClient, atServer]).toEqual(['from-b', 'from-a']);
  });

  it('with a kernel peer, one Decline ends the handshake: nobody answers it, no wait, clean data', async () => {
    const [c, s] = await socketPair(servers);
    const [oc, os] = await Promise.all([
      client(c, prepared(failingLink), 2000, 2000, true),
      server(s, null, SMC_CLC_DECL.NOUEID, 2000, true),
    ]);
    expect(fallback(oc)).toMatchObject({ origin: 'peer', code: SMC_CLC_DECL.NOUEID, peerSpokeClc: true });
    expect(fallback(os)).toMatchObject({ origin: 'local', code: SMC_CLC_DECL.NOUEID });
    // An answering Decline would have reached the declining side as application data.
    const [atClient, atServer] = await exchangeAfter(c, fallback(oc).residual, s, fallback(os).residual);
    expect([atClient, atServer]).toEqual(['from-b', 'from-a']);
  });

  it('establishes when both links come up', async () => {
    const [c, s] = await socketPair(servers);
    const conn: SmcConnection = {
      id: 'c1',
      linkId: 'l1',
      run: () => Promise.resolve({ tx: 0, rx: 0, outcome: 'closed' }),
      abort: () => undefined,
    };
    const [oc, os] = await Promise.all([
      client(
        c,
        prepared(() => Promise.resolve(conn)),
      ),
      server(
        s,
        prepared(() => Promise.resolve(conn)),
      ),
    ]);
    expect(oc.kind).toBe('established');
    expect(os.kind).toBe('established');
  });

  it('a client that gives up before the CONFIRM LINK never answers it: both sides fall back, no data path', async () => {
    const [c, s] = await socketPair(servers);
    const f = fakeConfirmLink({
      requestDelayMs: 300,
      responseDelayMs: 0,
      clientWaitMs: 2000,
      serverWaitMs: 1000,
    });
    const pc = prepared(f.clientEstablish);
    const ps = prepared(f.serverEstablish);
    // The client's link timer (100 ms) fires while the server's CONFIRM LINK is still on its way.
    const [oc, os] = await Promise.all([client(c, pc, 2000, 100), server(s, ps)]);
    expect(fallback(oc)).toMatchObject({ origin: 'local', code: SMC_CLC_DECL.TIMEOUT_CL });
    expect(fallback(os)).toMatchObject({ origin: 'peer', code: SMC_CLC_DECL.TIMEOUT_CL });
    expect(f.state.serverCommit).toBe(true);
    await sleep(400);
    // The late CONFIRM LINK found the handshake over: no answer, so the server never came up either.
    expect(f.state.clientCommit).toBe(false);
    expect([pc.releases, ps.releases]).toEqual([1, 1]);
    const [atClient, atServer] = await exchangeAfter(c, fallback(oc).residual, s, fallback(os).residual);
    expect([atClient, atServer]).toEqual(['from-b', 'from-a']);
  });

  it('a committed server waits past its link timer for the answer instead of declining', async () => {
    const [c, s] = await socketPair(servers);
    const f = fakeConfirmLink({
      requestDelayMs: 0,
      responseDelayMs: 400,
      clientWaitMs: 2000,
      serverWaitMs: 2000,
    });
    // The server's link timer (100 ms) fires while the client's answer is still on its way.
    const [oc, os] = await Promise.all([
      client(c, prepared(f.clientEstablish)),
      server(s, prepared(f.serverEstablish), undefined, 100),
    ]);
    expect(oc.kind).toBe('established');
    expect(os.kind).toBe('established');
    expect(f.state.serverConn.aborted).toBe(0);
    expect(f.state.clientConn.aborted).toBe(0);
  });

  it('a link that fails after the commit aborts the handshake instead of falling back', async () => {
    const [c, s] = await socketPair(servers);
    const f = fakeConfirmLink({
      requestDelayMs: 0,
      responseDelayMs: Infinity,
      clientWaitMs: 2000,
      serverWaitMs: 200,
    });
    const ps = prepared(f.serverEstablish);
    const [oc, os] = await Promise.all([client(c, prepared(f.clientEstablish)), server(s, ps)]);
    expect(oc.kind).toBe('established');
    expect(os).toMatchObject({ kind: 'aborted', cause: 'protocol' });
    expect(ps.releases).toBe(1);
  });

  it('times out a silent peer, declines, and aborts when no Decline comes back', async () => {
    const [c, s] = await socketPair(servers);
    const seen: Buffer[] = [];
    s.on('data', (d: Buffer) => seen.push(d));
    s.resume();
    const o = await client(c, prepared(failingLink), 200);
    expect(o.kind).toBe('aborted');
    expect(clcKinds(seen)).toEqual(['proposal', 'decline']);
  });

  it('aborts when the peer closes during the handshake', async () => {
    const [c, s] = await socketPair(servers);
    s.end();
    expect((await client(c, prepared(failingLink))).kind).toBe('aborted');
  });

  /** The client's CLC messages as the server side saw them. */
  function clcKinds(seen: Buffer[]): string[] {
    const kinds = [];
    let all = Buffer.concat(seen);
    while (all.byteLength >= 8) {
      const len = all.readUInt16BE(5);
      kinds.push(decodeClcMessage(all.subarray(0, len)).kind);
      all = all.subarray(len);
    }
    return kinds;
  }

  it('a kernel peer that echoes our Proposal back does not speak CLC: no Decline into its stream', async () => {
    const [c, s] = await socketPair(servers);
    const seen: Buffer[] = [];
    s.on('data', (d: Buffer) => {
      seen.push(d);
      s.write(d);
    });
    s.resume();
    const o = await client(c, prepared(failingLink), 2000, 2000, true);
    expect(o.kind).not.toBe('established');
    expect(o).toMatchObject({ peerSpokeClc: false });
    await new Promise((r) => setTimeout(r, 50));
    expect(clcKinds(seen)).toEqual(['proposal']);
  });

  it('a silent kernel peer times out without a Decline from us', async () => {
    const [c, s] = await socketPair(servers);
    const seen: Buffer[] = [];
    s.on('data', (d: Buffer) => seen.push(d));
    s.resume();
    const o = await client(c, prepared(failingLink), 200, 2000, true);
    expect(o).toMatchObject({ kind: 'fallback', origin: 'local', peerSpokeClc: false });
    expect(clcKinds(seen)).toEqual(['proposal']);
  });
});
