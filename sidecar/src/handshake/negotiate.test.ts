import { describe, expect, it } from 'vitest';
import type { ClcFirstContactExt } from '../protocol/clc/accept-confirm-v2.js';
import { SMC_TYPE } from '../protocol/clc/constants.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import type { ClcProposal, ClcV2Extension } from '../protocol/clc/proposal.js';
import {
  checkUeidTable,
  clientV2xLimits,
  confirmV2xCheck,
  DEFAULT_V2X_LIMITS,
  firstContactHostname,
  listenV2Check,
  matchEid,
  serverV2xLimits,
  smcrVersionsOffered,
  v2xPreferences,
} from './negotiate.js';

// Mirrors of net/smc/smc_clc.c smc_clc_match_eid, smc_clc_srv_v2x_features_validate,
// smc_clc_clnt_v2x_features_validate, smc_clc_v2x_features_confirm_check and
// net/smc/af_smc.c smc_listen_v2_check; limits from net/smc/smc_core.h
// (SMC_CONN_PER_LGR_MIN 16, _MAX/_PREFER 255, SMC_LINKS_ADD_LNK_MIN 1, _MAX 2).
const eid = (s: string): Buffer => Buffer.from(s.padEnd(32, ' '), 'latin1');
const A = eid('SMCK8S-A');
const B = eid('SMCK8S-B');
const C = eid('SMCK8S-C');

function ext(overrides: Partial<ClcV2Extension> = {}): ClcV2Extension {
  return {
    release: 1,
    seid: false,
    userEids: [A],
    roceV2Gid: Buffer.alloc(16),
    maxConns: 255,
    maxLinks: 2,
    featureMask: 0,
    smcdV2: null,
    ...overrides,
  };
}

function proposal(v2: ClcV2Extension | null, typeV1: 0 | 2 = SMC_TYPE.R): ClcProposal {
  return {
    kind: 'proposal',
    version: 2,
    typeV1,
    typeV2: v2 === null ? SMC_TYPE.N : SMC_TYPE.R,
    peerId: Buffer.alloc(8),
    gid: Buffer.alloc(16),
    mac: Buffer.alloc(6),
    smcd: { ismGid: 0n, ismChid: 0 },
    ipArea:
      typeV1 === SMC_TYPE.N ? null : { ipv4Subnet: Buffer.alloc(4), ipv4PrefixLength: 24, ipv6Prefixes: [] },
    v2Extension: v2,
  };
}

function fce(release: number, v2x: ClcFirstContactExt['v2x']): ClcFirstContactExt {
  return { v2Direct: true, osType: 2, release, hostname: Buffer.alloc(32, 0x20), v2x };
}

describe('EID matching (smc_clc_match_eid)', () => {
  it("takes the first of the peer's user EIDs that is in our table, in the peer's order", () => {
    expect(matchEid(ext({ userEids: [B, A] }), { localUeids: [A, B] })).toEqual(B);
    expect(matchEid(ext({ userEids: [C, A] }), { localUeids: [A, B] })).toEqual(A);
    expect(matchEid(ext({ userEids: [C] }), { localUeids: [A, B] })).toBeNull();
    expect(matchEid(ext({ userEids: [] }), { localUeids: [A] })).toBeNull();
  });

  it('compares all 32 bytes: padding matters', () => {
    const unpadded = Buffer.alloc(32);
    unpadded.write('SMCK8S-A');
    expect(matchEid(ext({ userEids: [unpadded] }), { localUeids: [A] })).toBeNull();
  });

  it('uses the system EID only when enabled, flagged by the peer and equal on both sides', () => {
    const s = eid('IBM-SYSZ-ISMSEID00000000001234');
    const base = { localUeids: [] as Buffer[], peerSystemEid: s, localSystemEid: s };
    expect(matchEid(ext({ seid: true, userEids: [] }), { ...base, seidEnabled: true })).toEqual(s);
    expect(matchEid(ext({ seid: false, userEids: [] }), { ...base, seidEnabled: true })).toBeNull();
    expect(matchEid(ext({ seid: true, userEids: [] }), { ...base, seidEnabled: false })).toBeNull();
    expect(
      matchEid(ext({ seid: true, userEids: [] }), { ...base, seidEnabled: true, localSystemEid: C }),
    ).toBeNull();
  });
});

describe('version checks (smc_listen_v2_check, SMC-R part)', () => {
  it('keeps SMC-Rv2 for a v2 offer with user EIDs, drops it with the kernel code otherwise', () => {
    expect(listenV2Check(proposal(ext()), true)).toMatchObject({ v1: true, v2: true, code: null });
    expect(listenV2Check(proposal(ext({ userEids: [] })), true)).toMatchObject({
      v1: true,
      v2: false,
      code: SMC_CLC_DECL.NOUEID,
    });
    const noExt = { ...proposal(ext()), v2Extension: null };
    expect(listenV2Check(noExt, true)).toMatchObject({ v2: false, code: SMC_CLC_DECL.NOV2EXT });
    expect(listenV2Check(proposal(ext()), false)).toMatchObject({ v1: true, v2: false, code: null });
    expect(smcrVersionsOffered(proposal(ext(), SMC_TYPE.N))).toEqual({ v1: false, v2: true });
    expect(smcrVersionsOffered(proposal(null))).toEqual({ v1: true, v2: false });
  });
});

