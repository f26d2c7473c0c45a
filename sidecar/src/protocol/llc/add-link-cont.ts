import { ProtocolEncodeError } from '../errors.js';
import { LLC_RKEYS_PER_CONT_MSG, LLC_TYPE } from './constants.js';
import { newLlcMessage, readLlcFrame } from './header.js';

/*
 * ADD LINK CONTINUATION, type 0x03 (RFC 7609 Appendix A "ADD LINK CONTINUATION
 * LLC message"; smc_llc.c struct smc_llc_msg_add_link_cont, __packed):
 *   4 link number, 5 number of rkeys still to send (this message and later ones),
 *   6 reserved (2), 8 two entries of { rkey u32, new rkey u32, new virtual address u64 },
 *   40 reserved (4)
 * The count may exceed two: smc_llc_add_link_cont() sends the remaining total
 * and the receiver takes min(count, 2) entries from each message.
 */
export interface LlcAddLinkContRtoken {
  rmbKey: number;
  rmbKeyNew: number;
  rmbVaddrNew: bigint;
}

export interface LlcAddLinkCont {
  kind: 'add-link-cont';
  response: boolean;
  linkNum: number;
  numRkeys: number;
  /** min(numRkeys, 2) entries. */
  rtokens: LlcAddLinkContRtoken[];
}

export function decodeLlcAddLinkCont(bytes: Uint8Array): LlcAddLinkCont {
  const { reader: r, response } = readLlcFrame(bytes, LLC_TYPE.addLinkCont);
  const numRkeys = r.u8(5, 'numRkeys');
  const rtokens: LlcAddLinkContRtoken[] = [];
  for (let i = 0; i < Math.min(numRkeys, LLC_RKEYS_PER_CONT_MSG); i++) {
    const at = 8 + 16 * i;
    rtokens.push({
      rmbKey: r.u32(at, `rtokens[${i}].rmbKey`),
      rmbKeyNew: r.u32(at + 4, `rtokens[${i}].rmbKeyNew`),
      rmbVaddrNew: r.u64(at + 8, `rtokens[${i}].rmbVaddrNew`),
    });
  }
  return { kind: 'add-link-cont', response, linkNum: r.u8(4, 'linkNum'), numRkeys, rtokens };
}

export function encodeLlcAddLinkCont(m: LlcAddLinkCont): Buffer {
  if (m.rtokens.length !== Math.min(m.numRkeys, LLC_RKEYS_PER_CONT_MSG)) {
    throw new ProtocolEncodeError('rtokens', 'must hold min(numRkeys, 2) entries');
  }
  const w = newLlcMessage(LLC_TYPE.addLinkCont, m.response);
  w.u8(4, m.linkNum, 'linkNum');
  w.u8(5, m.numRkeys, 'numRkeys');
  m.rtokens.forEach((t, i) => {
    const at = 8 + 16 * i;
    w.u32(at, t.rmbKey, `rtokens[${i}].rmbKey`);
    w.u32(at + 4, t.rmbKeyNew, `rtokens[${i}].rmbKeyNew`);
    w.u64(at + 8, t.rmbVaddrNew, `rtokens[${i}].rmbVaddrNew`);
  });
  return w.bytes;
}
