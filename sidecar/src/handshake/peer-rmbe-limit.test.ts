import { describe, expect, it } from 'vitest';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { decodeClcDecline } from '../protocol/clc/decline.js';
import { encodeClcProposal } from '../protocol/clc/proposal.js';
import { SMC_TYPE } from '../protocol/clc/constants.js';
import { hex } from '../protocol/testing/hex.js';
import { ClcClient, type ClcClientOptions } from './client.js';
import {
  acceptBytes,
  CLIENT_ID,
  CLIENT_RDMA,
  confirmBytes,
  declinedWith,
  fallbackOf,
  SERVER_ID,
  SERVER_RDMA,
  sent,
} from './fixtures.js';
import { DEFAULT_MAX_PEER_RMBE_SIZE } from './machine.js';
import { ipv4ProposalArea } from './prefix-match.js';
import { ClcServer, type ClcServerOptions } from './server.js';
import type { HandshakeAction, LocalRdmaParams } from './types.js';

// Issue 12 item 2: the peer's RMBE size (Accept on the client, Confirm on the server) sizes the
// staging ring we register for the connection; above our limit it is declined before any link
// resource exists. The byte at offset 50 of a v1 (and v2) Accept/Confirm holds the compressed
// RMBE size in its high nibble (2^(n+14) bytes) and the QP MTU in its low nibble.
const RMBE_BYTE = 50;

/** The message with its compressed RMBE size replaced on the wire. */
function withRmbe(bytes: Buffer, compressed: number): Buffer {
  const b = Buffer.from(bytes);
  b[RMBE_BYTE] = (compressed << 4) | ((b[RMBE_BYTE] ?? 0) & 0x0f);
  return b;
}

const noProceed = (actions: HandshakeAction[]): boolean => actions.every((a) => a.type !== 'proceed');

describe('peer RMBE limit, server side (the client Confirm)', () => {
  const proposal = encodeClcProposal({
    kind: 'proposal',
    version: 1,
    typeV1: SMC_TYPE.R,
    peerId: CLIENT_ID,
    gid: CLIENT_RDMA.gid,
    mac: CLIENT_RDMA.mac,
    growthArea: Buffer.alloc(0),
    ipArea: { ipv4Subnet: Buffer.from([10, 1, 2, 0]), ipv4PrefixLength: 24, ipv6Prefixes: [] },
  });
  function accepted(overrides: Partial<ClcServerOptions> = {}): ClcServer {
    const s = new ClcServer({
      peerId: SERVER_ID,
      rdma: SERVER_RDMA,
      peerIndicatedSmc: true,
      localAddresses: [{ family: 'ipv4', address: Uint8Array.of(10, 1, 2, 77), prefixLength: 24 }],
      firstContact: true,
      ...overrides,
    });
    s.handle({ type: 'start' });
    s.handle({ type: 'data', bytes: proposal });
    expect(s.state).toBe('awaiting-confirm');
    return s;
  }

  it('declines a 512 MiB RMBE (compressed 15) with SMC_CLC_DECL_MEM before link setup', () => {
    const s = accepted();
    const wire = withRmbe(confirmBytes(), 15);
    expect(wire[RMBE_BYTE]).toBe(0xf3);
    const actions = s.handle({ type: 'data', bytes: wire });
    expect(noProceed(actions)).toBe(true);
    expect(declinedWith(actions)).toEqual({ code: SMC_CLC_DECL.MEM, outOfSync: false, origin: 'local' });
    const f = fallbackOf(actions);
    expect(f.cause).toBe('peer-rmb-too-large');
    expect(f.description).toMatch(/536870912 bytes .*limit of 1048576/);
    // The Decline on the wire: MEM (0x01010000) in the peer diagnosis, no out-of-sync flag.
    const [decline] = sent(actions);
    if (decline?.kind !== 'decline') throw new Error('no Decline');
    const action = actions.find((a) => a.type === 'send');
    if (action?.type !== 'send') throw new Error('no send');
    expect(decodeClcDecline(action.bytes).peerDiagnosis).toBe(0x01010000);
    expect(s.state).toBe('fallback');
  });

  it('takes an RMBE exactly at the limit (1 MiB, compressed 6) and proceeds with it', () => {
    const s = accepted();
    const actions = s.handle({ type: 'data', bytes: withRmbe(confirmBytes(), 6) });
    const proceed = actions.find((a) => a.type === 'proceed');
    if (proceed?.type !== 'proceed') throw new Error('no proceed');
    expect(proceed.link.peer.rmbeSizeBytes).toBe(DEFAULT_MAX_PEER_RMBE_SIZE);
  });

  it('uses the configured limit: 64 KiB refuses 128 KiB (compressed 3), takes 64 KiB', () => {
    const refused = accepted({ maxPeerRmbeSize: 64 * 1024 });
    const r = refused.handle({ type: 'data', bytes: withRmbe(confirmBytes(), 3) });
    expect(noProceed(r)).toBe(true);
    expect(fallbackOf(r)).toMatchObject({ reasonCode: SMC_CLC_DECL.MEM, cause: 'peer-rmb-too-large' });
    const taken = accepted({ maxPeerRmbeSize: 64 * 1024 });
    expect(
      taken.handle({ type: 'data', bytes: withRmbe(confirmBytes(), 2) }).some((a) => a.type === 'proceed'),
    ).toBe(true);
  });
});

