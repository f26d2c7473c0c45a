import { describe, expect, it } from 'vitest';
import { type ClcAcceptConfirmV2, encodeClcAcceptConfirmV2 } from '../protocol/clc/accept-confirm-v2.js';
import { SMC_TYPE } from '../protocol/clc/constants.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { decodeClcDecline } from '../protocol/clc/decline.js';
import { decodeClcMessage } from '../protocol/clc/message.js';
import { type ClcProposal, decodeClcProposal, encodeClcProposal } from '../protocol/clc/proposal.js';
import { hex } from '../protocol/testing/hex.js';
import { ClcClient, type ClcClientOptions, type ClcClientV2Options } from './client.js';
import {
  CLIENT_ID,
  CLIENT_RDMA,
  declinedWith,
  fallbackOf,
  SERVER_ID,
  SERVER_RDMA,
  sent,
} from './fixtures.js';
import type { ClcMachine } from './machine.js';
import { ipv4ProposalArea } from './prefix-match.js';
import { ClcServer, type ClcServerOptions, type ClcServerV2Options } from './server.js';
import type { HandshakeAction } from './types.js';

// SMC-Rv2 handshakes per net/smc/af_smc.c (__smc_connect, smc_connect_check_aclc,
// smc_connect_rdma_v2_prepare, smc_listen_work, smc_listen_v2_check,
// smc_find_rdma_v2_device_serv) and net/smc/smc_clc.c (smc_clc_send_proposal,
// smc_clc_send_confirm_accept, smc_clc_fill_fce, smc_clc_match_eid, the v2x
// feature checks); message layouts from net/smc/smc_clc.h.
const eid = (s: string): Buffer => Buffer.from(s.padEnd(32, ' '), 'latin1');
const TENANT_A = eid('SMCK8S-TENANT-A');
const TENANT_B = eid('SMCK8S-TENANT-B');
const CLIENT_GID_V2 = hex('00000000000000000000ffffc0a80101'); // 192.168.1.1
const SERVER_GID_V2 = hex('00000000000000000000ffffc0a80114'); // 192.168.1.20

function client(
  v2: Partial<ClcClientV2Options> | null,
  overrides: Partial<ClcClientOptions> = {},
): ClcClient {
  return new ClcClient({
    peerId: CLIENT_ID,
    rdma: CLIENT_RDMA,
    peerIndicatedSmc: true,
    ipArea: ipv4ProposalArea(Uint8Array.of(10, 1, 2, 3), 24),
    firstContact: true,
    ...(v2 === null
      ? {}
      : { smcrV2: { ueids: [TENANT_A], roceV2Gid: CLIENT_GID_V2, hostname: 'node-a', ...v2 } }),
    ...overrides,
  });
}

function server(
  v2: Partial<ClcServerV2Options> | null,
  overrides: Partial<ClcServerOptions> = {},
): ClcServer {
  return new ClcServer({
    peerId: SERVER_ID,
    rdma: SERVER_RDMA,
    peerIndicatedSmc: true,
    localAddresses: [{ family: 'ipv4', address: Uint8Array.of(10, 1, 2, 77), prefixLength: 24 }],
    firstContact: true,
    ...(v2 === null
      ? {}
      : { smcrV2: { ueids: [TENANT_A], roceV2Gid: SERVER_GID_V2, hostname: 'node-b', ...v2 } }),
    ...overrides,
  });
}

/** Delivers each side's sends to the other in `chunk`-byte pieces until nothing moves. */
function pump(
  c: ClcMachine,
  s: ClcMachine,
  chunk = 1000,
): { client: HandshakeAction[]; server: HandshakeAction[] } {
  const log = { client: [] as HandshakeAction[], server: [] as HandshakeAction[] };
  log.server.push(...s.handle({ type: 'start' }));
  let fromClient = c.handle({ type: 'start' });
  log.client.push(...fromClient);
  for (let round = 0; round < 10; round++) {
    const fromServer: HandshakeAction[] = [];
    for (const a of fromClient) {
      if (a.type !== 'send') continue;
      for (let i = 0; i < a.bytes.length; i += chunk) {
        fromServer.push(...s.handle({ type: 'data', bytes: a.bytes.subarray(i, i + chunk) }));
      }
    }
    log.server.push(...fromServer);
    const next: HandshakeAction[] = [];
    for (const a of fromServer) {
      if (a.type !== 'send') continue;
      for (let i = 0; i < a.bytes.length; i += chunk) {
        next.push(...c.handle({ type: 'data', bytes: a.bytes.subarray(i, i + chunk) }));
      }
    }
    log.client.push(...next);
    fromClient = next;
    if (fromServer.length === 0 && next.length === 0) break;
  }
  return log;
}

