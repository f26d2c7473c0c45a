import { ByteReader, ByteWriter } from '../bytes.js';
import { ProtocolDecodeError, ProtocolEncodeError } from '../errors.js';
import type { LlcAddLinkContRtoken } from './add-link-cont.js';
import { type LlcAddLink, readAddLinkBody, writeAddLinkBody } from './add-link.js';
import {
  confirmLinkFlags,
  type LlcConfirmLink,
  readConfirmLinkBody,
  writeConfirmLinkBody,
} from './confirm-link.js';
import {
  confirmRkeyFlags,
  type LlcConfirmRkey,
  readConfirmRkeyBody,
  writeConfirmRkeyBody,
} from './confirm-rkey.js';
import { LLC_FLAG_ADD_LNK_REJ, LLC_FLAG_RESP, LLC_FLAG_RKEY_NEG, LLC_MESSAGE_LENGTH } from './constants.js';
import {
  deleteLinkFlags,
  type LlcDeleteLink,
  readDeleteLinkBody,
  writeDeleteLinkBody,
} from './delete-link.js';
import { type LlcTestLink, readTestLinkBody } from './test-link.js';

/*
 * SMC-Rv2 LLC messages (net/smc/smc_llc.c, smc_llc.h enum smc_llc_msg_type,
 * smc_wr.c, smc_core.h), exchanged on link groups whose CLC handshake
 * negotiated version 2:
 *
 *   byte 0  type: the LLC version (SMC_V2 = 2) in the high nibble
 *           (smc_wr_rx_hdr.llc_version), the v1 type in the low nibble (llc_type)
 *   byte 1  length_v2, a u16 in the sender's *host* byte order: smc_llc_init_msg_hdr()
 *           assigns it without htons and smc_llc_rx_handler() reads it the same way
 *           (only "at least 44" is checked); x86-64 and arm64 kernels send it
 *           little-endian, s390x big-endian. Default here: little-endian.
 *   byte 3  flags
 *
 * The add_link_rej_rsn nibble of the v1 header overlaps length_v2, so a v2 ADD
 * LINK reject carries no reason. Messages longer than 44 bytes (ADD LINK with
 * its rkey list, REQUEST ADD LINK with GIDs, DELETE RKEY with more than 8
 * rkeys) are posted from a SMC_WR_BUF_V2_SIZE (8192) send buffer; a receive
 * work request has two SGEs, the first 44 bytes (SMC_WR_TX_SIZE) and a shared
 * 8192-byte spill-over buffer holding bytes 44 and up at their own offsets, so
 * the receiver sees one contiguous message of up to 8192 bytes. The decoders
 * below take such a buffer: the message is the first length_v2 bytes and what
 * follows is ignored.
 */

export const LLC_V2_TYPE = {
  confirmLink: 0x21,
  addLink: 0x22,
  deleteLink: 0x24,
  reqAddLink: 0x25,
  confirmRkey: 0x26,
  testLink: 0x27,
  deleteRkey: 0x29,
} as const;
export type LlcV2TypeCode = (typeof LLC_V2_TYPE)[keyof typeof LLC_V2_TYPE];

/** SMC_V2 in the llc_version nibble. */
export const LLC_VERSION_2 = 2;
/** SMC_WR_BUF_V2_SIZE (smc_core.h): the largest v2 LLC message and the receive spill-over buffer. */
export const SMC_WR_BUF_V2_SIZE = 8192;
/** SMC_WR_TX_SIZE: the first receive SGE and the size of every fixed-layout LLC message. */
export const SMC_WR_TX_SIZE = LLC_MESSAGE_LENGTH;
/** SMC_LLC_RKEYS_PER_MSG_V2: rkeys an ADD LINK v2 or DELETE RKEY v2 carries at most. */
export const LLC_RKEYS_PER_MSG_V2 = 255;
/** sizeof(struct smc_llc_msg_add_link_v2_ext) without its rt[] array. */
export const LLC_ADD_LINK_V2_EXT_LEN = 28;
/** sizeof(struct smc_llc_msg_add_link_cont_rt). */
export const LLC_ADD_LINK_RT_LEN = 16;
/** offsetof(struct smc_llc_msg_req_add_link_v2, gid). */
export const LLC_REQ_ADD_LINK_V2_FIXED_LEN = 28;
/** offsetof(struct smc_llc_msg_delete_rkey_v2, rkey). */
export const LLC_DELETE_RKEY_V2_FIXED_LEN = 8;

