import type { Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ClcClient } from '../handshake/client.js';
import { ipv4ProposalArea } from '../handshake/prefix-match.js';
import { ClcServer } from '../handshake/server.js';
import type { LocalRdmaParams } from '../handshake/types.js';
import { silentLogger } from '../log.js';
import { declineCodeFor, FallbackReason } from '../policy/reasons.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { closeAll, loopbackPair } from '../relay/testing.js';
import { type ClcOutcome, runClcHandshake } from './clc-driver.js';
import type { PreparedSmcConnection } from './link-group-manager.js';
import { makePeerId } from './peer-id.js';
import { fakeRdmaParams } from './testing.js';

// Issue 12 item 2 through the driver: the side that sees an oversized peer RMBE falls back with
// reason peer-rmb-too-large and never reaches establish(), where the staging ring is allocated.

/** Prepared resources that count how often link setup (and so the staging allocation) starts. */
function prepared(rdma: LocalRdmaParams): PreparedSmcConnection & { establishes: number; releases: number } {
  const p = {
    rdma,
    firstContact: true,
    establishes: 0,
    releases: 0,
    establish: () => {
      p.establishes++;
      // Never comes up: the handshake ends over TCP first.
      return new Promise<never>(() => undefined);
    },
    release: () => {
      p.releases++;
    },
  };
  return p;
}

function fallback(o: ClcOutcome): Extract<ClcOutcome, { kind: 'fallback' }> {
  if (o.kind !== 'fallback') throw new Error(`expected fallback, got ${o.kind}`);
  return o;
}

const servers: Server[] = [];
const sockets: Socket[] = [];

async function run(clientRdma: LocalRdmaParams, serverRdma: LocalRdmaParams) {
  const [c, s] = await loopbackPair(servers);
  c.pause();
  sockets.push(c, s);
  const pc = prepared(clientRdma);
  const ps = prepared(serverRdma);
  const peerId = makePeerId(null);
  const common = { peerId, syncTimeoutMs: 500, log: silentLogger() };
  const [oc, os] = await Promise.all([
    runClcHandshake({
      ...common,
      machine: new ClcClient({
        peerId,
        rdma: clientRdma,
        peerIndicatedSmc: true,
        ipArea: ipv4ProposalArea(Uint8Array.of(127, 0, 0, 1), 8),
        firstContact: true,
      }),
      socket: c,
      prepared: pc,
      expectServerReply: true,
    }),
    runClcHandshake({
      ...common,
      machine: new ClcServer({
        peerId,
        rdma: serverRdma,
        peerIndicatedSmc: true,
        localAddresses: [{ family: 'ipv4', address: Uint8Array.of(127, 0, 0, 1), prefixLength: 8 }],
        firstContact: true,
        maxPeerRmbeSize: 256 * 1024,
      }),
      socket: s,
      prepared: ps,
    }),
  ]);
  return { oc, os, pc, ps };
}

describe('runClcHandshake with an oversized peer RMBE', () => {
  afterEach(() => {
    sockets.splice(0).forEach((x) => x.destroy());
    return closeAll(servers.splice(0));
  });

  it('a client declines a 512 MiB Accept: peer-rmb-too-large, MEM, establish never called', async () => {
    const { oc, os, pc } = await run(fakeRdmaParams(1), { ...fakeRdmaParams(2), rmbeSize: 15 });
    expect(fallback(oc)).toMatchObject({
      reason: FallbackReason.PeerRmbTooLarge,
      code: SMC_CLC_DECL.MEM,
      origin: 'local',
    });
    expect(fallback(os)).toMatchObject({ reason: FallbackReason.PeerDeclined, code: SMC_CLC_DECL.MEM });
    expect(pc.establishes).toBe(0);
    expect(pc.releases).toBe(1);
  });

  it('a server declines a Confirm above its configured 256 KiB: establish never called', async () => {
    const { oc, os, ps } = await run({ ...fakeRdmaParams(1), rmbeSize: 5 }, fakeRdmaParams(2));
    expect(fallback(os)).toMatchObject({ reason: FallbackReason.PeerRmbTooLarge, code: SMC_CLC_DECL.MEM });
    expect(fallback(oc)).toMatchObject({ reason: FallbackReason.PeerDeclined, code: SMC_CLC_DECL.MEM });
    expect(ps.establishes).toBe(0);
    expect(ps.releases).toBe(1);
  });

  it('the reason maps back to the code it is declined with', () => {
    expect(declineCodeFor(FallbackReason.PeerRmbTooLarge)).toBe(SMC_CLC_DECL.MEM);
  });
});
