import { ByteReader } from './bytes.js';
import { type CdcCursorLimits, type CdcMessage, CDC_MESSAGE_TYPE, decodeCdcMessage } from './cdc.js';
import { ProtocolDecodeError } from './errors.js';
import { decodeLlcMessage, type LlcMessage } from './llc/message.js';
import {
  decodeLlcV2Message,
  LLC_VERSION_2,
  type LlcV2CodecOptions,
  type LlcV2Message,
  SMC_WR_TX_SIZE,
} from './llc/v2.js';

/**
 * Demultiplexes a message received on the link QP by its first byte, as
 * smc_wr_rx_demultiplex does with struct smc_wr_rx_hdr: 0xFE is CDC, the rest LLC.
 */
export function decodeWorkRequestMessage(
  bytes: Uint8Array,
  limits: CdcCursorLimits,
): CdcMessage | LlcMessage {
  const type = new ByteReader(bytes).u8(0, 'type');
  return type === CDC_MESSAGE_TYPE ? decodeCdcMessage(bytes, limits) : decodeLlcMessage(bytes);
}

/**
 * Demultiplexes a receive on the QP of an SMC-Rv2 link group. `bytes` is the
 * receive buffer as the two receive SGEs fill it (first 44 bytes, the rest in
 * the 8192-byte spill-over buffer at the same offsets), so it may run past the
 * message: CDC (0xFE) and v1 LLC messages take their 44 bytes, v2 LLC messages
 * (llc_version 2) their length_v2 bytes; anything behind them is ignored.
 */
export function decodeWorkRequestMessageV2(
  bytes: Uint8Array,
  limits: CdcCursorLimits,
  options: LlcV2CodecOptions = {},
): CdcMessage | LlcMessage | LlcV2Message {
  const r = new ByteReader(bytes);
  const type = r.u8(0, 'type');
  if (type >> 4 === LLC_VERSION_2) return decodeLlcV2Message(bytes, options);
  if (r.length < SMC_WR_TX_SIZE) {
    throw new ProtocolDecodeError(
      'truncated',
      'message',
      `work requests are at least 44 bytes, got ${r.length}`,
    );
  }
  const head = r.bytes.subarray(0, SMC_WR_TX_SIZE);
  return type === CDC_MESSAGE_TYPE ? decodeCdcMessage(head, limits) : decodeLlcMessage(head);
}