const GID_LEN = 16;

export type LlcV2ByteOrder = 'little' | 'big';

export interface LlcV2CodecOptions {
  /**
   * Byte order of the host-order u16 fields (length_v2, the ADD LINK v2 rkey
   * count) as the peer kernel writes them: 'little' for x86-64/arm64 (default),
   * 'big' for s390x.
   */
  byteOrder?: LlcV2ByteOrder;
}

type V2<T> = Omit<T, 'kind'> & { version: 2 };

/** CONFIRM LINK v2 (0x21): the v1 layout; max_links/max_conns carry the SMC-R v2.1 values. */
export type LlcConfirmLinkV2 = V2<LlcConfirmLink> & { kind: 'confirm-link' };

/** struct smc_llc_msg_add_link_v2_ext, after the 44-byte ADD LINK. */
export interface LlcAddLinkV2Ext {
  /** v2_direct: no gateway between the new link's ports. */
  direct: boolean;
  /** client_target_gid: the RoCEv2 GID of the new link's sender port. */
  clientTargetGid: Buffer;
  /** One entry per RMB: its rkey on the existing link, its rkey and address on the new one. */
  rtokens: LlcAddLinkContRtoken[];
}

/** ADD LINK v2 (0x22): the v1 layout (no reject reason), then the optional extension. */
export type LlcAddLinkV2 = V2<Omit<LlcAddLink, 'rejectReason'>> & {
  kind: 'add-link';
  /** Absent on a 44-byte message (a reject, or a request without a new link). */
  ext: LlcAddLinkV2Ext | null;
};

export type LlcDeleteLinkV2 = V2<LlcDeleteLink> & { kind: 'delete-link' };
export type LlcConfirmRkeyV2 = V2<LlcConfirmRkey> & { kind: 'confirm-rkey' };
export type LlcTestLinkV2 = V2<LlcTestLink> & { kind: 'test-link' };

/** REQUEST ADD LINK v2 (0x25, struct smc_llc_msg_req_add_link_v2): the client's RoCEv2 GIDs. */
export interface LlcReqAddLinkV2 {
  kind: 'req-add-link';
  version: 2;
  response: boolean;
  gids: Buffer[];
}

/**
 * DELETE RKEY v2 (0x29, struct smc_llc_msg_delete_rkey_v2): 4 num_rkeys,
 * 5 num_inval_rkeys (where v1 has its error mask: a count, not a bit mask),
 * 6 reserved (2), 8 rkeys u32. The kernel sends one rkey in a 44-byte message.
 */
export interface LlcDeleteRkeyV2 {
  kind: 'delete-rkey';
  version: 2;
  response: boolean;
  negative: boolean;
  /** num_inval_rkeys: how many of the rkeys the responder could not delete. */
  invalidCount: number;
  rkeys: number[];
}

export type LlcV2Message =
  | LlcConfirmLinkV2
  | LlcAddLinkV2
  | LlcDeleteLinkV2
  | LlcReqAddLinkV2
  | LlcConfirmRkeyV2
  | LlcTestLinkV2
  | LlcDeleteRkeyV2;

const KNOWN: ReadonlySet<number> = new Set(Object.values(LLC_V2_TYPE));

function readU16(r: ByteReader, at: number, order: LlcV2ByteOrder, field: string): number {
  const v = r.u16(at, field);
  return order === 'big' ? v : ((v & 0xff) << 8) | (v >> 8);
}

function writeU16(w: ByteWriter, at: number, value: number, order: LlcV2ByteOrder, field: string): void {
  w.u16(at, order === 'big' ? value : ((value & 0xff) << 8) | ((value >> 8) & 0xff), field);
}

/**
 * Length of the v2 LLC message that starts `bytes` (its length_v2), checked
 * against the 44..8192 range and the bytes given.
 */
