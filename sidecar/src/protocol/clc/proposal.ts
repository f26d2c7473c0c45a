import { type ByteReader, ByteWriter, checkBits } from '../bytes.js';
import { ProtocolDecodeError, ProtocolEncodeError } from '../errors.js';
import {
  CLC_TRAILER_LENGTH,
  CLC_TYPE,
  ETH_ALEN,
  SMC_GID_SIZE,
  SMC_MAX_EID_LEN,
  SMC_SYSTEMID_LEN,
  SMC_TYPE,
  type SmcType,
  smcdIndicated,
} from './constants.js';
import { decodeClcFrame, requireSmcrEyecatcher, writeClcFrame } from './header.js';

/*
 * CLC Proposal (RFC 7609 Appendix A "SMC Proposal CLC Message Format";
 * net/smc/smc_clc.h struct smc_clc_msg_proposal, smc_clc_msg_smcd,
 * smc_clc_msg_proposal_prefix, smc_clc_ipv6_prefix, smc_clc_v2_extension,
 * smc_clc_smcd_v2_extension; length rules from smc_clc_msg_prop_valid).
 *
 *   0   header (8)
 *   8   peer id (8), 16 GID (16), 32 MAC (6)
 *   38  iparea_offset u16: bytes between offset 40 and the IP prefix area
 *   v1: 40 + iparea_offset  prefix area
 *   v2: 40 smc_clc_msg_smcd (40): ISM GID u64, CHID u16, v2_ext_offset u16, vendor data, reserved
 *       80 prefix area when typev1 != N (iparea_offset = 40)
 *   prefix area: IPv4 subnet (4), prefix length (1), reserved (2), IPv6 prefix count (1),
 *                then 17 bytes per IPv6 prefix (16 prefix + 1 length)
 *   v2 extension when typev2 != N, located at 52 + v2_ext_offset:
 *       eid_cnt, ism_gid_cnt, reserved, release:4|rsvd:3|seid:1, reserved (2),
 *       smcd_v2_ext_offset u16, RoCEv2 GID (16), max_conns, max_links, feature_mask u16,
 *       reserved (12), then eid_cnt * 32-byte user EIDs
 *   SMC-Dv2 extension when typev2 is D or B, at ext + 8 + smcd_v2_ext_offset:
 *       system EID (32), reserved (16), ism_gid_cnt * (GID u64, CHID u16)
 *   trailer (4)
 */

const LOCAL_OFFSET = 8;
const IPAREA_OFFSET_FIELD = 38;
const PROPOSAL_BASE_LEN = 40;
const SMCD_INFO_LEN = 40;
/** offsetofend(struct smc_clc_msg_smcd, v2_ext_offset) */
const SMCD_V2_EXT_OFFSET_END = 12;
const PREFIX_LEN = 8;
const IPV6_PREFIX_LEN = 17;
const V2_EXT_FIXED_LEN = 40;
/** offsetofend(struct smc_clnt_opts_area_hdr, smcd_v2_ext_offset) */
const V2_EXT_HDR_END = 8;
const SMCD_V2_EXT_FIXED_LEN = 48;
const GID_CHID_LEN = 10;

export interface ClcIpv6Prefix {
  prefix: Buffer;
  prefixLength: number;
}

export interface ClcIpArea {
  /** Outgoing IPv4 subnet (address & mask) in network order. */
  ipv4Subnet: Buffer;
  ipv4PrefixLength: number;
  ipv6Prefixes: ClcIpv6Prefix[];
}

/** struct smc_clc_msg_smcd: present in every v2 Proposal, zero for SMC-R-only senders. */
export interface ClcSmcdInfo {
  ismGid: bigint;
  ismChid: number;
}

export interface ClcSmcdGidChid {
  gid: bigint;
  chid: number;
}

export interface ClcSmcdV2Extension {
  systemEid: Buffer;
  gidChids: ClcSmcdGidChid[];
}

export interface ClcV2Extension {
  release: number;
  seid: boolean;
  userEids: Buffer[];
  roceV2Gid: Buffer;
  maxConns: number;
  maxLinks: number;
  featureMask: number;
  /** Present exactly when typeV2 indicates SMC-D. */
  smcdV2: ClcSmcdV2Extension | null;
}

