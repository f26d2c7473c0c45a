import { ByteWriter, checkBits } from '../bytes.js';
import { ProtocolDecodeError, ProtocolEncodeError } from '../errors.js';
import {
  type ClcAcceptConfirm,
  decodeClcAcceptConfirm,
  encodeClcAcceptConfirm,
  readSmcrAcceptConfirmR0,
  type SmcrAcceptConfirmR0,
  writeSmcrAcceptConfirmR0,
} from './accept-confirm.js';
import {
  CLC_FLAG_FIRST_CONTACT,
  CLC_TRAILER_LENGTH,
  CLC_TYPE,
  SMC_CLC_FCE_GID_EXT_HDR_LEN,
  SMC_CLC_FCE_LEN,
  SMC_CLC_FCE_V2X_LEN,
  SMC_GID_SIZE,
  SMC_MAX_EID_LEN,
  SMC_MAX_HOSTNAME_LEN,
  SMC_RELEASE_1,
  SMC_TYPE,
  SMCR_CLC_ACCEPT_CONFIRM_LEN_V2,
  SMCR_EYECATCHER,
} from './constants.js';
import { decodeClcFrame, decodeClcHeader, requireSmcrEyecatcher, writeClcFrame } from './header.js';

/*
 * SMC-R CLC Accept and Confirm, version 2 (net/smc/smc_clc.h struct
 * smc_clc_msg_accept_confirm: hdr, r0 = struct smcr_clc_msg_accept_confirm,
 * r1 = { eid[32], reserved6[8] }; then, with first contact only, struct
 * smc_clc_first_contact_ext / smc_clc_first_contact_ext_v2x and, on a Confirm,
 * struct smc_clc_fce_gid_ext; built by smc_clc_send_confirm_accept() and
 * smc_clc_fill_fce(), length rule of smc_clc_msg_acc_conf_valid()):
 *
 *    0  header (8); version 2, typev1 R, byte 7 bit 3 = first contact
 *    8  r0: the 56 bytes of the v1 message between header and trailer
 *   64  negotiated EID (32), zero when none was negotiated
 *   96  reserved (8)
 *  104  first-contact extension (first contact only), 36 or 52 bytes:
 *         104 v2_direct (bit 7) | reserved, 105 os type (high nibble) | release (low nibble),
 *         106 reserved (2), 108 hostname (32, blank padded)
 *         v2.1 part: 140 max_conns, 141 max_links, 142 feature_mask u16,
 *         144 vendor_exp_options u32, 148 reserved (8)
 *       then, on a Confirm, the GID list: count, reserved (3), count * 16-byte GIDs
 *  L-4  trailer
 *
 * Linux sends the 52-byte form for SMC-R whatever the release (kernels before
 * v2.1 sent 36 bytes). The length alone is ambiguous for a Confirm carrying a
 * GID list, so the decoder reads it as the kernel does: release 1 or later
 * means 52 bytes; release 0 means 36 bytes if the GID count behind them
 * explains the length, else 52.
 */

export interface ClcFirstContactExtV2x {
  /** Connections per link group (SMC-R v2.1); the server's Accept value is final. */
  maxConns: number;
  /** Links per link group (SMC-R v2.1). */
  maxLinks: number;
  featureMask: number;
  /** vendor_exp_options, kept opaque. */
  vendorOptions: number;
}

/** struct smc_clc_first_contact_ext(_v2x). */
export interface ClcFirstContactExt {
  /** The peer is reachable without a gateway (no IP router between the RoCEv2 ports). */
  v2Direct: boolean;
  /** SMC_CLC_OS_*: 1 z/OS, 2 Linux, 3 AIX. */
  osType: number;
  /** SMC release: 0 for v2.0, 1 for v2.1. */
  release: number;
  /** 32 bytes, ASCII, blank padded (smc_clc_init). */
  hostname: Buffer;
  /** The 16-byte v2.1 part, or null for the 36-byte v2.0 form. */
  v2x: ClcFirstContactExtV2x | null;
}

export interface ClcAcceptConfirmV2 extends SmcrAcceptConfirmR0 {
  kind: 'accept' | 'confirm';
  version: 2;
  firstContact: boolean;
  /** r1.eid: the EID both sides matched, or 32 zero bytes. */
  eid: Buffer;
  /** Present exactly when firstContact is set. */
  firstContactExt: ClcFirstContactExt | null;
  /** struct smc_clc_fce_gid_ext: the client's RoCEv2 GIDs, on a first-contact Confirm only. */
  gidList: Buffer[] | null;
}

export type ClcAcceptConfirmAny = ClcAcceptConfirm | ClcAcceptConfirmV2;

const EID_OFFSET = 64;
const FCE_OFFSET = SMCR_CLC_ACCEPT_CONFIRM_LEN_V2 - CLC_TRAILER_LENGTH;