export function llcV2MessageLength(bytes: Uint8Array, options: LlcV2CodecOptions = {}): number {
  const r = new ByteReader(bytes);
  if (r.length < LLC_MESSAGE_LENGTH) {
    throw new ProtocolDecodeError(
      'truncated',
      'message',
      `LLC messages are at least 44 bytes, got ${r.length}`,
    );
  }
  const length = readU16(r, 1, options.byteOrder ?? 'little', 'length');
  if (length < LLC_MESSAGE_LENGTH || length > SMC_WR_BUF_V2_SIZE) {
    throw new ProtocolDecodeError('length', 'length', `must be 44..${SMC_WR_BUF_V2_SIZE}, got ${length}`);
  }
  if (length > r.length) {
    throw new ProtocolDecodeError(
      'truncated',
      'length',
      `length field says ${length} bytes, got ${r.length}`,
    );
  }
  return length;
}

function exactLength(length: number, expected: number, what: string): void {
  if (length !== expected) {
    throw new ProtocolDecodeError(
      'length',
      'length',
      `${what} is ${expected} bytes, length field says ${length}`,
    );
  }
}

/**
 * Decodes an SMC-Rv2 LLC message from a buffer holding at least its
 * length_v2 bytes (typically the 8192-byte receive buffer); bytes past the
 * length are ignored.
 */
export function decodeLlcV2Message(bytes: Uint8Array, options: LlcV2CodecOptions = {}): LlcV2Message {
  const order = options.byteOrder ?? 'little';
  const all = new ByteReader(bytes);
  const type = all.u8(0, 'type');
  if (type >> 4 !== LLC_VERSION_2) {
    throw new ProtocolDecodeError(
      'version',
      'type',
      `LLC version ${type >> 4} (type 0x${type.toString(16)})`,
    );
  }
  if (!KNOWN.has(type)) {
    throw new ProtocolDecodeError('type', 'type', `unknown SMC-Rv2 LLC message type 0x${type.toString(16)}`);
  }
  const length = llcV2MessageLength(bytes, options);
  const r = new ByteReader(all.bytes.subarray(0, length));
  const flags = r.u8(3, 'flags');
  const response = (flags & LLC_FLAG_RESP) !== 0;
  switch (type as LlcV2TypeCode) {
    case LLC_V2_TYPE.confirmLink:
      exactLength(length, LLC_MESSAGE_LENGTH, 'CONFIRM LINK v2');
      return { ...readConfirmLinkBody(r, response, flags), version: 2 };
    case LLC_V2_TYPE.deleteLink:
      exactLength(length, LLC_MESSAGE_LENGTH, 'DELETE LINK v2');
      return { ...readDeleteLinkBody(r, response, flags), version: 2 };
    case LLC_V2_TYPE.confirmRkey:
      exactLength(length, LLC_MESSAGE_LENGTH, 'CONFIRM RKEY v2');
      return { ...readConfirmRkeyBody(r, response, flags), version: 2 };
    case LLC_V2_TYPE.testLink:
      exactLength(length, LLC_MESSAGE_LENGTH, 'TEST LINK v2');
      return { ...readTestLinkBody(r, response), version: 2 };
    case LLC_V2_TYPE.addLink:
      return decodeAddLinkV2(r, length, response, flags, order);
    case LLC_V2_TYPE.reqAddLink:
      return decodeReqAddLinkV2(r, length, response);
    case LLC_V2_TYPE.deleteRkey:
      return decodeDeleteRkeyV2(r, length, response, flags);
  }
}