interface ClcProposalCommon {
  kind: 'proposal';
  typeV1: SmcType;
  peerId: Buffer;
  gid: Buffer;
  mac: Buffer;
}

export interface ClcProposalV1 extends ClcProposalCommon {
  version: 1;
  /** RFC 7609 "area for future growth" between offset 40 and the IP area; opaque. */
  growthArea: Buffer;
  ipArea: ClcIpArea;
}

export interface ClcProposalV2 extends ClcProposalCommon {
  version: 2;
  typeV2: SmcType;
  smcd: ClcSmcdInfo;
  /** Present exactly when typeV1 is not N. */
  ipArea: ClcIpArea | null;
  /** Present exactly when typeV2 is not N. */
  v2Extension: ClcV2Extension | null;
}

export type ClcProposal = ClcProposalV1 | ClcProposalV2;

function decodeIpArea(r: ByteReader, at: number, end: number): { area: ClcIpArea; next: number } {
  if (at + PREFIX_LEN > end) {
    throw new ProtocolDecodeError('overrun', 'ipAreaOffset', `IP prefix area at ${at} runs past ${end}`);
  }
  const ipv4Subnet = r.copy(at, 4, 'ipv4Subnet');
  const ipv4PrefixLength = r.u8(at + 4, 'ipv4PrefixLength');
  const count = r.u8(at + 7, 'ipv6PrefixCount');
  let next = at + PREFIX_LEN;
  if (next + count * IPV6_PREFIX_LEN > end) {
    throw new ProtocolDecodeError(
      'overrun',
      'ipv6PrefixCount',
      `${count} IPv6 prefixes need ${count * IPV6_PREFIX_LEN} bytes, ${end - next} left`,
    );
  }
  const ipv6Prefixes: ClcIpv6Prefix[] = [];
  for (let i = 0; i < count; i++) {
    ipv6Prefixes.push({
      prefix: r.copy(next, 16, `ipv6Prefixes[${i}].prefix`),
      prefixLength: r.u8(next + 16, `ipv6Prefixes[${i}].prefixLength`),
    });
    next += IPV6_PREFIX_LEN;
  }
  return { area: { ipv4Subnet, ipv4PrefixLength, ipv6Prefixes }, next };
}

function decodeV2Extension(
  r: ByteReader,
  at: number,
  end: number,
  typeV2: SmcType,
): { ext: ClcV2Extension; next: number } {
  if (at + V2_EXT_FIXED_LEN > end) {
    throw new ProtocolDecodeError('overrun', 'v2ExtOffset', `v2 extension at ${at} runs past ${end}`);
  }
  const eidCount = r.u8(at, 'eidCount');
  const ismGidCount = r.u8(at + 1, 'ismGidCount');
  const flag = r.u8(at + 3, 'release');
  const smcdV2ExtOffset = r.u16(at + 6, 'smcdV2ExtOffset');
  const roceV2Gid = r.copy(at + 8, SMC_GID_SIZE, 'roceV2Gid');
  const maxConns = r.u8(at + 24, 'maxConns');
  const maxLinks = r.u8(at + 25, 'maxLinks');
  const featureMask = r.u16(at + 26, 'featureMask');
  let next = at + V2_EXT_FIXED_LEN;
  if (next + eidCount * SMC_MAX_EID_LEN > end) {
    throw new ProtocolDecodeError(
      'overrun',
      'eidCount',
      `${eidCount} EIDs need ${eidCount * SMC_MAX_EID_LEN} bytes, ${end - next} left`,
    );
  }
  const userEids: Buffer[] = [];
  for (let i = 0; i < eidCount; i++) {
    userEids.push(r.copy(next, SMC_MAX_EID_LEN, `userEids[${i}]`));
    next += SMC_MAX_EID_LEN;
  }
  let smcdV2: ClcSmcdV2Extension | null = null;
  if (smcdIndicated(typeV2)) {
    // The kernel lays the SMC-Dv2 extension right after the EIDs; other placements are not produced by any known sender.
    const expected = next - (at + V2_EXT_HDR_END);
    if (smcdV2ExtOffset !== expected) {
      throw new ProtocolDecodeError(
        'range',
        'smcdV2ExtOffset',
        `expected ${expected} (directly after the EIDs), got ${smcdV2ExtOffset}`,
      );
    }
    if (next + SMCD_V2_EXT_FIXED_LEN + ismGidCount * GID_CHID_LEN > end) {
      throw new ProtocolDecodeError(
        'overrun',
        'ismGidCount',
        `SMC-Dv2 extension with ${ismGidCount} GIDs runs past ${end}`,
      );
    }
    const systemEid = r.copy(next, SMC_MAX_EID_LEN, 'systemEid');
    next += SMCD_V2_EXT_FIXED_LEN;
    const gidChids: ClcSmcdGidChid[] = [];
    for (let i = 0; i < ismGidCount; i++) {
      gidChids.push({ gid: r.u64(next, `gidChids[${i}].gid`), chid: r.u16(next + 8, `gidChids[${i}].chid`) });
      next += GID_CHID_LEN;
    }
    smcdV2 = { systemEid, gidChids };
  }
  return {
    ext: {
      release: flag >> 4,
      seid: (flag & 0x01) !== 0,
      userEids,
      roceV2Gid,
      maxConns,
      maxLinks,
      featureMask,
      smcdV2,
    },
    next,
  };
}

