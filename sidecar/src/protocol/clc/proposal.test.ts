import { describe, expect, it } from 'vitest';
import { expectDecodeError } from '../testing/expect-decode-error.js';
import { hex } from '../testing/hex.js';
import { SMC_TYPE } from './constants.js';
import { type ClcProposal, type ClcProposalV1, decodeClcProposal, encodeClcProposal } from './proposal.js';

// Layout: RFC 7609 Appendix A "SMC Proposal CLC Message Format"; net/smc/smc_clc.h
// struct smc_clc_msg_proposal, smc_clc_msg_proposal_prefix, smc_clc_ipv6_prefix,
// smc_clc_msg_smcd, smc_clc_v2_extension, smc_clc_smcd_v2_extension; length rule
// from smc_clc_msg_prop_valid() in net/smc/smc_clc.c.
const LOCAL = [
  '0102030405060708', // peer id
  'fe800000000000000211223344556677', // GID
  'aabbccddeeff', // MAC
];

// v1, IPv4 only, as Linux sent it before SMCv2: 40 + 8 + 4 = 52 bytes.
const PROPOSAL_V1 = hex(
  'e2d4c3d9 01 0034 10',
  ...LOCAL,
  '0000', // iparea_offset: prefix area follows immediately
  '0a000000 18 0000 00', // 10.0.0.0/24, reserved, no IPv6 prefixes
  'e2d4c3d9',
);

const V1_MODEL: ClcProposalV1 = {
  kind: 'proposal',
  version: 1,
  typeV1: SMC_TYPE.R,
  peerId: hex(LOCAL[0] ?? ''),
  gid: hex(LOCAL[1] ?? ''),
  mac: hex(LOCAL[2] ?? ''),
  growthArea: Buffer.alloc(0),
  ipArea: { ipv4Subnet: hex('0a000000'), ipv4PrefixLength: 24, ipv6Prefixes: [] },
};

// v1 with two IPv6 prefixes and a 4-byte RFC 7609 "area for future growth": 40 + 4 + 8 + 34 + 4 = 90.
const PROPOSAL_V1_IPV6 = hex(
  'e2d4c3d9 01 005a 10',
  ...LOCAL,
  '0004',
  'deadbeef', // future-growth area
  '00000000 00 0000 02',
  'fd000000000000010000000000000000 40', // fd00:0:0:1::/64
  '20010db8000000000000000000000000 30', // 2001:db8::/48
  'e2d4c3d9',
);

// v2 as Linux sends it when offering SMC-R v1 and SMC-Rv2 (smc_clc_send_proposal):
// 40 base + 40 smcd area + 8 prefix + 40 v2 extension + 4 trailer = 132 bytes.
const PROPOSAL_V2 = hex(
  'e2d4c3d9 01 0084 20', // version 2, typev2 R, typev1 R
  ...LOCAL,
  '0028', // iparea_offset = sizeof(struct smc_clc_msg_smcd)
  '0000000000000000 0000', // ISM GID, CHID (unused for SMC-R)
  '0024', // v2_ext_offset = 40 - 12 + 8
  '000000 0000000000', // vendor OUI, vendor options
  '0000000000000000000000000000000000000000', // reserved (20)
  'c0a80000 10 0000 00', // 192.168.0.0/16
  '00 00 00 10 0000 0000', // eid_cnt 0, ism_gid_cnt 0, reserved, release 1 / seid 0, reserved, smcd_v2_ext_offset 0
  '00000000000000000000ffffc0a80001', // RoCEv2 GID (IPv4-mapped 192.168.0.1)
  'ff 02 0000', // max_conns 255, max_links 2, feature mask
  '000000000000000000000000', // reserved (12)
  'e2d4c3d9',
);