function decodeAddLinkV2(
  r: ByteReader,
  length: number,
  response: boolean,
  flags: number,
  order: LlcV2ByteOrder,
): LlcAddLinkV2 {
  const { rejectReason: _unused, ...body } = readAddLinkBody(r, response, flags);
  const base = { ...body, version: 2 as const };
  if (length === LLC_MESSAGE_LENGTH) return { ...base, ext: null };
  const at = LLC_MESSAGE_LENGTH;
  if (length < at + LLC_ADD_LINK_V2_EXT_LEN) {
    throw new ProtocolDecodeError(
      'length',
      'length',
      `ADD LINK v2 is 44 bytes or carries the ${LLC_ADD_LINK_V2_EXT_LEN}-byte extension, length field says ${length}`,
    );
  }
  const count = readU16(r, at + 26, order, 'ext.numRkeys');
  if (count > LLC_RKEYS_PER_MSG_V2) {
    throw new ProtocolDecodeError('range', 'ext.numRkeys', `at most ${LLC_RKEYS_PER_MSG_V2}, got ${count}`);
  }
  const need = at + LLC_ADD_LINK_V2_EXT_LEN + count * LLC_ADD_LINK_RT_LEN;
  if (need > length) {
    throw new ProtocolDecodeError(
      'overrun',
      'ext.numRkeys',
      `${count} rkeys need ${need} bytes, length is ${length}`,
    );
  }
  if (need < length) {
    throw new ProtocolDecodeError(
      'length',
      'length',
      `${length - need} unexplained bytes after ${count} rkeys`,
    );
  }
  const rtokens: LlcAddLinkContRtoken[] = [];
  for (let i = 0; i < count; i++) {
    const e = at + LLC_ADD_LINK_V2_EXT_LEN + i * LLC_ADD_LINK_RT_LEN;
    rtokens.push({
      rmbKey: r.u32(e, `ext.rtokens[${i}].rmbKey`),
      rmbKeyNew: r.u32(e + 4, `ext.rtokens[${i}].rmbKeyNew`),
      rmbVaddrNew: r.u64(e + 8, `ext.rtokens[${i}].rmbVaddrNew`),
    });
  }
  return {
    ...base,
    ext: {
      direct: (r.u8(at, 'ext.direct') & 0x80) !== 0,
      clientTargetGid: r.copy(at + 2, GID_LEN, 'ext.clientTargetGid'),
      rtokens,
    },
  };
}

function decodeReqAddLinkV2(r: ByteReader, length: number, response: boolean): LlcReqAddLinkV2 {
  const count = r.u8(24, 'gidCount');
  const need = LLC_REQ_ADD_LINK_V2_FIXED_LEN + count * GID_LEN;
  if (need > length) {
    throw new ProtocolDecodeError(
      'overrun',
      'gidCount',
      `${count} GIDs need ${need} bytes, length is ${length}`,
    );
  }
  exactLength(length, Math.max(LLC_MESSAGE_LENGTH, need), `REQUEST ADD LINK v2 with ${count} GIDs`);
  const gids: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    gids.push(r.copy(LLC_REQ_ADD_LINK_V2_FIXED_LEN + i * GID_LEN, GID_LEN, `gids[${i}]`));
  }
  return { kind: 'req-add-link', version: 2, response, gids };
}

function decodeDeleteRkeyV2(
  r: ByteReader,
  length: number,
  response: boolean,
  flags: number,
): LlcDeleteRkeyV2 {
  const count = r.u8(4, 'numRkeys');
  const need = LLC_DELETE_RKEY_V2_FIXED_LEN + count * 4;
  if (need > length) {
    throw new ProtocolDecodeError(
      'overrun',
      'numRkeys',
      `${count} rkeys need ${need} bytes, length is ${length}`,
    );
  }
  exactLength(length, Math.max(LLC_MESSAGE_LENGTH, need), `DELETE RKEY v2 with ${count} rkeys`);
  const rkeys: number[] = [];
  for (let i = 0; i < count; i++) rkeys.push(r.u32(LLC_DELETE_RKEY_V2_FIXED_LEN + 4 * i, `rkeys[${i}]`));
  return {
    kind: 'delete-rkey',
    version: 2,
    response,
    negative: (flags & LLC_FLAG_RKEY_NEG) !== 0,
    invalidCount: r.u8(5, 'invalidCount'),
    rkeys,
  };
}

/** Wire length of a v2 message: 44 for the fixed layouts, more with the variable parts. */
export function llcV2EncodedLength(m: LlcV2Message): number {
  switch (m.kind) {
    case 'add-link':
      return m.ext === null
        ? LLC_MESSAGE_LENGTH
        : LLC_MESSAGE_LENGTH + LLC_ADD_LINK_V2_EXT_LEN + m.ext.rtokens.length * LLC_ADD_LINK_RT_LEN;
    case 'req-add-link':
      return Math.max(LLC_MESSAGE_LENGTH, LLC_REQ_ADD_LINK_V2_FIXED_LEN + m.gids.length * GID_LEN);
    case 'delete-rkey':
      return Math.max(LLC_MESSAGE_LENGTH, LLC_DELETE_RKEY_V2_FIXED_LEN + m.rkeys.length * 4);
    default:
      return LLC_MESSAGE_LENGTH;
  }
}