function fceLength(ext: ClcFirstContactExt): number {
  return ext.v2x === null ? SMC_CLC_FCE_LEN : SMC_CLC_FCE_V2X_LEN;
}

/**
 * Which layout explains `rest` bytes between offset 104 and the trailer:
 * extension length and GID count (null: no GID list).
 */
function layoutOf(
  bytes: Uint8Array,
  rest: number,
  isConfirm: boolean,
  release: number,
): { fceLen: number; gidCount: number | null } {
  const candidates =
    release >= SMC_RELEASE_1 ? [SMC_CLC_FCE_V2X_LEN] : [SMC_CLC_FCE_LEN, SMC_CLC_FCE_V2X_LEN];
  for (const fceLen of candidates) {
    if (rest === fceLen) return { fceLen, gidCount: null };
    if (isConfirm && rest >= fceLen + SMC_CLC_FCE_GID_EXT_HDR_LEN) {
      const count = bytes[FCE_OFFSET + fceLen] ?? 0;
      if (rest === fceLen + SMC_CLC_FCE_GID_EXT_HDR_LEN + count * SMC_GID_SIZE)
        return { fceLen, gidCount: count };
    }
  }
  const what = isConfirm ? 'extension and GID list' : 'extension';
  throw new ProtocolDecodeError(
    rest < SMC_CLC_FCE_LEN ? 'truncated' : 'length',
    'firstContactExt',
    `${rest} bytes do not hold a release-${release} first-contact ${what}`,
  );
}

/** Decodes an SMC-R v2 Accept or Confirm (at least 108 bytes). */
export function decodeClcAcceptConfirmV2(bytes: Uint8Array): ClcAcceptConfirmV2 {
  const { header, reader: r } = decodeClcFrame(bytes, false);
  if (header.type !== CLC_TYPE.accept && header.type !== CLC_TYPE.confirm) {
    throw new ProtocolDecodeError('type', 'type', `expected Accept (2) or Confirm (3), got ${header.type}`);
  }
  requireSmcrEyecatcher(header);
  if (header.version !== 2) {
    throw new ProtocolDecodeError(
      'version',
      'version',
      `expected a v2 Accept/Confirm, got version ${header.version}`,
    );
  }
  if (header.typeV1 !== SMC_TYPE.R) {
    throw new ProtocolDecodeError('range', 'typeV1', `expected SMC-R (0), got ${header.typeV1}`);
  }
  if (header.length < SMCR_CLC_ACCEPT_CONFIRM_LEN_V2) {
    throw new ProtocolDecodeError(
      'length',
      'length',
      `v2 SMC-R Accept/Confirm is at least ${SMCR_CLC_ACCEPT_CONFIRM_LEN_V2} bytes, got ${header.length}`,
    );
  }
  if (!r.equals(header.length - CLC_TRAILER_LENGTH, SMCR_EYECATCHER)) {
    throw new ProtocolDecodeError('eyecatcher', 'trailer', 'trailer is not "SMCR" (EBCDIC)');
  }
  const isConfirm = header.type === CLC_TYPE.confirm;
  const firstContact = (r.u8(7, 'flags') & CLC_FLAG_FIRST_CONTACT) !== 0;
  const base = {
    kind: isConfirm ? ('confirm' as const) : ('accept' as const),
    version: 2 as const,
    firstContact,
    ...readSmcrAcceptConfirmR0(r),
    eid: r.copy(EID_OFFSET, SMC_MAX_EID_LEN, 'eid'),
  };
  const rest = header.length - SMCR_CLC_ACCEPT_CONFIRM_LEN_V2;
  if (!firstContact) {
    if (rest !== 0) {
      throw new ProtocolDecodeError(
        'length',
        'length',
        `without first contact a v2 Accept/Confirm is ${SMCR_CLC_ACCEPT_CONFIRM_LEN_V2} bytes, got ${header.length}`,
      );
    }
    return { ...base, firstContactExt: null, gidList: null };
  }
  const osRelease = r.u8(FCE_OFFSET + 1, 'firstContactExt.release');
  const release = osRelease & 0x0f;
  const { fceLen, gidCount } = layoutOf(bytes, rest, isConfirm, release);
  const at = FCE_OFFSET;
  const firstContactExt: ClcFirstContactExt = {
    v2Direct: (r.u8(at, 'firstContactExt.v2Direct') & 0x80) !== 0,
    osType: osRelease >> 4,
    release,
    hostname: r.copy(at + 4, SMC_MAX_HOSTNAME_LEN, 'firstContactExt.hostname'),
    v2x:
      fceLen === SMC_CLC_FCE_LEN
        ? null
        : {
            maxConns: r.u8(at + 36, 'firstContactExt.maxConns'),
            maxLinks: r.u8(at + 37, 'firstContactExt.maxLinks'),
            featureMask: r.u16(at + 38, 'firstContactExt.featureMask'),
            vendorOptions: r.u32(at + 40, 'firstContactExt.vendorOptions'),
          },
  };
  let gidList: Buffer[] | null = null;
  if (gidCount !== null) {
    gidList = [];
    const gids = at + fceLen + SMC_CLC_FCE_GID_EXT_HDR_LEN;
    for (let i = 0; i < gidCount; i++) {
      gidList.push(r.copy(gids + i * SMC_GID_SIZE, SMC_GID_SIZE, `gidList[${i}]`));
    }
  }
  return { ...base, firstContactExt, gidList };
}

