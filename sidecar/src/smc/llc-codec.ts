import {
  LLC_VERSION_2,
  decodeLlcV2Message,
  encodeLlcV2Message,
  type LlcV2Message,
} from '../protocol/llc/v2.js';
import { decodeLlcMessage, encodeLlcMessage, type LlcMessage } from '../protocol/llc/message.js';

/** An LLC message of either version: SMC-R v1 layouts, or SMC-Rv2 (`version: 2`). */
export type AnyLlcMessage = LlcMessage | LlcV2Message;

/**
 * Decodes one LLC message; the version is the high nibble of the type byte
 * (smc_wr_rx_hdr.llc_version), so a link of either version is read alike.
 */
export function decodeLlc(bytes: Uint8Array): AnyLlcMessage {
  return (bytes[0] ?? 0) >> 4 === LLC_VERSION_2 ? decodeLlcV2Message(bytes) : decodeLlcMessage(bytes);
}

export function encodeLlc(m: AnyLlcMessage): Buffer {
  return 'version' in m ? encodeLlcV2Message(m) : encodeLlcMessage(m);
}

/** The message as the version the link speaks (v2 adds `version: 2` to the same fields). */
export function asLlcVersion<T extends LlcMessage>(m: T, version: 1 | 2): T | (T & { version: 2 }) {
  return version === 2 ? { ...m, version: 2 as const } : m;
}
