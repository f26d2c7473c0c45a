import { ProtocolDecodeError, ProtocolEncodeError } from '../errors.js';
import { LLC_FLAG_RKEY_NEG, LLC_RKEYS_PER_MSG, LLC_TYPE } from './constants.js';
import { newLlcMessage, readLlcFrame } from './header.js';
import { type LlcRtoken, readRtoken, RTOKEN_LENGTH, writeRtoken } from './rtoken.js';

/*
 * CONFIRM RKEY CONTINUATION, type 0x08 (RFC 7609 Appendix A; smc_llc.c struct
 * smc_llc_msg_confirm_rkey_cont as it stood before the kernel dropped its
 * handling in 2020): 4 number of rtokens, 5 three smc_rmb_rtoken entries.
 * The count here is the number of entries in this message, so more than 3 overruns it.
 */
export interface LlcConfirmRkeyCont {
  kind: 'confirm-rkey-cont';
  response: boolean;
  negative: boolean;
  rtokens: LlcRtoken[];
}

export function decodeLlcConfirmRkeyCont(bytes: Uint8Array): LlcConfirmRkeyCont {
  const { reader: r, response, flags } = readLlcFrame(bytes, LLC_TYPE.confirmRkeyCont);
  const count = r.u8(4, 'numRkeys');
  if (count > LLC_RKEYS_PER_MSG) {
    throw new ProtocolDecodeError('overrun', 'numRkeys', `at most ${LLC_RKEYS_PER_MSG} fit, got ${count}`);
  }
  const rtokens: LlcRtoken[] = [];
  for (let i = 0; i < count; i++) rtokens.push(readRtoken(r, 5 + i * RTOKEN_LENGTH, `rtokens[${i}]`));
  return { kind: 'confirm-rkey-cont', response, negative: (flags & LLC_FLAG_RKEY_NEG) !== 0, rtokens };
}

export function encodeLlcConfirmRkeyCont(m: LlcConfirmRkeyCont): Buffer {
  if (m.rtokens.length > LLC_RKEYS_PER_MSG) {
    throw new ProtocolEncodeError('rtokens', `at most ${LLC_RKEYS_PER_MSG} fit`);
  }
  const w = newLlcMessage(LLC_TYPE.confirmRkeyCont, m.response, m.negative ? LLC_FLAG_RKEY_NEG : 0);
  w.u8(4, m.rtokens.length, 'numRkeys');
  m.rtokens.forEach((t, i) => writeRtoken(w, 5 + i * RTOKEN_LENGTH, t, `rtokens[${i}]`));
  return w.bytes;
}
