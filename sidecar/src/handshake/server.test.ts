import { describe, expect, it } from 'vitest';
import { SMC_TYPE } from '../protocol/clc/constants.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { decodeClcMessage } from '../protocol/clc/message.js';
import { type ClcProposal, encodeClcProposal } from '../protocol/clc/proposal.js';
import {
  CLIENT_ID,
  CLIENT_RDMA,
  confirmBytes,
  declineBytes,
  declinedWith,
  fallbackOf,
  SERVER_RDMA,
  sent,
} from './fixtures.js';
import { ClcServer, type ClcServerOptions } from './server.js';

// Server flow per RFC 7609 "SMC-R rendezvous" and kernel net/smc/af_smc.c
// (smc_listen_work, smc_listen_prfx_check, smc_listen_rdma_finish); decline
// codes from net/smc/smc_clc.h.
const SERVER_ID = Buffer.from('5e5e5e5e5e5e5e5e', 'hex');

const V1_PROPOSAL: ClcProposal = {
  kind: 'proposal',
  version: 1,
  typeV1: SMC_TYPE.R,
  peerId: CLIENT_ID,
  gid: CLIENT_RDMA.gid,
  mac: CLIENT_RDMA.mac,
  growthArea: Buffer.alloc(0),
  ipArea: { ipv4Subnet: Buffer.from([10, 1, 2, 0]), ipv4PrefixLength: 24, ipv6Prefixes: [] },
};

/** What a current Linux client sends: v2 header offering SMC-R v1 (typev1 R) and SMC-Rv2 (typev2 R). */
const KERNEL_V2_PROPOSAL: ClcProposal = {
  kind: 'proposal',
  version: 2,
  typeV1: SMC_TYPE.R,
  typeV2: SMC_TYPE.R,
  peerId: CLIENT_ID,
  gid: CLIENT_RDMA.gid,
  mac: CLIENT_RDMA.mac,
  smcd: { ismGid: 0n, ismChid: 0 },
  ipArea: V1_PROPOSAL.ipArea,
  v2Extension: {
    release: 1,
    seid: false,
    userEids: [],
    roceV2Gid: Buffer.alloc(16),
    maxConns: 255,
    maxLinks: 2,
    featureMask: 0,
    smcdV2: null,
  },
};

function server(overrides: Partial<ClcServerOptions> = {}): ClcServer {
  return new ClcServer({
    peerId: SERVER_ID,
    rdma: SERVER_RDMA,
    peerIndicatedSmc: true,
    localAddresses: [{ family: 'ipv4', address: Uint8Array.of(10, 1, 2, 77), prefixLength: 24 }],
    firstContact: true,
    ...overrides,
  });
}

function started(overrides: Partial<ClcServerOptions> = {}): ClcServer {
  const s = server(overrides);
  s.handle({ type: 'start' });
  return s;
}

function propose(s: ClcServer, p: ClcProposal = V1_PROPOSAL): ReturnType<ClcServer['handle']> {
  return s.handle({ type: 'data', bytes: encodeClcProposal(p) });
}