function proceeded(actions: HandshakeAction[]) {
  const p = actions.find((a) => a.type === 'proceed');
  if (p?.type !== 'proceed') throw new Error(`no proceed in ${actions.map((a) => a.type).join(',')}`);
  return p.link;
}

function sentBytes(actions: HandshakeAction[]): Buffer[] {
  return actions.flatMap((a) => (a.type === 'send' ? [a.bytes] : []));
}

describe('SMC-Rv2 handshake, byte-exact against the kernel layouts', () => {
  // A Linux client with two UEIDs configured, proposing SMC-Rv2 only (smc_clc_send_proposal, typev1 N).
  const LINUX_PROPOSAL = hex(
    'e2d4c3d9 01 00bc 22',
    '00'.repeat(30),
    '0000',
    '0000000000000000 0000 001c 000000 0000000000',
    '00'.repeat(20),
    '02 00 00 10 0000 0000',
    '00000000000000000000ffffc0a80101',
    'ff 02 0000',
    '00'.repeat(12),
    TENANT_B.toString('hex'),
    TENANT_A.toString('hex'),
    'e2d4c3d9',
  );

  // What the server answers: the v2.1 first-contact Accept a Linux server would send.
  const EXPECTED_ACCEPT = hex(
    'e2d4c3d9 02 00a0 28',
    '5e5e5e5e5e5e5e5e',
    '00000000000000000000ffffc0a80114', // our RoCEv2 GID
    '020000000002 000202 00002222 01 50000002 13 00 00007f0000200000 00 040506',
    TENANT_A.toString('hex'), // the EID both share
    '0000000000000000',
    '80 21 0000', // v2_direct, Linux, release 1
    Buffer.from('node-b'.padEnd(32, ' ')).toString('hex'),
    'ff 02 0000 00000000 0000000000000000',
    'e2d4c3d9',
  );

  it('the server answers a Linux SMC-Rv2 Proposal with the Accept a Linux server sends', () => {
    const s = server({});
    s.handle({ type: 'start' });
    const actions = s.handle({ type: 'data', bytes: LINUX_PROPOSAL });
    expect(sentBytes(actions)).toEqual([EXPECTED_ACCEPT]);
    expect(s.state).toBe('awaiting-confirm');
  });

  it('the client proposes v2 only as Linux does and confirms the Accept byte for byte', () => {
    const c = client({ offerV1: false });
    const [proposal] = sentBytes(c.handle({ type: 'start' }));
    expect(proposal).toEqual(
      hex(
        'e2d4c3d9 01 009c 22', // 40 + 40 + 40 + 32 + 4 = 156 bytes
        '00'.repeat(30), // no local area without typev1
        '0000',
        '0000000000000000 0000 001c 000000 0000000000',
        '00'.repeat(20),
        '01 00 00 10 0000 0000',
        '00000000000000000000ffffc0a80101',
        'ff 02 0000',
        '00'.repeat(12),
        TENANT_A.toString('hex'),
        'e2d4c3d9',
      ),
    );
    const actions = c.handle({ type: 'data', bytes: EXPECTED_ACCEPT });
    expect(sentBytes(actions)).toEqual([
      hex(
        'e2d4c3d9 03 00b4 28', // 108 + 52 + 4 + 16 = 180 bytes
        'c1c1c1c1c1c1c1c1',
        '00000000000000000000ffffc0a80101',
        '020000000001 000101 00001111 01 c0000001 23 00 00007f0000100000 00 010203', // QP MTU min(5, 3)
        TENANT_A.toString('hex'),
        '0000000000000000',
        '80 21 0000',
        Buffer.from('node-a'.padEnd(32, ' ')).toString('hex'),
        'ff 02 0000 00000000 0000000000000000',
        '01 000000 00000000000000000000ffffc0a80101', // smc_clc_fce_gid_ext with our one GID
        'e2d4c3d9',
      ),
    ]);
    const link = proceeded(actions);
    expect(link).toMatchObject({
      role: 'client',
      smcVersion: 2,
      firstContact: true,
      qpMtu: 3,
      local: { gid: CLIENT_GID_V2 },
      peer: { qpn: SERVER_RDMA.qpn, gid: SERVER_GID_V2 },
      v2: { eid: TENANT_A, limits: { release: 1, maxConns: 255, maxLinks: 2 } },
    });
    expect(link.v2?.peerFirstContact?.hostname.toString('latin1').trim()).toBe('node-b');
  });
});

