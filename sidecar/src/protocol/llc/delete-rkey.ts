import { ProtocolDecodeError, ProtocolEncodeError } from '../errors.js';
import { LLC_DEL_RKEY_MAX, LLC_FLAG_RKEY_NEG, LLC_TYPE } from './constants.js';
import { newLlcMessage, readLlcFrame } from './header.js';

/*
 * DELETE RKEY, type 0x09 (RFC 7609 Appendix A "DELETE RKEY LLC message";
 * smc_llc.c struct smc_llc_msg_delete_rkey):
 *   3 flags (0x20 negative), 4 number of rkeys, 5 error mask (bit 7 = rkey[0]),
 *   6 reserved (2), 8 eight rkeys u32, 40 reserved (4)
 */
export interface LlcDeleteRkey {
  kind: 'delete-rkey';
  response: boolean;
  negative: boolean;
  errorMask: number;
  rkeys: number[];
}

export function decodeLlcDeleteRkey(bytes: Uint8Array): LlcDeleteRkey {
  const { reader: r, response, flags } = readLlcFrame(bytes, LLC_TYPE.deleteRkey);
  const count = r.u8(4, 'numRkeys');
  if (count > LLC_DEL_RKEY_MAX) {
    throw new ProtocolDecodeError('overrun', 'numRkeys', `at most ${LLC_DEL_RKEY_MAX} fit, got ${count}`);
  }
  const rkeys: number[] = [];
  for (let i = 0; i < count; i++) rkeys.push(r.u32(8 + 4 * i, `rkeys[${i}]`));
  return {
    kind: 'delete-rkey',
    response,
    negative: (flags & LLC_FLAG_RKEY_NEG) !== 0,
    errorMask: r.u8(5, 'errorMask'),
    rkeys,
  };
}

export function encodeLlcDeleteRkey(m: LlcDeleteRkey): Buffer {
  if (m.rkeys.length > LLC_DEL_RKEY_MAX) {
    throw new ProtocolEncodeError('rkeys', `at most ${LLC_DEL_RKEY_MAX} fit`);
  }
  const w = newLlcMessage(LLC_TYPE.deleteRkey, m.response, m.negative ? LLC_FLAG_RKEY_NEG : 0);
  w.u8(4, m.rkeys.length, 'numRkeys');
  w.u8(5, m.errorMask, 'errorMask');
  m.rkeys.forEach((k, i) => w.u32(8 + 4 * i, k, `rkeys[${i}]`));
  return w.bytes;
}