export function decodeClcProposal(bytes: Uint8Array): ClcProposal {
  const { header, reader: r } = decodeClcFrame(bytes, true);
  if (header.type !== CLC_TYPE.proposal) {
    throw new ProtocolDecodeError('type', 'type', `expected Proposal (1), got ${header.type}`);
  }
  requireSmcrEyecatcher(header);
  const end = header.length - CLC_TRAILER_LENGTH;
  if (end < PROPOSAL_BASE_LEN) {
    throw new ProtocolDecodeError(
      'length',
      'length',
      `Proposal needs at least ${PROPOSAL_BASE_LEN + 4} bytes`,
    );
  }
  const peerId = r.copy(LOCAL_OFFSET, SMC_SYSTEMID_LEN, 'peerId');
  const gid = r.copy(16, SMC_GID_SIZE, 'gid');
  const mac = r.copy(32, ETH_ALEN, 'mac');
  const ipAreaOffset = r.u16(IPAREA_OFFSET_FIELD, 'ipAreaOffset');

  if (header.version === 1) {
    if (header.typeV1 === SMC_TYPE.N) {
      throw new ProtocolDecodeError('range', 'typeV1', 'a v1 Proposal must offer SMC-R or SMC-D');
    }
    const at = PROPOSAL_BASE_LEN + ipAreaOffset;
    if (at > end) {
      throw new ProtocolDecodeError(
        'overrun',
        'ipAreaOffset',
        `offset ${ipAreaOffset} runs past the message`,
      );
    }
    const growthArea = r.copy(PROPOSAL_BASE_LEN, ipAreaOffset, 'growthArea');
    const { area, next } = decodeIpArea(r, at, end);
    if (next !== end) {
      throw new ProtocolDecodeError('length', 'length', `${end - next} unexplained bytes before the trailer`);
    }
    return {
      kind: 'proposal',
      version: 1,
      typeV1: header.typeV1,
      peerId,
      gid,
      mac,
      growthArea,
      ipArea: area,
    };
  }

  if (PROPOSAL_BASE_LEN + SMCD_INFO_LEN > end) {
    throw new ProtocolDecodeError(
      'truncated',
      'smcd',
      'v2 Proposal lacks the 40-byte SMC-D information area',
    );
  }
  const smcd: ClcSmcdInfo = { ismGid: r.u64(40, 'smcd.ismGid'), ismChid: r.u16(48, 'smcd.ismChid') };
  const v2ExtOffset = r.u16(50, 'v2ExtOffset');
  let next = PROPOSAL_BASE_LEN + SMCD_INFO_LEN;
  let ipArea: ClcIpArea | null = null;
  if (header.typeV1 !== SMC_TYPE.N) {
    if (ipAreaOffset !== SMCD_INFO_LEN) {
      throw new ProtocolDecodeError('range', 'ipAreaOffset', `v2 Proposal must use 40, got ${ipAreaOffset}`);
    }
    const decoded = decodeIpArea(r, next, end);
    ipArea = decoded.area;
    next = decoded.next;
  }
  let v2Extension: ClcV2Extension | null = null;
  if (header.typeV2 !== SMC_TYPE.N) {
    const expected = next - (PROPOSAL_BASE_LEN + SMCD_V2_EXT_OFFSET_END);
    if (v2ExtOffset !== expected) {
      throw new ProtocolDecodeError(
        'range',
        'v2ExtOffset',
        `expected ${expected} (directly after the IP area), got ${v2ExtOffset}`,
      );
    }
    const decoded = decodeV2Extension(r, next, end, header.typeV2);
    v2Extension = decoded.ext;
    next = decoded.next;
  }
  if (next !== end) {
    throw new ProtocolDecodeError('length', 'length', `${end - next} unexplained bytes before the trailer`);
  }
  return {
    kind: 'proposal',
    version: 2,
    typeV1: header.typeV1,
    typeV2: header.typeV2,
    peerId,
    gid,
    mac,
    smcd,
    ipArea,
    v2Extension,
  };
}