describe('SMC-Rv2 handshake between the machines', () => {
  for (const chunk of [1, 7, 1000]) {
    it(`agrees on SMC-Rv2, the tenant EID and the v2.1 limits (${chunk}-byte pieces)`, () => {
      const c = client({ maxConns: 64, maxLinks: 1 });
      const s = server({});
      const log = pump(c, s, chunk);
      const cl = proceeded(log.client);
      const sl = proceeded(log.server);
      expect(cl.smcVersion).toBe(2);
      expect(sl.smcVersion).toBe(2);
      expect(cl.v2?.eid).toEqual(TENANT_A);
      expect(sl.v2?.eid).toEqual(TENANT_A);
      expect(cl.v2?.limits).toEqual({ release: 1, maxConns: 64, maxLinks: 1 });
      expect(sl.v2?.limits).toEqual({ release: 1, maxConns: 64, maxLinks: 1 });
      expect(sl.v2?.peerGidList).toEqual([CLIENT_GID_V2]);
      expect(sl.peer.gid).toEqual(CLIENT_GID_V2);
      expect(cl.peer.gid).toEqual(SERVER_GID_V2);
      expect(cl.qpMtu).toBe(sl.qpMtu);
      expect(c.handle({ type: 'link-up' })).toEqual([{ type: 'established' }]);
      expect(s.handle({ type: 'link-up' })).toEqual([{ type: 'established' }]);
    });
  }

  it('a client offering v1 and v2 gets v2 from a v2 server and v1 from a v1-only server', () => {
    const both = client({});
    const [p] = sent(both.handle({ type: 'start' }));
    expect(p).toMatchObject({
      kind: 'proposal',
      version: 2,
      typeV1: SMC_TYPE.R,
      typeV2: SMC_TYPE.R,
      peerId: CLIENT_ID,
    });
    expect(proceeded(pump(client({}), server({})).client).smcVersion).toBe(2);
    const log = pump(client({}), server(null));
    const [accept] = sent(log.server);
    expect(accept).toMatchObject({ kind: 'accept', version: 1 });
    expect(proceeded(log.client).smcVersion).toBeUndefined();
    expect(proceeded(log.server).smcVersion).toBeUndefined();
  });

  it('reuses a link group: no first-contact extension, no limits', () => {
    const log = pump(client({}, { firstContact: false }), server({}, { firstContact: false }));
    const [accept] = sent(log.server);
    expect(accept).toMatchObject({ version: 2, firstContact: false, firstContactExt: null });
    const [, confirm] = sent(log.client);
    expect(confirm).toMatchObject({ version: 2, firstContact: false, firstContactExt: null, gidList: null });
    expect(proceeded(log.server).v2).toMatchObject({ eid: TENANT_A, limits: null, peerGidList: null });
  });

  it('negotiates release 0 with a pre-v2.1 client: default limits, zero v2.1 fields', () => {
    const log = pump(client({ release: 0 }), server({}));
    const [accept] = sent(log.server);
    expect(accept).toMatchObject({
      firstContactExt: { release: 0, v2x: { maxConns: 0, maxLinks: 0, featureMask: 0, vendorOptions: 0 } },
    });
    expect(proceeded(log.client).v2?.limits).toEqual({ release: 0, maxConns: 255, maxLinks: 2 });
    expect(proceeded(log.server).v2?.limits).toEqual({ release: 0, maxConns: 255, maxLinks: 2 });
  });

  it('falls back to the v1 Proposal when no user EID is configured', () => {
    const [p] = sent(client({ ueids: [] }).handle({ type: 'start' }));
    expect(p).toMatchObject({ kind: 'proposal', version: 1 });
    const v2Only = client({ ueids: [], offerV1: false }).handle({ type: 'start' });
    expect(sent(v2Only)).toEqual([]);
    expect(fallbackOf(v2Only).reasonCode).toBe(SMC_CLC_DECL.NOSMCDEV);
  });
});