describe('peer RMBE limit, client side (the server Accept)', () => {
  function proposed(overrides: Partial<ClcClientOptions> = {}): ClcClient {
    const c = new ClcClient({
      peerId: CLIENT_ID,
      rdma: CLIENT_RDMA,
      peerIndicatedSmc: true,
      ipArea: ipv4ProposalArea(Uint8Array.of(10, 1, 2, 3), 24),
      firstContact: true,
      ...overrides,
    });
    c.handle({ type: 'start' });
    return c;
  }

  it('declines a 512 MiB RMBE with MEM: no Confirm, no link setup', () => {
    const c = proposed();
    const actions = c.handle({ type: 'data', bytes: withRmbe(acceptBytes(), 15) });
    expect(noProceed(actions)).toBe(true);
    expect(sent(actions).map((m) => m.kind)).toEqual(['decline']);
    expect(declinedWith(actions)).toMatchObject({ code: SMC_CLC_DECL.MEM });
    expect(fallbackOf(actions).cause).toBe('peer-rmb-too-large');
  });

  it('makes no new link group for a server that starts one with an oversized RMBE', () => {
    // We offered reuse; the server answers with first contact, which would make us create a link.
    let created = 0;
    const c = proposed({
      firstContact: false,
      reuse: { peerQpn: SERVER_RDMA.qpn, peerGid: SERVER_RDMA.gid, peerMac: SERVER_RDMA.mac },
      rdmaForFirstContact: (): LocalRdmaParams => {
        created++;
        return CLIENT_RDMA;
      },
    });
    const actions = c.handle({ type: 'data', bytes: withRmbe(acceptBytes({ firstContact: true }), 9) });
    expect(fallbackOf(actions).cause).toBe('peer-rmb-too-large');
    expect(created).toBe(0);
    // The same Accept with a 64 KiB RMBE does create it.
    const ok = proposed({
      firstContact: false,
      reuse: { peerQpn: SERVER_RDMA.qpn, peerGid: SERVER_RDMA.gid, peerMac: SERVER_RDMA.mac },
      rdmaForFirstContact: (): LocalRdmaParams => {
        created++;
        return CLIENT_RDMA;
      },
    });
    expect(
      ok
        .handle({ type: 'data', bytes: acceptBytes({ firstContact: true, rmbeSize: 2 }) })
        .some((a) => a.type === 'proceed'),
    ).toBe(true);
    expect(created).toBe(1);
  });

  it('declines an SMC-Rv2 Accept alike, in a v2 Decline', () => {
    const ueid = Buffer.from('SMCK8S-TENANT-A'.padEnd(32, ' '), 'latin1');
    const c = new ClcClient({
      peerId: CLIENT_ID,
      rdma: CLIENT_RDMA,
      peerIndicatedSmc: true,
      ipArea: ipv4ProposalArea(Uint8Array.of(10, 1, 2, 3), 24),
      firstContact: true,
      smcrV2: { ueids: [ueid], roceV2Gid: hex('00000000000000000000ffffc0a80101') },
    });
    const s = new ClcServer({
      peerId: SERVER_ID,
      rdma: { ...SERVER_RDMA, rmbeSize: 15 },
      peerIndicatedSmc: true,
      localAddresses: [{ family: 'ipv4', address: Uint8Array.of(10, 1, 2, 77), prefixLength: 24 }],
      firstContact: true,
      smcrV2: { ueids: [ueid], roceV2Gid: hex('00000000000000000000ffffc0a80114') },
    });
    s.handle({ type: 'start' });
    const proposal = c.handle({ type: 'start' }).find((a) => a.type === 'send');
    if (proposal?.type !== 'send') throw new Error('no Proposal');
    const accept = s.handle({ type: 'data', bytes: proposal.bytes }).find((a) => a.type === 'send');
    if (accept?.type !== 'send' || accept.message.kind !== 'accept') throw new Error('no Accept');
    expect(accept.message.version).toBe(2);
    expect((accept.bytes[RMBE_BYTE] ?? 0) >> 4).toBe(15);
    const actions = c.handle({ type: 'data', bytes: accept.bytes });
    expect(noProceed(actions)).toBe(true);
    const [decline] = sent(actions);
    expect(decline).toMatchObject({ kind: 'decline', version: 2, peerDiagnosis: SMC_CLC_DECL.MEM });
  });
});
