import { ByteReader, checkBits } from '../bytes.js';
import { ProtocolDecodeError } from '../errors.js';
import {
  CLC_HEADER_LENGTH,
  CLC_TRAILER_LENGTH,
  CLC_TYPE,
  type ClcTypeCode,
  SMCD_EYECATCHER,
  SMCR_EYECATCHER,
  type SmcType,
  type SmcVersion,
} from './constants.js';

/**
 * struct smc_clc_msg_hdr (smc_clc.h, "format defined in RFC7609"):
 *   0..3 eyecatcher, 4 type, 5..6 length (whole message), 7 version:4 | typev2:2 | typev1:2.
 */
export interface ClcHeader {
  eyecatcher: 'SMC-R' | 'SMC-D';
  type: ClcTypeCode;
  length: number;
  version: SmcVersion;
  /** Bits 3..2 of byte 7 (typev2); bit 3 is the first-contact / out-of-sync flag. */
  typeV2: SmcType;
  /** Bits 1..0 of byte 7 (typev1); zero in RFC 7609 v1 messages. */
  typeV1: SmcType;
}

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(CLC_TYPE));

/** Decodes and checks the 8-byte header; `bytes` may hold only the header. */
export function decodeClcHeader(bytes: Uint8Array): ClcHeader {
  const r = new ByteReader(bytes);
  if (r.length < CLC_HEADER_LENGTH) {
    throw new ProtocolDecodeError('truncated', 'header', `needs ${CLC_HEADER_LENGTH} bytes, got ${r.length}`);
  }
  let eyecatcher: ClcHeader['eyecatcher'];
  if (r.equals(0, SMCR_EYECATCHER)) eyecatcher = 'SMC-R';
  else if (r.equals(0, SMCD_EYECATCHER)) eyecatcher = 'SMC-D';
  else
    throw new ProtocolDecodeError('eyecatcher', 'eyecatcher', 'header does not start with "SMCR" (EBCDIC)');
  const type = r.u8(4, 'type');
  if (!KNOWN_TYPES.has(type)) {
    throw new ProtocolDecodeError('type', 'type', `unknown CLC message type ${type}`);
  }
  const length = r.u16(5, 'length');
  const flags = r.u8(7, 'version');
  const version = flags >> 4;
  if (version !== 1 && version !== 2) {
    throw new ProtocolDecodeError('version', 'version', `unsupported SMC version ${version}`);
  }
  if (length < CLC_HEADER_LENGTH + CLC_TRAILER_LENGTH) {
    throw new ProtocolDecodeError('length', 'length', `${length} is shorter than header plus trailer`);
  }
  return {
    eyecatcher,
    type: type as ClcTypeCode,
    length,
    version,
    typeV2: ((flags >> 2) & 0x3) as SmcType,
    typeV1: (flags & 0x3) as SmcType,
  };
}

/**
 * Length of the CLC message that starts `bytes`, from its header alone. Lets a
 * stream reader know how many bytes to wait for, as smc_clc_wait_msg peeks.
 */
export function clcMessageLength(bytes: Uint8Array): number {
  return decodeClcHeader(bytes).length;
}

/**
 * Decodes the header of a complete message and checks the byte count against
 * its length field, and the trailer eyecatcher unless the caller skips it.
 */
export function decodeClcFrame(
  bytes: Uint8Array,
  checkTrailer: boolean,
): { header: ClcHeader; reader: ByteReader } {
  const header = decodeClcHeader(bytes);
  const reader = new ByteReader(bytes);
  if (reader.length < header.length) {
    throw new ProtocolDecodeError(
      'truncated',
      'length',
      `length field says ${header.length} bytes, got ${reader.length}`,
    );
  }
  if (reader.length > header.length) {
    throw new ProtocolDecodeError(
      'length',
      'length',
      `length field says ${header.length} bytes, got ${reader.length}`,
    );
  }
  if (checkTrailer && !reader.equals(header.length - CLC_TRAILER_LENGTH, SMCR_EYECATCHER)) {
    throw new ProtocolDecodeError('eyecatcher', 'trailer', 'trailer is not "SMCR" (EBCDIC)');
  }
  return { header, reader };
}

export function requireSmcrEyecatcher(header: ClcHeader): void {
  if (header.eyecatcher !== 'SMC-R') {
    throw new ProtocolDecodeError('eyecatcher', 'eyecatcher', 'SMC-D eyecatcher on an SMC-R message');
  }
}

/** Writes header and trailer into a zeroed buffer of the message's full length. */
export function writeClcFrame(
  out: Buffer,
  type: ClcTypeCode,
  version: SmcVersion,
  typeV2: number,
  typeV1: number,
  eyecatcher: Readonly<Uint8Array> = SMCR_EYECATCHER,
): void {
  out.set(eyecatcher, 0);
  out.writeUInt8(type, 4);
  out.writeUInt16BE(out.byteLength, 5);
  out.writeUInt8(
    (checkBits('version', version, 4) << 4) |
      (checkBits('typeV2', typeV2, 2) << 2) |
      checkBits('typeV1', typeV1, 2),
    7,
  );
  out.set(eyecatcher, out.byteLength - CLC_TRAILER_LENGTH);
}
