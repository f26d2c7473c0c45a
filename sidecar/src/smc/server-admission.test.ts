import { describe, expect, it } from 'vitest';
import { ClcClient } from '../handshake/client.js';
import { CLIENT_ID, CLIENT_RDMA, SERVER_ID, SERVER_RDMA, fallbackOf } from '../handshake/fixtures.js';
import { ipv4ProposalArea } from '../handshake/prefix-match.js';
import { ClcServer } from '../handshake/server.js';
import type { HandshakeAction } from '../handshake/types.js';
import { FallbackReason } from '../policy/reasons.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { decodeClcDecline } from '../protocol/clc/decline.js';
import { reasonForLocalDecline } from './decline-reason.js';
import { admitProposal, declineWith, type ServerAdmission } from './server-admission.js';
import { SmcBudget } from './smc-budget.js';

const TENANT = Buffer.from('SMCK8S-TENANT-A'.padEnd(32, ' '), 'latin1');
const CLIENT_GID_V2 = Buffer.from('00000000000000000000ffffc0a80101', 'hex');
const SERVER_GID_V2 = Buffer.from('00000000000000000000ffffc0a80114', 'hex');

function fullBudget(): SmcBudget {
  const budget = new SmcBudget({ maxConnections: 1, maxRegisteredMemory: 1 << 20, rmbSize: 1 << 16 });
  if (!budget.reserve().admitted) throw new Error('fixture');
  return budget;
}

/** The SMC-Rv2 Proposal a peer sidecar sends (same tenant, v1 offered too). */
function proposalBytes(): Buffer {
  const client = new ClcClient({
    peerId: CLIENT_ID,
    rdma: CLIENT_RDMA,
    peerIndicatedSmc: true,
    ipArea: ipv4ProposalArea(Uint8Array.of(10, 1, 2, 3), 24),
    firstContact: true,
    smcrV2: { ueids: [TENANT], roceV2Gid: CLIENT_GID_V2 },
  });
  const send = client.handle({ type: 'start' }).find((a) => a.type === 'send');
  if (send?.type !== 'send') throw new Error('no Proposal');
  return send.bytes;
}

/** The server machine as the server session sets it up, the admission's refusal as its policy. */
function answer(admission: ServerAdmission): HandshakeAction[] {
  const server = new ClcServer({
    peerId: SERVER_ID,
    rdma: SERVER_RDMA,
    peerIndicatedSmc: true,
    localAddresses: [{ family: 'ipv4', address: Uint8Array.of(10, 1, 2, 77), prefixLength: 24 }],
    firstContact: true,
    ...(admission.refusal === null ? {} : { policy: declineWith(admission.refusal) }),
    smcrV2: { ueids: [TENANT], roceV2Gid: SERVER_GID_V2, requireEidMatch: true },
  });
  server.handle({ type: 'start' });
  return server.handle({ type: 'data', bytes: proposalBytes() });
}

function sentBytes(actions: HandshakeAction[]): Buffer[] {
  return actions.flatMap((a) => (a.type === 'send' ? [a.bytes] : []));
}

describe('server admission of a Proposal', () => {
  it('reserves from the budget and lets the Proposal through when the budget admits it', () => {
    const budget = new SmcBudget({ maxConnections: 1, maxRegisteredMemory: 1 << 20, rmbSize: 1 << 16 });
    const admission = admitProposal(null, budget);
    expect(admission.refusal).toBeNull();
    expect(budget.connections).toBe(1);
    const [accept] = sentBytes(answer(admission));
    expect(accept?.[4]).toBe(2); // CLC type 2: Accept
    if (admission.refusal === null) admission.release();
    expect(budget.connections).toBe(0);
  });

  it('declines with SMC_CLC_DECL_MEM (0x01010000) on the wire when the budget refuses', () => {
    const admission = admitProposal(null, fullBudget());
    expect(admission).toMatchObject({
      refusal: FallbackReason.LimitReached,
      budget: { limit: 'maxConnections', maxConnections: 1 },
    });
    const actions = answer(admission);
    const [bytes] = sentBytes(actions);
    if (bytes === undefined) throw new Error('nothing sent');
    // Header: eyecatcher "SMCR" in EBCDIC, type 4 (Decline); the peer diagnosis at offset 16.
    expect(bytes.subarray(0, 4)).toEqual(Buffer.from([0xe2, 0xd4, 0xc3, 0xd9]));
    expect(bytes[4]).toBe(4);
    expect(bytes.readUInt32BE(16)).toBe(0x01010000);
    expect(decodeClcDecline(bytes)).toMatchObject({ peerDiagnosis: SMC_CLC_DECL.MEM, outOfSync: false });
    // The machine falls back to TCP; the code is read back as limit-reached.
    expect(fallbackOf(actions)).toMatchObject({ reasonCode: SMC_CLC_DECL.MEM, origin: 'local' });
    expect(reasonForLocalDecline(SMC_CLC_DECL.MEM)).toBe(FallbackReason.LimitReached);
  });

  it('declines a refused peer for the policy reason and takes nothing from the budget', () => {
    const budget = new SmcBudget({ maxConnections: 1, maxRegisteredMemory: 1 << 20, rmbSize: 1 << 16 });
    const admission = admitProposal(FallbackReason.TenantNotAllowed, budget);
    expect(admission).toEqual({ refusal: FallbackReason.TenantNotAllowed, budget: null });
    expect(budget.connections).toBe(0);
    const [bytes] = sentBytes(answer(admission));
    expect(bytes?.readUInt32BE(16)).toBe(SMC_CLC_DECL.CNFERR);
  });

  it('declines with MEM when too many handshakes are in flight, reason handshake-overload', () => {
    const budget = new SmcBudget({
      maxConnections: 10,
      maxRegisteredMemory: 1 << 20,
      rmbSize: 1 << 16,
      maxHandshakes: 1,
    });
    const first = admitProposal(null, budget);
    expect(first.refusal).toBeNull();
    const admission = admitProposal(null, budget);
    expect(admission.refusal).toBe(FallbackReason.HandshakeOverload);
    const [bytes] = sentBytes(answer(admission));
    expect(bytes?.readUInt32BE(16)).toBe(SMC_CLC_DECL.MEM);
    if (first.refusal === null) first.handshakeDone();
    expect(admitProposal(null, budget).refusal).toBeNull();
  });
});