describe('tenants: a client of another tenant never gets SMC', () => {
  it('declines with the kernel code for no common EID, SMC_CLC_DECL_NOSMCDEV (0x03030000), in a v2 Decline; the client falls back with it', () => {
    const log = pump(client({ ueids: [TENANT_B] }), server({}));
    const serverFallback = fallbackOf(log.server);
    expect(serverFallback).toMatchObject({ origin: 'local', reasonCode: 0x03030000, cause: 'no-common-eid' });
    expect(serverFallback.description).toContain('another tenant');
    const [declineBytes] = sentBytes(log.server);
    if (declineBytes === undefined) throw new Error('no Decline');
    expect(declineBytes).toHaveLength(44); // smc_clc_msg_decline_v2: the Proposal was v2
    expect(decodeClcDecline(declineBytes)).toMatchObject({
      version: 2,
      osType: 2,
      peerDiagnosis: SMC_CLC_DECL.NOSMCDEV,
    });
    expect(fallbackOf(log.client)).toMatchObject({ origin: 'peer', reasonCode: SMC_CLC_DECL.NOSMCDEV });
  });

  it('also when the client offers v1, unless tenant isolation is turned off (then v1, like the kernel)', () => {
    expect(declinedWith(pump(client({ ueids: [TENANT_B] }), server({})).server).code).toBe(
      SMC_CLC_DECL.NOSMCDEV,
    );
    const log = pump(client({ ueids: [TENANT_B] }), server({ requireEidMatch: false }));
    expect(proceeded(log.server).smcVersion).toBeUndefined();
    expect(sent(log.server)[0]).toMatchObject({ kind: 'accept', version: 1 });
  });

  it('a v1-only client has no UEID: NOUEID with isolation, v1 without', () => {
    expect(declinedWith(pump(client(null), server({})).server).code).toBe(SMC_CLC_DECL.NOUEID);
    const [d] = sentBytes(pump(client(null), server({})).server);
    expect(d).toHaveLength(28); // a v1 Proposal gets a v1 Decline
    expect(
      proceeded(pump(client(null), server({ requireEidMatch: false })).server).smcVersion,
    ).toBeUndefined();
  });

  it('a v2-only client of another tenant gets NOSMCDEV even without isolation', () => {
    const log = pump(client({ ueids: [TENANT_B], offerV1: false }), server({ requireEidMatch: false }));
    expect(declinedWith(log.server).code).toBe(SMC_CLC_DECL.NOSMCDEV);
  });

  it('any shared EID will do: the first of the client list we also have', () => {
    const log = pump(client({ ueids: [TENANT_B, TENANT_A] }), server({ ueids: [TENANT_A, TENANT_B] }));
    expect(proceeded(log.server).v2?.eid).toEqual(TENANT_B);
  });

  it('the policy callback sees the shared EID', () => {
    const seen: (Buffer | undefined)[] = [];
    const log = pump(
      client({}),
      server(
        {},
        {
          policy: (peer) => {
            seen.push(peer.eid);
            return { allow: false, reasonCode: SMC_CLC_DECL.CNFERR };
          },
        },
      ),
    );
    expect(seen).toEqual([TENANT_A]);
    expect(declinedWith(log.server).code).toBe(SMC_CLC_DECL.CNFERR);
  });
});

