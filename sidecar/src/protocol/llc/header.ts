import { ByteReader, ByteWriter } from '../bytes.js';
import { ProtocolDecodeError } from '../errors.js';
import { LLC_FLAG_RESP, LLC_MESSAGE_LENGTH, LLC_TYPE, type LlcTypeCode } from './constants.js';

/*
 * struct smc_llc_hdr (smc_llc.c): 0 type (smc_wr_rx_hdr; high nibble is the
 * LLC version, 0 for v1), 1 length (44), 2 reserved:4 | add_link_rej_rsn:4,
 * 3 flags (0x80 = response).
 */

const KNOWN: ReadonlySet<number> = new Set(Object.values(LLC_TYPE));

export interface LlcFrame {
  reader: ByteReader;
  type: LlcTypeCode;
  response: boolean;
  flags: number;
}

/** Checks size, length byte and type of a received LLC work request payload. */
export function readLlcFrame(bytes: Uint8Array, expected?: LlcTypeCode): LlcFrame {
  const r = new ByteReader(bytes);
  if (r.length < LLC_MESSAGE_LENGTH) {
    throw new ProtocolDecodeError('truncated', 'message', `LLC messages are 44 bytes, got ${r.length}`);
  }
  if (r.length > LLC_MESSAGE_LENGTH) {
    throw new ProtocolDecodeError('length', 'message', `LLC messages are 44 bytes, got ${r.length}`);
  }
  const type = r.u8(0, 'type');
  if (type >> 4 !== 0 && type !== 0xfe) {
    // SMC-Rv2 LLC messages (0x2X) use longer buffers; decodeLlcV2Message (v2.ts) reads them.
    throw new ProtocolDecodeError(
      'version',
      'type',
      `LLC version ${type >> 4} (type 0x${type.toString(16)})`,
    );
  }
  if (!KNOWN.has(type)) {
    throw new ProtocolDecodeError('type', 'type', `unknown LLC message type 0x${type.toString(16)}`);
  }
  if (expected !== undefined && type !== expected) {
    throw new ProtocolDecodeError('type', 'type', `expected LLC type ${expected}, got ${type}`);
  }
  const length = r.u8(1, 'length');
  if (length !== LLC_MESSAGE_LENGTH) {
    throw new ProtocolDecodeError('length', 'length', `must be 44, got ${length}`);
  }
  const flags = r.u8(3, 'flags');
  return { reader: r, type: type as LlcTypeCode, response: (flags & LLC_FLAG_RESP) !== 0, flags };
}

export function newLlcMessage(type: LlcTypeCode, response: boolean, flags = 0): ByteWriter {
  const w = new ByteWriter(LLC_MESSAGE_LENGTH);
  w.u8(0, type, 'type');
  w.u8(1, LLC_MESSAGE_LENGTH, 'length');
  w.u8(3, (response ? LLC_FLAG_RESP : 0) | flags, 'flags');
  return w;
}