/** Decodes an SMC-R Accept or Confirm of either version, by the header's version. */
export function decodeClcAcceptConfirmAny(bytes: Uint8Array): ClcAcceptConfirmAny {
  return decodeClcHeader(bytes).version === 2
    ? decodeClcAcceptConfirmV2(bytes)
    : decodeClcAcceptConfirm(bytes);
}

function checkConsistency(m: ClcAcceptConfirmV2): void {
  const ext = m.firstContactExt;
  if ((ext === null) === m.firstContact) {
    throw new ProtocolEncodeError('firstContactExt', 'present exactly when firstContact is set');
  }
  if (m.gidList !== null && (m.kind !== 'confirm' || ext === null)) {
    throw new ProtocolEncodeError('gidList', 'only a first-contact Confirm carries a GID list');
  }
  if (m.gidList !== null && m.gidList.length > 255) {
    throw new ProtocolEncodeError(
      'gidList',
      `at most 255 GIDs fit a one-byte count, got ${m.gidList.length}`,
    );
  }
  if (ext === null) return;
  checkBits('firstContactExt.release', ext.release, 4);
  if (ext.release >= SMC_RELEASE_1 && ext.v2x === null) {
    throw new ProtocolEncodeError(
      'firstContactExt.v2x',
      'release 1 and later carry the 52-byte v2.1 extension',
    );
  }
  if (
    ext.release < SMC_RELEASE_1 &&
    ext.v2x !== null &&
    m.gidList !== null &&
    ext.v2x.maxConns === m.gidList.length + 1
  ) {
    // The 36-byte reading would take maxConns for the GID count and explain the length as well.
    throw new ProtocolEncodeError(
      'firstContactExt.v2x.maxConns',
      'with release 0 and a GID list, maxConns = GID count + 1 reads back as the 36-byte form',
    );
  }
}

export function encodeClcAcceptConfirmV2(m: ClcAcceptConfirmV2): Buffer {
  checkConsistency(m);
  const ext = m.firstContactExt;
  let length = SMCR_CLC_ACCEPT_CONFIRM_LEN_V2;
  if (ext !== null) length += fceLength(ext);
  if (m.gidList !== null) length += SMC_CLC_FCE_GID_EXT_HDR_LEN + m.gidList.length * SMC_GID_SIZE;
  const w = new ByteWriter(length);
  writeClcFrame(
    w.bytes,
    m.kind === 'accept' ? CLC_TYPE.accept : CLC_TYPE.confirm,
    2,
    m.firstContact ? CLC_FLAG_FIRST_CONTACT >> 2 : 0,
    SMC_TYPE.R,
  );
  writeSmcrAcceptConfirmR0(w, m);
  w.fixed(EID_OFFSET, m.eid, SMC_MAX_EID_LEN, 'eid');
  if (ext !== null) {
    const at = FCE_OFFSET;
    w.u8(at, ext.v2Direct ? 0x80 : 0, 'firstContactExt.v2Direct');
    w.u8(
      at + 1,
      (checkBits('firstContactExt.osType', ext.osType, 4) << 4) | ext.release,
      'firstContactExt.release',
    );
    w.fixed(at + 4, ext.hostname, SMC_MAX_HOSTNAME_LEN, 'firstContactExt.hostname');
    if (ext.v2x !== null) {
      w.u8(at + 36, ext.v2x.maxConns, 'firstContactExt.maxConns');
      w.u8(at + 37, ext.v2x.maxLinks, 'firstContactExt.maxLinks');
      w.u16(at + 38, ext.v2x.featureMask, 'firstContactExt.featureMask');
      w.u32(at + 40, ext.v2x.vendorOptions, 'firstContactExt.vendorOptions');
    }
    if (m.gidList !== null) {
      const gle = at + fceLength(ext);
      w.u8(gle, m.gidList.length, 'gidCount');
      m.gidList.forEach((gid, i) => {
        w.fixed(gle + SMC_CLC_FCE_GID_EXT_HDR_LEN + i * SMC_GID_SIZE, gid, SMC_GID_SIZE, `gidList[${i}]`);
      });
    }
  }
  return w.bytes;
}

/** Encodes an SMC-R Accept or Confirm of either version. */
export function encodeClcAcceptConfirmAny(m: ClcAcceptConfirmAny): Buffer {
  return m.version === 2 ? encodeClcAcceptConfirmV2(m) : encodeClcAcceptConfirm(m);
}