describe('SMC-Rv2 server checks', () => {
  function v2Proposal(
    overrides: Partial<NonNullable<Extract<ClcProposal, { version: 2 }>['v2Extension']>> = {},
  ) {
    const [p] = sent(client({}).handle({ type: 'start' }));
    if (p?.kind !== 'proposal' || p.version !== 2 || p.v2Extension === null) throw new Error('fixture');
    return encodeClcProposal({ ...p, v2Extension: { ...p.v2Extension, ...overrides } });
  }

  function proposeTo(s: ClcServer, bytes: Buffer): HandshakeAction[] {
    s.handle({ type: 'start' });
    return s.handle({ type: 'data', bytes });
  }

  it('declines v2.1 limits below the minimum with MAXCONNERR / MAXLINKERR, even when v1 is offered', () => {
    expect(declinedWith(proposeTo(server({}), v2Proposal({ maxConns: 15 }))).code).toBe(
      SMC_CLC_DECL.MAXCONNERR,
    );
    expect(declinedWith(proposeTo(server({}), v2Proposal({ maxLinks: 0 }))).code).toBe(
      SMC_CLC_DECL.MAXLINKERR,
    );
  });

  it('a v2 offer without user EIDs is NOUEID (smc_listen_v2_check)', () => {
    expect(declinedWith(proposeTo(server({}), v2Proposal({ userEids: [] }))).code).toBe(SMC_CLC_DECL.NOUEID);
  });

  it('SMC-Rv2 does not need a common IP subnet (routable RoCEv2), v1 does', () => {
    const far = server(
      {},
      { localAddresses: [{ family: 'ipv4', address: Uint8Array.of(10, 9, 9, 9), prefixLength: 24 }] },
    );
    expect(sent(proposeTo(far, v2Proposal()))[0]).toMatchObject({ kind: 'accept', version: 2 });
    const farV1 = server(
      { requireEidMatch: false },
      { localAddresses: [{ family: 'ipv4', address: Uint8Array.of(10, 9, 9, 9), prefixLength: 24 }] },
    );
    expect(declinedWith(proposeTo(farV1, v2Proposal({ userEids: [TENANT_B] }))).code).toBe(
      SMC_CLC_DECL.DIFFPREFIX,
    );
  });

  function acceptedServer(): { s: ClcServer; accept: ClcAcceptConfirmV2 } {
    const s = server({});
    const [accept] = sent(proposeTo(s, v2Proposal()));
    if (accept?.kind !== 'accept' || accept.version !== 2) throw new Error('fixture');
    return { s, accept };
  }

  function confirmFor(
    accept: ClcAcceptConfirmV2,
    change: (c: ClcAcceptConfirmV2) => ClcAcceptConfirmV2,
  ): Buffer {
    const c = client({});
    c.handle({ type: 'start' });
    const [confirm] = sent(c.handle({ type: 'data', bytes: encodeClcAcceptConfirmV2(accept) }));
    if (confirm?.kind !== 'confirm' || confirm.version !== 2) throw new Error('fixture');
    return encodeClcAcceptConfirmV2(change(confirm));
  }

  it('checks that the Confirm echoes release, limits and EID', () => {
    const cases: [(c: ClcAcceptConfirmV2) => ClcAcceptConfirmV2, number][] = [
      [
        (c) => ({ ...c, firstContactExt: c.firstContactExt && { ...c.firstContactExt, release: 0 } }),
        SMC_CLC_DECL.RELEASEERR,
      ],
      [
        (c) => ({
          ...c,
          firstContactExt: c.firstContactExt && {
            ...c.firstContactExt,
            v2x: { maxConns: 200, maxLinks: 2, featureMask: 0, vendorOptions: 0 },
          },
        }),
        SMC_CLC_DECL.MAXCONNERR,
      ],
      [
        (c) => ({
          ...c,
          firstContactExt: c.firstContactExt && {
            ...c.firstContactExt,
            v2x: { maxConns: 255, maxLinks: 1, featureMask: 0, vendorOptions: 0 },
          },
        }),
        SMC_CLC_DECL.MAXLINKERR,
      ],
      [(c) => ({ ...c, eid: TENANT_B }), SMC_CLC_DECL.SYNCERR],
    ];
    for (const [change, code] of cases) {
      const { s, accept } = acceptedServer();
      expect(declinedWith(s.handle({ type: 'data', bytes: confirmFor(accept, change) })).code).toBe(code);
    }
    const { s, accept } = acceptedServer();
    const ok = s.handle({ type: 'data', bytes: confirmFor(accept, (c) => c) });
    expect(proceeded(ok).smcVersion).toBe(2);
  });

  it('declines a v1 Confirm after a v2 Accept with VERSMISMAT', () => {
    const { s } = acceptedServer();
    const v1 = client(null);
    v1.handle({ type: 'start' });
    const [confirmV1] = sentBytes(v1.handle({ type: 'data', bytes: serverV1AcceptBytes() }));
    if (confirmV1 === undefined) throw new Error('fixture');
    expect(declinedWith(s.handle({ type: 'data', bytes: confirmV1 })).code).toBe(SMC_CLC_DECL.VERSMISMAT);
  });
});