function flagsOf(m: LlcV2Message): number {
  switch (m.kind) {
    case 'confirm-link':
      return confirmLinkFlags(m);
    case 'add-link':
      return m.rejected ? LLC_FLAG_ADD_LNK_REJ : 0;
    case 'delete-link':
      return deleteLinkFlags(m);
    case 'confirm-rkey':
      return confirmRkeyFlags(m);
    case 'delete-rkey':
      return m.negative ? LLC_FLAG_RKEY_NEG : 0;
    default:
      return 0;
  }
}

const TYPE_OF: Readonly<Record<LlcV2Message['kind'], LlcV2TypeCode>> = {
  'confirm-link': LLC_V2_TYPE.confirmLink,
  'add-link': LLC_V2_TYPE.addLink,
  'delete-link': LLC_V2_TYPE.deleteLink,
  'req-add-link': LLC_V2_TYPE.reqAddLink,
  'confirm-rkey': LLC_V2_TYPE.confirmRkey,
  'test-link': LLC_V2_TYPE.testLink,
  'delete-rkey': LLC_V2_TYPE.deleteRkey,
};

function checkCount(field: string, n: number, max: number): void {
  if (n > max) throw new ProtocolEncodeError(field, `at most ${max} entries, got ${n}`);
}

/** Encodes exactly the message's bytes (post them from an 8192-byte v2 send buffer). */
export function encodeLlcV2Message(m: LlcV2Message, options: LlcV2CodecOptions = {}): Buffer {
  const order = options.byteOrder ?? 'little';
  const type = TYPE_OF[m.kind];
  if (type === undefined) throw new ProtocolEncodeError('kind', 'unknown SMC-Rv2 LLC message kind');
  if (m.kind === 'add-link' && m.ext !== null)
    checkCount('ext.rtokens', m.ext.rtokens.length, LLC_RKEYS_PER_MSG_V2);
  if (m.kind === 'req-add-link') checkCount('gids', m.gids.length, 255);
  if (m.kind === 'delete-rkey') checkCount('rkeys', m.rkeys.length, LLC_RKEYS_PER_MSG_V2);
  const length = llcV2EncodedLength(m);
  const w = new ByteWriter(length);
  w.u8(0, type, 'type');
  writeU16(w, 1, length, order, 'length');
  w.u8(3, (m.response ? LLC_FLAG_RESP : 0) | flagsOf(m), 'flags');
  switch (m.kind) {
    case 'confirm-link':
      writeConfirmLinkBody(w, m);
      break;
    case 'delete-link':
      writeDeleteLinkBody(w, m);
      break;
    case 'confirm-rkey':
      writeConfirmRkeyBody(w, m);
      break;
    case 'test-link':
      w.fixed(4, m.userData, 16, 'userData');
      break;
    case 'add-link': {
      writeAddLinkBody(w, m);
      if (m.ext !== null) {
        const at = LLC_MESSAGE_LENGTH;
        w.u8(at, m.ext.direct ? 0x80 : 0, 'ext.direct');
        w.fixed(at + 2, m.ext.clientTargetGid, GID_LEN, 'ext.clientTargetGid');
        writeU16(w, at + 26, m.ext.rtokens.length, order, 'ext.numRkeys');
        m.ext.rtokens.forEach((t, i) => {
          const e = at + LLC_ADD_LINK_V2_EXT_LEN + i * LLC_ADD_LINK_RT_LEN;
          w.u32(e, t.rmbKey, `ext.rtokens[${i}].rmbKey`);
          w.u32(e + 4, t.rmbKeyNew, `ext.rtokens[${i}].rmbKeyNew`);
          w.u64(e + 8, t.rmbVaddrNew, `ext.rtokens[${i}].rmbVaddrNew`);
        });
      }
      break;
    }
    case 'req-add-link':
      w.u8(24, m.gids.length, 'gidCount');
      m.gids.forEach((g, i) =>
        w.fixed(LLC_REQ_ADD_LINK_V2_FIXED_LEN + i * GID_LEN, g, GID_LEN, `gids[${i}]`),
      );
      break;
    case 'delete-rkey':
      w.u8(4, m.rkeys.length, 'numRkeys');
      w.u8(5, m.invalidCount, 'invalidCount');
      m.rkeys.forEach((k, i) => w.u32(LLC_DELETE_RKEY_V2_FIXED_LEN + 4 * i, k, `rkeys[${i}]`));
      break;
  }
  return w.bytes;
}