describe('CLC server', () => {
  it('accepts a Proposal, takes the Confirm and proceeds to link setup', () => {
    const s = server();
    expect(s.handle({ type: 'start' })).toEqual([{ type: 'await', stage: 'proposal', timeoutMs: 6000 }]);
    const a1 = propose(s);
    expect(s.state).toBe('awaiting-confirm');
    const [accept] = sent(a1);
    expect(accept).toMatchObject({
      kind: 'accept',
      version: 1,
      firstContact: true,
      peerId: SERVER_ID,
      qpMtu: 3,
    });
    const sendAction = a1[0];
    if (sendAction?.type !== 'send') throw new Error('expected a send');
    expect(decodeClcMessage(sendAction.bytes)).toEqual(accept);
    expect(a1[1]).toEqual({ type: 'await', stage: 'confirm', timeoutMs: 6000 });

    const a2 = s.handle({ type: 'data', bytes: confirmBytes() });
    expect(sent(a2)).toEqual([]);
    expect(a2[0]).toMatchObject({
      type: 'proceed',
      link: {
        role: 'server',
        firstContact: true,
        qpMtu: 3,
        peer: { peerId: CLIENT_ID, qpn: CLIENT_RDMA.qpn },
      },
    });
    expect(a2[1]).toEqual({ type: 'await', stage: 'link', timeoutMs: 5000 });
    expect(s.handle({ type: 'link-up' })).toEqual([{ type: 'established' }]);
    expect(s.state).toBe('established');
  });

  it('answers a current Linux v2 Proposal with a v1 Accept', () => {
    const [accept] = sent(propose(started(), KERNEL_V2_PROPOSAL));
    expect(accept).toMatchObject({ kind: 'accept', version: 1 });
  });

  it('takes a Proposal that arrives before start', () => {
    const s = server();
    const actions = s.handle({ type: 'data', bytes: encodeClcProposal(V1_PROPOSAL) });
    expect(actions.map((a) => a.type)).toEqual(['await', 'send', 'await']);
    expect(s.state).toBe('awaiting-confirm');
  });

  it('falls back silently when the client did not indicate SMC', () => {
    const actions = server({ peerIndicatedSmc: false }).handle({ type: 'start' });
    expect(sent(actions)).toEqual([]);
    expect(fallbackOf(actions).reasonCode).toBe(SMC_CLC_DECL.PEERNOSMC);
  });

  it('declines for each local reason with its kernel code', () => {
    expect(declinedWith(propose(started({ rdma: null }))).code).toBe(SMC_CLC_DECL.NOSMCRDEV);
    expect(declinedWith(propose(started(), { ...V1_PROPOSAL, typeV1: SMC_TYPE.D })).code).toBe(
      SMC_CLC_DECL.MODEUNSUPP,
    );
    const v2Only: ClcProposal = { ...KERNEL_V2_PROPOSAL, typeV1: SMC_TYPE.N, ipArea: null };
    expect(declinedWith(propose(started(), v2Only)).code).toBe(SMC_CLC_DECL.VERSMISMAT);
    const otherSubnet = {
      ...V1_PROPOSAL,
      ipArea: { ...V1_PROPOSAL.ipArea, ipv4Subnet: Buffer.from([10, 9, 9, 0]) },
    };
    const diff = propose(started(), otherSubnet);
    expect(declinedWith(diff)).toEqual({ code: SMC_CLC_DECL.DIFFPREFIX, outOfSync: false, origin: 'local' });
    expect(fallbackOf(diff).description).toContain('no common IP subnet');
  });

  it('declines with the policy code for a refused tenant or VLAN/PKey mismatch', () => {
    const tenant = started({
      policy: () => ({ allow: false, reasonCode: SMC_CLC_DECL.CNFERR, reason: 'tenant not allowed' }),
    });
    const actions = propose(tenant);
    expect(declinedWith(actions).code).toBe(SMC_CLC_DECL.CNFERR);
    expect(fallbackOf(actions).description).toContain('tenant not allowed');
    const vlan = started({ policy: () => ({ allow: false, reasonCode: SMC_CLC_DECL.GETVLANERR }) });
    expect(declinedWith(propose(vlan)).code).toBe(SMC_CLC_DECL.GETVLANERR);
    const seen: Buffer[] = [];
    propose(
      started({
        policy: (peer) => {
          seen.push(peer.gid);
          return { allow: true };
        },
      }),
    );
    expect(seen).toEqual([CLIENT_RDMA.gid]);
  });

  it('matches IPv6 prefixes', () => {
    const v6 = {
      ...V1_PROPOSAL,
      ipArea: {
        ipv4Subnet: Buffer.alloc(4),
        ipv4PrefixLength: 0,
        ipv6Prefixes: [{ prefix: Buffer.from('fd000000000000010000000000000000', 'hex'), prefixLength: 64 }],
      },
    };
    const address = Buffer.from('fd000000000000010000000000000042', 'hex');
    const ok = started({ localAddresses: [{ family: 'ipv6', address, prefixLength: 64 }] });
    expect(sent(propose(ok, v6))[0]?.kind).toBe('accept');
    const other = started({ localAddresses: [{ family: 'ipv6', address, prefixLength: 56 }] });
    expect(declinedWith(propose(other, v6)).code).toBe(SMC_CLC_DECL.DIFFPREFIX);
  });

  it('declines malformed Proposals with SYNCERR', () => {
    const overrun = encodeClcProposal(V1_PROPOSAL);
    overrun[47] = 3; // three IPv6 prefixes that are not there
    expect(declinedWith(started().handle({ type: 'data', bytes: overrun })).code).toBe(SMC_CLC_DECL.SYNCERR);
    const unknownType = encodeClcProposal(V1_PROPOSAL);
    unknownType[4] = 7;
    expect(declinedWith(started().handle({ type: 'data', bytes: unknownType })).code).toBe(
      SMC_CLC_DECL.SYNCERR,
    );
  });

  it('declines messages out of order with SYNCERR', () => {
    expect(declinedWith(started().handle({ type: 'data', bytes: confirmBytes() })).code).toBe(
      SMC_CLC_DECL.SYNCERR,
    );
    const s = started();
    propose(s);
    expect(declinedWith(propose(s)).code).toBe(SMC_CLC_DECL.SYNCERR); // a second Proposal
    const linking = started();
    propose(linking);
    linking.handle({ type: 'data', bytes: confirmBytes() });
    expect(declinedWith(linking.handle({ type: 'data', bytes: confirmBytes() })).code).toBe(
      SMC_CLC_DECL.SYNCERR,
    );
  });

  it('declines a Confirm from another peer id or with an impossible MTU', () => {
    const s = started();
    propose(s);
    expect(
      declinedWith(s.handle({ type: 'data', bytes: confirmBytes({ peerId: Buffer.alloc(8, 9) }) })).code,
    ).toBe(SMC_CLC_DECL.SYNCERR);
    const m = started();
    propose(m);
    expect(declinedWith(m.handle({ type: 'data', bytes: confirmBytes({ qpMtu: 7 }) })).code).toBe(
      SMC_CLC_DECL.CNFERR,
    );
  });

  it('falls back on a client Decline at any stage', () => {
    const early = started();
    expect(
      fallbackOf(early.handle({ type: 'data', bytes: declineBytes(SMC_CLC_DECL.MEM, false, CLIENT_ID) })),
    ).toMatchObject({
      origin: 'peer',
      reasonCode: SMC_CLC_DECL.MEM,
    });
    const late = started();
    propose(late);
    const f = fallbackOf(
      late.handle({ type: 'data', bytes: declineBytes(SMC_CLC_DECL.SYNCERR, true, CLIENT_ID) }),
    );
    expect(f).toMatchObject({ reasonCode: SMC_CLC_DECL.SYNCERR, terminateLinkGroup: true });
  });

  it('times out at each stage', () => {
    expect(declinedWith(started().handle({ type: 'timeout' })).code).toBe(SMC_CLC_DECL.TIMEOUT);
    const atConfirm = started();
    propose(atConfirm);
    expect(declinedWith(atConfirm.handle({ type: 'timeout' })).code).toBe(SMC_CLC_DECL.TIMEOUT);
    const atLink = started();
    propose(atLink);
    atLink.handle({ type: 'data', bytes: confirmBytes() });
    expect(declinedWith(atLink.handle({ type: 'timeout' })).code).toBe(SMC_CLC_DECL.TIMEOUT_CL);
    const failed = started();
    propose(failed);
    failed.handle({ type: 'data', bytes: confirmBytes() });
    expect(
      declinedWith(failed.handle({ type: 'link-failed', reasonCode: SMC_CLC_DECL.ERR_RDYLNK })).code,
    ).toBe(SMC_CLC_DECL.ERR_RDYLNK);
  });

  it('uses configurable timeouts', () => {
    const s = server({ clcTimeoutMs: 100, linkTimeoutMs: 200 });
    expect(s.handle({ type: 'start' })).toEqual([{ type: 'await', stage: 'proposal', timeoutMs: 100 }]);
    propose(s);
    expect(s.handle({ type: 'data', bytes: confirmBytes() }).at(-1)).toEqual({
      type: 'await',
      stage: 'link',
      timeoutMs: 200,
    });
  });
});