describe('CLC Proposal', () => {
  it('round-trips the hand-written v1 IPv4 vector', () => {
    expect(decodeClcProposal(PROPOSAL_V1)).toEqual(V1_MODEL);
    expect(encodeClcProposal(V1_MODEL)).toEqual(PROPOSAL_V1);
  });

  it('round-trips the hand-written v1 IPv6 vector with a future-growth area', () => {
    const decoded = decodeClcProposal(PROPOSAL_V1_IPV6);
    expect(decoded).toEqual({
      ...V1_MODEL,
      growthArea: hex('deadbeef'),
      ipArea: {
        ipv4Subnet: hex('00000000'),
        ipv4PrefixLength: 0,
        ipv6Prefixes: [
          { prefix: hex('fd000000000000010000000000000000'), prefixLength: 64 },
          { prefix: hex('20010db8000000000000000000000000'), prefixLength: 48 },
        ],
      },
    });
    expect(encodeClcProposal(decoded)).toEqual(PROPOSAL_V1_IPV6);
  });

  it('round-trips the hand-written v2 vector', () => {
    const model: ClcProposal = {
      kind: 'proposal',
      version: 2,
      typeV1: SMC_TYPE.R,
      typeV2: SMC_TYPE.R,
      peerId: V1_MODEL.peerId,
      gid: V1_MODEL.gid,
      mac: V1_MODEL.mac,
      smcd: { ismGid: 0n, ismChid: 0 },
      ipArea: { ipv4Subnet: hex('c0a80000'), ipv4PrefixLength: 16, ipv6Prefixes: [] },
      v2Extension: {
        release: 1,
        seid: false,
        userEids: [],
        roceV2Gid: hex('00000000000000000000ffffc0a80001'),
        maxConns: 255,
        maxLinks: 2,
        featureMask: 0,
        smcdV2: null,
      },
    };
    expect(decodeClcProposal(PROPOSAL_V2)).toEqual(model);
    expect(encodeClcProposal(model)).toEqual(PROPOSAL_V2);
  });

  it('round-trips a v2 Proposal offering SMC-D v2 with EIDs and ISM GIDs', () => {
    const model: ClcProposal = {
      kind: 'proposal',
      version: 2,
      typeV1: SMC_TYPE.N,
      typeV2: SMC_TYPE.B,
      peerId: V1_MODEL.peerId,
      gid: V1_MODEL.gid,
      mac: V1_MODEL.mac,
      smcd: { ismGid: 0x1122334455667788n, ismChid: 0xabcd },
      ipArea: null,
      v2Extension: {
        release: 1,
        seid: true,
        userEids: [Buffer.alloc(32, 0x41), Buffer.alloc(32, 0x42)],
        roceV2Gid: Buffer.alloc(16, 7),
        maxConns: 16,
        maxLinks: 1,
        featureMask: 3,
        smcdV2: { systemEid: Buffer.alloc(32, 0x53), gidChids: [{ gid: 5n, chid: 6 }] },
      },
    };
    const bytes = encodeClcProposal(model);
    // 40 + 40 + (40 + 64) + (48 + 10) + 4
    expect(bytes).toHaveLength(246);
    expect(bytes.readUInt16BE(50)).toBe(28); // v2_ext_offset without an IP area
    expect(bytes.readUInt16BE(80 + 6)).toBe(32 + 64); // smcd_v2_ext_offset after the EIDs
    expect(decodeClcProposal(bytes)).toEqual(model);
  });

  it('round-trips a v2-only SMC-Rv2 Proposal with user EIDs as Linux sends it', () => {
    // smc_clc_send_proposal() with typev1 N: the local area (peer id, GID, MAC) stays zero, there is no
    // prefix area, v2_ext_offset = sizeof(smc_clc_msg_smcd) - offsetofend(v2_ext_offset) = 28, and the
    // v2 extension carries the UEID table (smc_clc_eid_table) and the RoCEv2 GID with the preferred
    // SMC_CONN_PER_LGR_PREFER / SMC_LINKS_PER_LGR_MAX_PREFER limits: 40 + 40 + 40 + 2 * 32 + 4 = 188 bytes.
    const EID_A = '534d434b38532d54454e414e542d412020202020202020202020202020202020'; // "SMCK8S-TENANT-A"
    const EID_B = '534d434b38532d54454e414e542d422020202020202020202020202020202020'; // "SMCK8S-TENANT-B"
    const bytes = hex(
      'e2d4c3d9 01 00bc 22', // version 2 | typev2 R (0) | typev1 N (2)
      '0000000000000000', // peer id: not set without typev1
      '00000000000000000000000000000000', // GID
      '000000000000', // MAC
      '0000', // iparea_offset: no prefix area
      '0000000000000000 0000', // ISM GID, CHID
      '001c', // v2_ext_offset
      '000000 0000000000',
      '0000000000000000000000000000000000000000',
      '02 00 00 10 0000 0000', // eid_cnt 2, ism_gid_cnt 0, reserved, release 1 | seid 0, reserved, smcd_v2_ext_offset
      '00000000000000000000ffffc0a80101', // RoCEv2 GID
      'ff 02 0000', // max_conns 255, max_links 2, feature mask
      '000000000000000000000000',
      EID_A,
      EID_B,
      'e2d4c3d9',
    );
    const model: ClcProposal = {
      kind: 'proposal',
      version: 2,
      typeV1: SMC_TYPE.N,
      typeV2: SMC_TYPE.R,
      peerId: Buffer.alloc(8),
      gid: Buffer.alloc(16),
      mac: Buffer.alloc(6),
      smcd: { ismGid: 0n, ismChid: 0 },
      ipArea: null,
      v2Extension: {
        release: 1,
        seid: false,
        userEids: [hex(EID_A), hex(EID_B)],
        roceV2Gid: hex('00000000000000000000ffffc0a80101'),
        maxConns: 255,
        maxLinks: 2,
        featureMask: 0,
        smcdV2: null,
      },
    };
    expect(bytes).toHaveLength(188);
    expect(decodeClcProposal(bytes)).toEqual(model);
    expect(encodeClcProposal(model)).toEqual(bytes);
  });

  it('ignores reserved bytes', () => {
    const dirty = Buffer.from(PROPOSAL_V2);
    dirty[88 + 2] = 0xff; // v2 extension header reserved
    dirty[88 + 30] = 0xff; // v2 extension reserved (12)
    dirty[86] = 0xff; // reserved bytes of the prefix area (80 + 5, 80 + 6)
    dirty[85] = 0xff;
    expect(decodeClcProposal(dirty)).toEqual(decodeClcProposal(PROPOSAL_V2));
  });

  it('rejects malformed input by field', () => {
    const with16 = (src: Buffer, at: number, v: number): Buffer => {
      const b = Buffer.from(src);
      b.writeUInt16BE(v, at);
      return b;
    };
    const with8 = (src: Buffer, at: number, v: number): Buffer => {
      const b = Buffer.from(src);
      b[at] = v;
      return b;
    };
    expectDecodeError(() => decodeClcProposal(with8(PROPOSAL_V1, 1, 0)), 'eyecatcher', 'eyecatcher');
    expectDecodeError(() => decodeClcProposal(with8(PROPOSAL_V1, 51, 0)), 'eyecatcher', 'trailer');
    expectDecodeError(() => decodeClcProposal(with8(PROPOSAL_V1, 4, 2)), 'type', 'type');
    expectDecodeError(() => decodeClcProposal(with8(PROPOSAL_V1, 4, 0)), 'type', 'type');
    expectDecodeError(() => decodeClcProposal(with8(PROPOSAL_V1, 7, 0xf0)), 'version', 'version');
    expectDecodeError(() => decodeClcProposal(with8(PROPOSAL_V1, 7, 0x12)), 'range', 'typeV1');
    expectDecodeError(() => decodeClcProposal(PROPOSAL_V1.subarray(0, 40)), 'truncated', 'length');
    expectDecodeError(() => decodeClcProposal(Buffer.concat([PROPOSAL_V1, hex('00')])), 'length', 'length');
    // IPv6 count overrunning the message
    expectDecodeError(() => decodeClcProposal(with8(PROPOSAL_V1, 47, 1)), 'overrun', 'ipv6PrefixCount');
    expectDecodeError(() => decodeClcProposal(with8(PROPOSAL_V1_IPV6, 51, 3)), 'overrun', 'ipv6PrefixCount');
    // IP area offset past the message, or leaving bytes unexplained
    expectDecodeError(() => decodeClcProposal(with16(PROPOSAL_V1, 38, 0x100)), 'overrun', 'ipAreaOffset');
    expectDecodeError(() => decodeClcProposal(with16(PROPOSAL_V1_IPV6, 38, 0)), 'length', 'length');
    // v2: inconsistent offsets and counts
    expectDecodeError(() => decodeClcProposal(with16(PROPOSAL_V2, 38, 0)), 'range', 'ipAreaOffset');
    expectDecodeError(() => decodeClcProposal(with16(PROPOSAL_V2, 50, 0)), 'range', 'v2ExtOffset');
    expectDecodeError(() => decodeClcProposal(with8(PROPOSAL_V2, 88, 1)), 'overrun', 'eidCount');
    expectDecodeError(() => decodeClcProposal(with8(PROPOSAL_V2, 7, 0x24)), 'range', 'smcdV2ExtOffset');
    expectDecodeError(() => decodeClcProposal(with8(PROPOSAL_V2, 7, 0x28)), 'length', 'length');
    const tiny = hex('e2d4c3d9 01 0020 20', ...LOCAL.slice(0, 2), 'e2d4c3d9');
    expectDecodeError(() => decodeClcProposal(tiny), 'length', 'length');
  });

  it('refuses to encode inconsistent models', () => {
    expect(() => encodeClcProposal({ ...V1_MODEL, typeV1: SMC_TYPE.N })).toThrow(/typeV1/);
    const v2 = decodeClcProposal(PROPOSAL_V2);
    if (v2.version !== 2) throw new Error('expected v2');
    expect(() => encodeClcProposal({ ...v2, ipArea: null })).toThrow(/ipArea/);
    expect(() => encodeClcProposal({ ...v2, typeV2: SMC_TYPE.N })).toThrow(/v2Extension/);
    expect(() => encodeClcProposal({ ...v2, typeV2: SMC_TYPE.B })).toThrow(/smcdV2/);
    const many = Array.from({ length: 256 }, () => ({ prefix: Buffer.alloc(16), prefixLength: 0 }));
    expect(() =>
      encodeClcProposal({ ...V1_MODEL, ipArea: { ...V1_MODEL.ipArea, ipv6Prefixes: many } }),
    ).toThrow(/ipv6Prefixes/);
    expect(() => encodeClcProposal({ ...V1_MODEL, growthArea: Buffer.alloc(70000) })).toThrow(/length/);
  });
});
