import type { ByteReader, ByteWriter } from '../bytes.js';
import { ProtocolDecodeError, ProtocolEncodeError } from '../errors.js';
import { LLC_FLAG_RKEY_NEG, LLC_FLAG_RKEY_RETRY, LLC_RKEYS_PER_MSG, LLC_TYPE } from './constants.js';
import { newLlcMessage, readLlcFrame } from './header.js';
import { type LlcRtoken, readRtoken, RTOKEN_LENGTH, writeRtoken } from './rtoken.js';

/*
 * CONFIRM RKEY, type 0x06 (RFC 7609 Appendix A "CONFIRM RKEY LLC message";
 * smc_llc.c struct smc_llc_msg_confirm_rkey):
 *   3 flags (0x20 negative, 0x10 retry), 4 three smc_rmb_rtoken entries (13 bytes each),
 *   43 reserved.
 * The first entry is the sending link's rtoken and its first byte is the number
 * of further rtokens; smc_llc_rmt_conf_rkey() rejects counts above 3 and reads
 * at most the two entries that fit.
 */
export interface LlcConfirmRkey {
  kind: 'confirm-rkey';
  response: boolean;
  negative: boolean;
  retry: boolean;
  /** Count byte of the first rtoken: 0..3. */
  numRkeys: number;
  own: { rmbKey: number; rmbVaddr: bigint };
  /** min(numRkeys, 2) rtokens for the group's other links. */
  others: LlcRtoken[];
}

const OTHER_SLOTS = LLC_RKEYS_PER_MSG - 1;

export function decodeLlcConfirmRkey(bytes: Uint8Array): LlcConfirmRkey {
  const { reader: r, response, flags } = readLlcFrame(bytes, LLC_TYPE.confirmRkey);
  return readConfirmRkeyBody(r, response, flags);
}

/** Fields after the header; shared with the SMC-Rv2 CONFIRM RKEY (0x26). */
export function readConfirmRkeyBody(r: ByteReader, response: boolean, flags: number): LlcConfirmRkey {
  const first = readRtoken(r, 4, 'rtokens[0]');
  if (first.linkId > LLC_RKEYS_PER_MSG) {
    throw new ProtocolDecodeError('overrun', 'numRkeys', `at most ${LLC_RKEYS_PER_MSG}, got ${first.linkId}`);
  }
  const others: LlcRtoken[] = [];
  for (let i = 1; i <= Math.min(first.linkId, OTHER_SLOTS); i++) {
    others.push(readRtoken(r, 4 + i * RTOKEN_LENGTH, `rtokens[${i}]`));
  }
  return {
    kind: 'confirm-rkey',
    response,
    negative: (flags & LLC_FLAG_RKEY_NEG) !== 0,
    retry: (flags & LLC_FLAG_RKEY_RETRY) !== 0,
    numRkeys: first.linkId,
    own: { rmbKey: first.rmbKey, rmbVaddr: first.rmbVaddr },
    others,
  };
}

export function encodeLlcConfirmRkey(m: LlcConfirmRkey): Buffer {
  const w = newLlcMessage(LLC_TYPE.confirmRkey, m.response, confirmRkeyFlags(m));
  writeConfirmRkeyBody(w, m);
  return w.bytes;
}

export function confirmRkeyFlags(m: Pick<LlcConfirmRkey, 'negative' | 'retry'>): number {
  return (m.negative ? LLC_FLAG_RKEY_NEG : 0) | (m.retry ? LLC_FLAG_RKEY_RETRY : 0);
}

export function writeConfirmRkeyBody(
  w: ByteWriter,
  m: Pick<LlcConfirmRkey, 'numRkeys' | 'own' | 'others'>,
): void {
  if (m.numRkeys > LLC_RKEYS_PER_MSG || m.others.length !== Math.min(m.numRkeys, OTHER_SLOTS)) {
    throw new ProtocolEncodeError('others', 'must hold min(numRkeys, 2) rtokens, numRkeys at most 3');
  }
  writeRtoken(w, 4, { linkId: m.numRkeys, ...m.own }, 'rtokens[0]');
  m.others.forEach((t, i) => writeRtoken(w, 4 + (i + 1) * RTOKEN_LENGTH, t, `rtokens[${i + 1}]`));
}