describe('SMC v2.1 limits', () => {
  const local = v2xPreferences();

  it('defaults to SMC_RELEASE 1, SMC_CONN_PER_LGR_PREFER 255 and SMC_LINKS_PER_LGR_MAX_PREFER 2', () => {
    expect(local).toEqual({ release: 1, maxConns: 255, maxLinks: 2 });
    expect(() => v2xPreferences({ maxConns: 15 })).toThrow(RangeError);
    expect(() => v2xPreferences({ maxLinks: 3 })).toThrow(RangeError);
    expect(() => v2xPreferences({ release: 16 })).toThrow(RangeError);
  });

  it('server: the lower of both preferences, MAXCONNERR below 16, MAXLINKERR below 1', () => {
    expect(serverV2xLimits(ext({ maxConns: 32, maxLinks: 1 }), local)).toEqual({
      ok: true,
      value: { release: 1, maxConns: 32, maxLinks: 1 },
    });
    expect(serverV2xLimits(ext(), { release: 1, maxConns: 64, maxLinks: 1 })).toEqual({
      ok: true,
      value: { release: 1, maxConns: 64, maxLinks: 1 },
    });
    expect(serverV2xLimits(ext({ maxConns: 15 }), local)).toMatchObject({
      ok: false,
      code: SMC_CLC_DECL.MAXCONNERR,
    });
    expect(serverV2xLimits(ext({ maxLinks: 0 }), local)).toMatchObject({
      ok: false,
      code: SMC_CLC_DECL.MAXLINKERR,
    });
  });

  it('server: release 0 on either side means no v2.1 negotiation, with the v1/v2.0 defaults', () => {
    expect(serverV2xLimits(ext({ release: 0, maxConns: 0, maxLinks: 0 }), local)).toEqual({
      ok: true,
      value: { release: 0, ...DEFAULT_V2X_LIMITS },
    });
    expect(serverV2xLimits(ext({ maxConns: 0 }), { ...local, release: 0 })).toEqual({
      ok: true,
      value: { release: 0, maxConns: 255, maxLinks: 2 },
    });
    // a newer client release is answered with ours
    expect(serverV2xLimits(ext({ release: 3 }), local)).toMatchObject({ ok: true, value: { release: 1 } });
  });

  it("client: the Accept's values are final, within 16..255 connections and 1..2 links", () => {
    const v2x = (maxConns: number, maxLinks: number) => ({
      maxConns,
      maxLinks,
      featureMask: 0,
      vendorOptions: 0,
    });
    expect(clientV2xLimits(fce(1, v2x(16, 1)), 1)).toEqual({
      ok: true,
      value: { release: 1, maxConns: 16, maxLinks: 1 },
    });
    expect(clientV2xLimits(fce(1, v2x(15, 2)), 1)).toMatchObject({
      ok: false,
      code: SMC_CLC_DECL.MAXCONNERR,
    });
    expect(clientV2xLimits(fce(1, v2x(255, 3)), 1)).toMatchObject({
      ok: false,
      code: SMC_CLC_DECL.MAXLINKERR,
    });
    expect(clientV2xLimits(fce(1, v2x(255, 0)), 1)).toMatchObject({
      ok: false,
      code: SMC_CLC_DECL.MAXLINKERR,
    });
    expect(clientV2xLimits(fce(2, v2x(255, 2)), 1)).toMatchObject({
      ok: false,
      code: SMC_CLC_DECL.RELEASEERR,
    });
    expect(clientV2xLimits(fce(0, null), 1)).toEqual({
      ok: true,
      value: { release: 0, maxConns: 255, maxLinks: 2 },
    });
    expect(clientV2xLimits(fce(0, v2x(0, 0)), 1)).toEqual({
      ok: true,
      value: { release: 0, maxConns: 255, maxLinks: 2 },
    });
  });

  it('confirm: the client must echo release and limits', () => {
    const accepted = { release: 1, maxConns: 64, maxLinks: 2 };
    const v2x = (maxConns: number, maxLinks: number) => ({
      maxConns,
      maxLinks,
      featureMask: 0,
      vendorOptions: 0,
    });
    expect(confirmV2xCheck(fce(1, v2x(64, 2)), accepted)).toBeNull();
    expect(confirmV2xCheck(fce(0, v2x(64, 2)), accepted)).toBe(SMC_CLC_DECL.RELEASEERR);
    expect(confirmV2xCheck(fce(1, v2x(65, 2)), accepted)).toBe(SMC_CLC_DECL.MAXCONNERR);
    expect(confirmV2xCheck(fce(1, v2x(64, 1)), accepted)).toBe(SMC_CLC_DECL.MAXLINKERR);
    expect(confirmV2xCheck(fce(0, v2x(0, 0)), { release: 0, maxConns: 255, maxLinks: 2 })).toBeNull();
  });
});

describe('first-contact helpers', () => {
  it('blank-pads and cuts the host name to 32 ASCII bytes', () => {
    expect(firstContactHostname('node-a').toString('latin1')).toBe('node-a'.padEnd(32, ' '));
    expect(firstContactHostname(undefined)).toEqual(Buffer.alloc(32, 0x20));
    expect(firstContactHostname('x'.repeat(40))).toEqual(Buffer.alloc(32, 0x78));
    expect(firstContactHostname('nödé').toString('latin1')).toBe('n?d?'.padEnd(32, ' '));
    expect(() => firstContactHostname(Buffer.alloc(31))).toThrow(RangeError);
  });

  it('accepts at most SMC_CLC_MAX_UEID user EIDs of 32 bytes', () => {
    expect(() => checkUeidTable(Array.from({ length: 8 }, () => A))).not.toThrow();
    expect(() => checkUeidTable(Array.from({ length: 9 }, () => A))).toThrow(/8/);
    expect(() => checkUeidTable([Buffer.alloc(31)])).toThrow(/32/);
  });
});