function ipAreaLength(area: ClcIpArea): number {
  return PREFIX_LEN + area.ipv6Prefixes.length * IPV6_PREFIX_LEN;
}

function writeIpArea(w: ByteWriter, at: number, area: ClcIpArea): number {
  w.fixed(at, area.ipv4Subnet, 4, 'ipv4Subnet');
  w.u8(at + 4, area.ipv4PrefixLength, 'ipv4PrefixLength');
  w.u8(at + 7, area.ipv6Prefixes.length, 'ipv6PrefixCount');
  let next = at + PREFIX_LEN;
  area.ipv6Prefixes.forEach((p, i) => {
    w.fixed(next, p.prefix, 16, `ipv6Prefixes[${i}].prefix`);
    w.u8(next + 16, p.prefixLength, `ipv6Prefixes[${i}].prefixLength`);
    next += IPV6_PREFIX_LEN;
  });
  return next;
}

function v2ExtensionLength(ext: ClcV2Extension): number {
  let len = V2_EXT_FIXED_LEN + ext.userEids.length * SMC_MAX_EID_LEN;
  if (ext.smcdV2 !== null) len += SMCD_V2_EXT_FIXED_LEN + ext.smcdV2.gidChids.length * GID_CHID_LEN;
  return len;
}

function writeV2Extension(w: ByteWriter, at: number, ext: ClcV2Extension): void {
  w.u8(at, ext.userEids.length, 'eidCount');
  w.u8(at + 1, ext.smcdV2?.gidChids.length ?? 0, 'ismGidCount');
  w.u8(at + 3, (checkBits('release', ext.release, 4) << 4) | (ext.seid ? 1 : 0), 'release');
  const eidsEnd = at + V2_EXT_FIXED_LEN + ext.userEids.length * SMC_MAX_EID_LEN;
  if (ext.smcdV2 !== null) w.u16(at + 6, eidsEnd - (at + V2_EXT_HDR_END), 'smcdV2ExtOffset');
  w.fixed(at + 8, ext.roceV2Gid, SMC_GID_SIZE, 'roceV2Gid');
  w.u8(at + 24, ext.maxConns, 'maxConns');
  w.u8(at + 25, ext.maxLinks, 'maxLinks');
  w.u16(at + 26, ext.featureMask, 'featureMask');
  ext.userEids.forEach((eid, i) => {
    w.fixed(at + V2_EXT_FIXED_LEN + i * SMC_MAX_EID_LEN, eid, SMC_MAX_EID_LEN, `userEids[${i}]`);
  });
  if (ext.smcdV2 !== null) {
    w.fixed(eidsEnd, ext.smcdV2.systemEid, SMC_MAX_EID_LEN, 'systemEid');
    let next = eidsEnd + SMCD_V2_EXT_FIXED_LEN;
    ext.smcdV2.gidChids.forEach((g, i) => {
      w.u64(next, g.gid, `gidChids[${i}].gid`);
      w.u16(next + 8, g.chid, `gidChids[${i}].chid`);
      next += GID_CHID_LEN;
    });
  }
}

