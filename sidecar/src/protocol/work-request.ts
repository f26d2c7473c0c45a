import { ByteReader } from './bytes.js';
import { type CdcCursorLimits, type CdcMessage, CDC_MESSAGE_TYPE, decodeCdcMessage } from './cdc.js';
import { decodeLlcMessage, type LlcMessage } from './llc/message.js';

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