function serverV1AcceptBytes(): Buffer {
  const s = server(null);
  s.handle({ type: 'start' });
  const [p] = sentBytes(client(null).handle({ type: 'start' }));
  if (p === undefined) throw new Error('fixture');
  const [accept] = sentBytes(s.handle({ type: 'data', bytes: p }));
  if (accept === undefined) throw new Error('fixture');
  return accept;
}

describe('SMC-Rv2 client checks', () => {
  function acceptBytesV2(change: (a: ClcAcceptConfirmV2) => ClcAcceptConfirmV2): Buffer {
    const s = server({});
    s.handle({ type: 'start' });
    const [p] = sentBytes(client({}).handle({ type: 'start' }));
    if (p === undefined) throw new Error('fixture');
    const [accept] = sent(s.handle({ type: 'data', bytes: p }));
    if (accept?.kind !== 'accept' || accept.version !== 2) throw new Error('fixture');
    return encodeClcAcceptConfirmV2(change(accept));
  }

  function answer(c: ClcClient, bytes: Buffer): HandshakeAction[] {
    c.handle({ type: 'start' });
    return c.handle({ type: 'data', bytes });
  }

  const withV2x =
    (maxConns: number, maxLinks: number, release = 1) =>
    (a: ClcAcceptConfirmV2) => ({
      ...a,
      firstContactExt: a.firstContactExt && {
        ...a.firstContactExt,
        release,
        v2x: { maxConns, maxLinks, featureMask: 0, vendorOptions: 0 },
      },
    });

  it('declines Accept limits outside the v2.1 bounds and a release it did not offer', () => {
    expect(declinedWith(answer(client({}), acceptBytesV2(withV2x(15, 2)))).code).toBe(
      SMC_CLC_DECL.MAXCONNERR,
    );
    expect(declinedWith(answer(client({}), acceptBytesV2(withV2x(255, 3)))).code).toBe(
      SMC_CLC_DECL.MAXLINKERR,
    );
    expect(declinedWith(answer(client({}), acceptBytesV2(withV2x(255, 2, 2)))).code).toBe(
      SMC_CLC_DECL.RELEASEERR,
    );
    expect(declinedWith(answer(client({ release: 0 }), acceptBytesV2(withV2x(255, 2, 1)))).code).toBe(
      SMC_CLC_DECL.RELEASEERR,
    );
  });

  it('declines an EID it did not propose with NOUEID, in a v2 Decline', () => {
    const actions = answer(
      client({}),
      acceptBytesV2((a) => ({ ...a, eid: TENANT_B })),
    );
    expect(declinedWith(actions).code).toBe(SMC_CLC_DECL.NOUEID);
    const [d] = sentBytes(actions);
    expect(d).toHaveLength(44);
  });

  it('declines a v1 Accept to a v2-only Proposal with MODEUNSUPP (smc_connect_check_aclc)', () => {
    expect(declinedWith(answer(client({ offerV1: false }), serverV1AcceptBytes())).code).toBe(
      SMC_CLC_DECL.MODEUNSUPP,
    );
  });

  it('a v1-only client still answers a v2 Accept with VERSMISMAT', () => {
    expect(
      declinedWith(
        answer(
          client(null),
          acceptBytesV2((a) => a),
        ),
      ).code,
    ).toBe(SMC_CLC_DECL.VERSMISMAT);
  });

  it('sends v1 Declines before an Accept arrived', () => {
    const c = client({});
    c.handle({ type: 'start' });
    const [d] = sentBytes(c.handle({ type: 'timeout' }));
    expect(d).toHaveLength(28);
    expect(decodeClcMessage(d ?? Buffer.alloc(0))).toMatchObject({ kind: 'decline', version: 1 });
  });

  it('rejects bad SMC-Rv2 settings up front', () => {
    expect(() => client({ ueids: Array.from({ length: 9 }, () => TENANT_A) })).toThrow(RangeError);
    expect(() => client({ roceV2Gid: Buffer.alloc(4) })).toThrow(RangeError);
    expect(() => server({ maxConns: 8 })).toThrow(RangeError);
    expect(
      decodeClcProposal(sentBytes(client({}).handle({ type: 'start' }))[0] ?? Buffer.alloc(0)),
    ).toMatchObject({
      version: 2,
    });
  });
});