function checkCount(field: string, n: number): void {
  if (n > 255) throw new ProtocolEncodeError(field, `at most 255 entries fit a one-byte count, got ${n}`);
}

function checkConsistency(p: ClcProposal): void {
  if (p.ipArea !== null) checkCount('ipv6Prefixes', p.ipArea.ipv6Prefixes.length);
  if (p.version === 1) {
    if (p.typeV1 === SMC_TYPE.N)
      throw new ProtocolEncodeError('typeV1', 'a v1 Proposal must offer SMC-R or SMC-D');
    return;
  }
  if ((p.ipArea === null) !== (p.typeV1 === SMC_TYPE.N)) {
    throw new ProtocolEncodeError('ipArea', 'present exactly when typeV1 is not N');
  }
  if ((p.v2Extension === null) !== (p.typeV2 === SMC_TYPE.N)) {
    throw new ProtocolEncodeError('v2Extension', 'present exactly when typeV2 is not N');
  }
  if (p.v2Extension !== null) {
    checkCount('userEids', p.v2Extension.userEids.length);
    if ((p.v2Extension.smcdV2 !== null) !== smcdIndicated(p.typeV2)) {
      throw new ProtocolEncodeError('v2Extension.smcdV2', 'present exactly when typeV2 indicates SMC-D');
    }
    if (p.v2Extension.smcdV2 !== null) checkCount('gidChids', p.v2Extension.smcdV2.gidChids.length);
  }
}

export function encodeClcProposal(p: ClcProposal): Buffer {
  checkConsistency(p);
  let length = PROPOSAL_BASE_LEN + CLC_TRAILER_LENGTH;
  if (p.version === 1) {
    length += p.growthArea.byteLength + ipAreaLength(p.ipArea);
  } else {
    length += SMCD_INFO_LEN;
    if (p.ipArea !== null) length += ipAreaLength(p.ipArea);
    if (p.v2Extension !== null) length += v2ExtensionLength(p.v2Extension);
  }
  if (length > 0xffff)
    throw new ProtocolEncodeError('length', `${length} bytes exceed the 16-bit length field`);
  const w = new ByteWriter(length);
  writeClcFrame(w.bytes, CLC_TYPE.proposal, p.version, p.version === 2 ? p.typeV2 : 0, p.typeV1);
  w.fixed(LOCAL_OFFSET, p.peerId, SMC_SYSTEMID_LEN, 'peerId');
  w.fixed(16, p.gid, SMC_GID_SIZE, 'gid');
  w.fixed(32, p.mac, ETH_ALEN, 'mac');
  if (p.version === 1) {
    w.u16(IPAREA_OFFSET_FIELD, p.growthArea.byteLength, 'ipAreaOffset');
    w.fixed(PROPOSAL_BASE_LEN, p.growthArea, p.growthArea.byteLength, 'growthArea');
    writeIpArea(w, PROPOSAL_BASE_LEN + p.growthArea.byteLength, p.ipArea);
    return w.bytes;
  }
  w.u64(40, p.smcd.ismGid, 'smcd.ismGid');
  w.u16(48, p.smcd.ismChid, 'smcd.ismChid');
  let next = PROPOSAL_BASE_LEN + SMCD_INFO_LEN;
  if (p.ipArea !== null) {
    w.u16(IPAREA_OFFSET_FIELD, SMCD_INFO_LEN, 'ipAreaOffset');
    next = writeIpArea(w, next, p.ipArea);
  }
  if (p.v2Extension !== null) {
    w.u16(50, next - (PROPOSAL_BASE_LEN + SMCD_V2_EXT_OFFSET_END), 'v2ExtOffset');
    writeV2Extension(w, next, p.v2Extension);
  }
  return w.bytes;
}
